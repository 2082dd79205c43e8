/**
 * `servingPolicyLoader` on a checkpoint directory: converted to GGUF once, decoded by llama.cpp with
 * the directory's own tokenizer, behind the `ChatPolicy` contract the session runner uses. A tiny
 * random checkpoint keeps it fast; SmolLM2's own tests are in llama-cpp-policy.test.ts.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConstraints } from '../../src/checkers/registry.ts';
import { CheckpointError, saveCheckpoint } from '../../src/model/checkpoint.ts';
import { attachLora, loraParameters, mergeLora, saveLoraAdapter } from '../../src/model/lora.ts';
import type { LlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { type ServingLoader, servingPolicyLoader } from '../../src/policy/serving-loader.ts';
import { type ChatMessage, fixedPolicy, type GenerateOptions } from '../../src/policy/types.ts';
import { runSession, type SessionPart } from '../../src/session/session-runner.ts';
import { useBackend } from './helpers.ts';
import { saveTinyCheckpoint, tinyModel, tinyTokenizer } from './tiny-policy.ts';

const USER: ChatMessage[] = [{ role: 'user', content: 'Write a sentence using the words dog and park.' }];
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

let root: string;
let dir: string;
let load: ServingLoader;
let policy: LlamaCppPolicy;
beforeAll(async () => {
  await useBackend('wasm');
  root = mkdtempSync(join(tmpdir(), 'corgi-serving-loader-test-'));
  const model = tinyModel(2);
  dir = await saveTinyCheckpoint(model, root, 'base-v1');
  model.dispose();
  load = servingPolicyLoader({ cacheDir: join(root, 'cache'), sequences: 4, threads: 1 });
  policy = await load(dir, 'base-v1');
});
afterAll(async () => {
  await policy.dispose();
  rmSync(root, { recursive: true, force: true });
});

async function collect(p: LlamaCppPolicy, messages: ChatMessage[], options: GenerateOptions) {
  const stream = p.generate(messages, options);
  const texts: string[] = [];
  const ids: number[] = [];
  for (;;) {
    const next = await stream.next();
    if (next.done) return { texts, ids, result: next.value };
    texts.push(next.value.text);
    ids.push(...next.value.tokenIds);
  }
}

describe('servingPolicyLoader on a checkpoint directory', () => {
  it('converts it once and streams whole characters with its own tokenizer', async () => {
    expect(policy.version).toBe('base-v1');
    const again = await load(dir, 'base-v1-again');
    await again.dispose();
    expect(readdirSync(join(root, 'cache')).filter((name) => name.endsWith('.gguf'))).toHaveLength(1);
    const { texts, ids, result } = await collect(policy, USER, { temperature: 1.5, maxTokens: 60, seed: 11 });
    expect(ids).toEqual(result.tokenIds);
    expect(texts.join('')).toBe(result.text);
    for (const text of texts) expect(LONE_SURROGATE.test(text)).toBe(false);
    expect(result.promptTokens).toBe(policy.encodePrompt(USER, { maxTokens: 60 }).length);
    const ended = result.finishReason === 'stop' ? result.tokenIds.slice(0, -1) : result.tokenIds;
    expect(result.text).toBe(tinyTokenizer.decode(ended, { skipSpecialTokens: true }));
    if (result.finishReason === 'stop') expect(tinyTokenizer.stopIds).toContain(result.tokenIds.at(-1));
  });

  it('cuts the reply at a stop string without ever streaming it', async () => {
    const options = { temperature: 1, maxTokens: 40, seed: 5 };
    const free = await collect(policy, USER, options);
    const text = free.result.text;
    const stop = text.slice(6, 8);
    expect(stop).toHaveLength(2);
    const { texts, result } = await collect(policy, USER, { ...options, stop: [stop] });
    expect(result.finishReason).toBe('stop');
    expect(result.text).toBe(text.slice(0, text.indexOf(stop)));
    expect(texts.join('')).toBe(result.text);
  });

  it('runs sessions through the session runner', async () => {
    const sessions = await Promise.all(
      [1, 2, 3].map(async (seed) => {
        const parts: SessionPart[] = [];
        for await (const part of runSession(
          {
            constraints: parseConstraints([{ id: 'keywords:existence', kwargs: { keywords: ['zebra'] } }]),
            maxAttempts: 2,
            sampling: { maxTokens: 6, seed },
          },
          { policy: fixedPolicy(policy) },
        ))
          parts.push(part);
        return parts;
      }),
    );
    for (const parts of sessions) {
      expect(parts.filter((p) => p.type === 'attempt:start')).toHaveLength(2);
      expect(parts.at(-1)).toMatchObject({ type: 'session:end', attempts: 2 });
    }
  });

  it('merges a PEFT adapter found in the checkpoint: the reply of the merged weights', async () => {
    const model = tinyModel(2);
    attachLora(model, { r: 2, alpha: 4, targetModules: ['q_proj', 'o_proj'], seed: 1 });
    for (const [name, v] of loraParameters(model))
      if (name.endsWith('lora_B.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', 7));
    const withAdapter = join(root, 'adapted');
    await saveCheckpoint(tinyModel(2), withAdapter, {
      files: { 'tokenizer.json': JSON.stringify(tinyTokenizer.json) },
    });
    await saveLoraAdapter(model, withAdapter);
    mergeLora(model);
    const mergedDir = await saveTinyCheckpoint(model, root, 'merged');
    model.dispose();
    const adapted = await load(withAdapter, 'adapted');
    const merged = await load(mergedDir, 'merged');
    try {
      const options = { temperature: 0, maxTokens: 12 };
      const expected = (await collect(merged, USER, options)).result.tokenIds;
      expect((await collect(adapted, USER, options)).result.tokenIds).toEqual(expected);
      expect((await collect(policy, USER, options)).result.tokenIds).not.toEqual(expected);
    } finally {
      await Promise.all([adapted.dispose(), merged.dispose()]);
    }
  });

  it('refuses a directory without a tokenizer', async () => {
    const model = tinyModel(3);
    const bare = join(root, 'bare');
    await saveCheckpoint(model, bare);
    model.dispose();
    const error = await load(bare, 'bare').catch((e: unknown) => e);
    expect(CheckpointError.isInstance(error)).toBe(true);
    expect(String(error)).toContain('no tokenizer.json');
  });

  it('refuses new attempts once disposed', async () => {
    const local = await load(dir, 'short-lived');
    await local.dispose();
    await expect(local.generate(USER).next()).rejects.toThrow('policy short-lived has been disposed');
  });

  it('fits a feedback session longer than the context window and still generates', async () => {
    const long: ChatMessage[] = [...USER];
    for (let i = 0; i < 8; i++) {
      long.push({ role: 'assistant', content: `attempt ${i} `.repeat(12) });
      long.push({ role: 'user', content: `Feedback: attempt ${i} missed the word park. Please try again.` });
    }
    expect(tinyTokenizer.applyChatTemplate(long, { addGenerationPrompt: true }).ids.length).toBeGreaterThan(
      256,
    );
    const ids = policy.encodePrompt(long, { maxTokens: 32 });
    expect(ids.length).toBeLessThanOrEqual(256 - 32);
    const { result } = await collect(policy, long, { temperature: 0, maxTokens: 32 });
    expect(result.tokenIds.length).toBeGreaterThan(0);
    expect(ids.slice(0, 5)).toEqual(tinyTokenizer.applyChatTemplate(USER).ids.slice(0, 5));
  });
});
