import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConstraints } from '../../src/checkers/registry.ts';
import { CheckpointError, saveCheckpoint } from '../../src/policy/checkpoint.ts';
import { fitConversation, LocalPolicy } from '../../src/policy/local-policy.ts';
import { attachLora, loraParameters, saveLoraAdapter } from '../../src/policy/lora.ts';
import { type ChatMessage, fixedPolicy, type GenerateOptions } from '../../src/policy/types.ts';
import { runSession, type SessionPart } from '../../src/session/session-runner.ts';
import { useBackend } from './helpers.ts';
import { saveTinyCheckpoint, tinyModel, tinyTokenizer } from './tiny-policy.ts';

const USER: ChatMessage[] = [{ role: 'user', content: 'Write a sentence using the words dog and park.' }];
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

let root: string;
let dir: string;
let policy: LocalPolicy;
beforeAll(async () => {
  await useBackend('wasm');
  root = mkdtempSync(join(tmpdir(), 'corgi-local-policy-test-'));
  const model = tinyModel(2);
  dir = await saveTinyCheckpoint(model, root, 'base-v1');
  model.dispose();
  policy = await LocalPolicy.load(dir);
});
afterAll(() => {
  policy.dispose();
  rmSync(root, { recursive: true, force: true });
});

async function collect(p: LocalPolicy, messages: ChatMessage[], options: GenerateOptions) {
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

describe('LocalPolicy', () => {
  it('loads a checkpoint directory, named after it, and streams whole characters', async () => {
    expect(policy.version).toBe('base-v1');
    const { texts, ids, result } = await collect(policy, USER, { temperature: 1.5, maxTokens: 60, seed: 11 });
    expect(ids).toEqual(result.tokenIds);
    expect(texts.join('')).toBe(result.text);
    for (const text of texts) expect(LONE_SURROGATE.test(text)).toBe(false);
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

  it('decodes concurrent requests together: one batched forward per step', async () => {
    const spy = vi.spyOn(policy.model, 'forwardWithCache');
    const requests = Array.from({ length: 16 }, (_, i) => ({ temperature: 1, maxTokens: 8, seed: i }));
    const together = await Promise.all(requests.map((options) => collect(policy, USER, options)));
    const calls = spy.mock.calls.length;
    spy.mockRestore();
    // The 16 prompts are prefilled together in chunks of 256 / 16 = 16 columns (the last chunk
    // samples the first token), then at most 7 decode steps serve all 16 sequences.
    const promptLength = tinyTokenizer.applyChatTemplate(USER, { addGenerationPrompt: true }).ids.length;
    expect(calls).toBeLessThanOrEqual(Math.ceil(promptLength / 16) + 7);
    for (const [i, options] of requests.slice(0, 4).entries()) {
      expect((await collect(policy, USER, options)).result).toEqual(together[i]!.result);
    }
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

  it('applies adapter files found in the checkpoint (merged, or kept as adapters)', async () => {
    const model = tinyModel(2);
    attachLora(model, { r: 2, alpha: 4, targetModules: ['q_proj', 'o_proj'], seed: 1 });
    for (const [name, v] of loraParameters(model))
      if (name.endsWith('lora_B.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', 7));
    const adapted = new LocalPolicy(model, tinyTokenizer);
    const withAdapter = join(root, 'adapted');
    await saveCheckpoint(tinyModel(2), withAdapter, {
      files: { 'tokenizer.json': JSON.stringify(tinyTokenizer.json) },
    });
    await saveLoraAdapter(model, withAdapter);
    const merged = await LocalPolicy.load(withAdapter);
    const separate = await LocalPolicy.load(withAdapter, { mergeAdapter: false, version: 'v2' });
    expect(merged.model.adapters.size).toBe(0);
    expect(separate.model.adapters.size).toBe(4);
    expect(separate.version).toBe('v2');
    const options = { temperature: 0, maxTokens: 12 };
    const expected = (await collect(adapted, USER, options)).result.tokenIds;
    expect((await collect(merged, USER, options)).result.tokenIds).toEqual(expected);
    expect((await collect(separate, USER, options)).result.tokenIds).toEqual(expected);
    expect((await collect(policy, USER, options)).result.tokenIds).not.toEqual(expected);
    for (const p of [adapted, merged, separate]) p.dispose();
  });

  it('refuses a directory without a tokenizer', async () => {
    const model = tinyModel(3);
    const bare = join(root, 'bare');
    await saveCheckpoint(model, bare);
    model.dispose();
    const error = await LocalPolicy.load(bare).catch((e: unknown) => e);
    expect(CheckpointError.isInstance(error)).toBe(true);
    expect(String(error)).toContain('no tokenizer.json');
  });

  it('keeps the tensor count stable across 1,000 generate calls', async () => {
    const wave = (w: number) =>
      Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          collect(policy, USER, { temperature: 1, maxTokens: 1 + ((w + i) % 4), seed: w * 10 + i }),
        ),
      );
    await wave(0); // warm-up: kernels, cached transposes
    const tensors = tf.memory().numTensors;
    const dataIds = tf.backend().numDataIds();
    for (let w = 1; w <= 100; w++) await wave(w);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.backend().numDataIds()).toBe(dataIds);
  });

  it('fails running attempts and refuses new ones once disposed', async () => {
    const model = tinyModel(2);
    const local = new LocalPolicy(model, tinyTokenizer, { version: 'short-lived' });
    const stream = local.generate(USER, { maxTokens: 50, temperature: 1, seed: 1 });
    await stream.next();
    local.dispose();
    await expect(
      (async () => {
        for (;;) if ((await stream.next()).done) return;
      })(),
    ).rejects.toThrow('GenerationScheduler: closed');
    await expect(local.generate(USER).next()).rejects.toThrow('policy short-lived has been disposed');
  });
});

describe('fitConversation', () => {
  // One "token" per character keeps the arithmetic readable.
  const encode = (messages: readonly ChatMessage[]) =>
    [...messages.map((m) => m.content).join('')].map(() => 0);
  const session: ChatMessage[] = [
    { role: 'user', content: 'IIIIIIIIII' }, // the instruction: 10
    { role: 'assistant', content: 'a1a1a1a1' }, // 8
    { role: 'user', content: 'f1f1f1' }, // 6
    { role: 'assistant', content: 'a2a2a2a2' },
    { role: 'user', content: 'f2f2f2' },
    { role: 'assistant', content: 'a3a3a3a3' },
    { role: 'user', content: 'f3f3f3' },
  ];
  const kept = (budget: number) => {
    const contents: string[] = [];
    fitConversation(
      session,
      (messages) => {
        contents.splice(0, contents.length, ...messages.map((m) => m.content));
        return encode(messages);
      },
      budget,
    );
    return contents;
  };

  it('keeps the whole conversation when it fits', () => {
    expect(kept(52)).toHaveLength(7);
  });

  it('drops the oldest retry exchanges first, keeping the instruction and the latest attempt', () => {
    expect(kept(51)).toEqual(['IIIIIIIIII', 'a2a2a2a2', 'f2f2f2', 'a3a3a3a3', 'f3f3f3']);
    expect(kept(24)).toEqual(['IIIIIIIIII', 'a3a3a3a3', 'f3f3f3']);
  });

  it('keeps only the last feedback when even one attempt does not fit, and returns the shortest otherwise', () => {
    expect(kept(23)).toEqual(['IIIIIIIIII', 'f3f3f3']);
    expect(fitConversation(session, encode, 5)).toHaveLength(16);
  });

  it('never drops a single-turn prompt', () => {
    expect(fitConversation(session.slice(0, 1), encode, 3)).toHaveLength(10);
  });
});

describe('LocalPolicy on long sessions', () => {
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
