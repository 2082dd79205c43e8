import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerConvertCommand } from '../../src/cli/convert-command.ts';
import { GgmlType } from '../../src/model/gguf/ggml-types.ts';
import { inspectGguf } from '../../src/model/gguf/reader.ts';
import type { LlamaModel } from '../../src/model/llama.ts';
import { attachLora, mergeLora, saveLoraAdapter } from '../../src/model/lora.ts';
import {
  createExactContext,
  llamaCppLogProbs,
  loadLlamaCppModel,
  logSoftmax,
} from '../model/gguf/llama-cpp.ts';
import { maxAbsDiff, useBackend } from '../policy/helpers.ts';
import { saveTinyCheckpoint, tinyModel, tinyTokenizer } from '../policy/tiny-policy.ts';

let root: string;
let plain: string;
let adapted: string;
let merged: LlamaModel;
beforeAll(async () => {
  await useBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'corgi-convert-test-'));
  const model = tinyModel(3);
  plain = await saveTinyCheckpoint(model, root, 'plain');
  // A checkpoint with a PEFT adapter beside its weights (what training saves): convert merges it.
  adapted = await saveTinyCheckpoint(model, root, 'adapted');
  attachLora(model, { r: 4, alpha: 8, targetModules: ['q_proj', 'k_proj', 'v_proj', 'down_proj'], seed: 1 });
  let seed = 7;
  for (const { b } of model.adapters.values()) b.assign(tf.randomNormal(b.shape, 0, 0.2, 'float32', seed++));
  await saveLoraAdapter(model, adapted);
  mergeLora(model);
  merged = model;
});
afterAll(() => {
  merged.dispose();
  rmSync(root, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

async function run(args: string[]) {
  const program = new Command('corgi').exitOverride();
  registerConvertCommand(program);
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0);
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0);
  try {
    await program.parseAsync(['node', 'corgi', ...args]);
  } finally {
    vi.restoreAllMocks();
  }
  return { stdout: out.join(''), stderr: err.join(''), exitCode: process.exitCode };
}

describe('corgi convert', () => {
  it('writes a Q8_0 GGUF and prints its summary as JSON', async () => {
    const out = join(root, 'plain-q8.gguf');
    const { stdout, exitCode } = await run(['convert', plain, '--out', out, '--type', 'q8_0', '--json']);
    expect(exitCode).toBeUndefined();
    const summary = JSON.parse(stdout);
    expect(summary).toMatchObject({ path: out, type: 'q8_0', tensors: 3 + 9 * 2, merged_adapter: false });
    expect(summary.parameters).toBe(merged.numParameters());
    const file = await inspectGguf(out);
    expect(summary.bytes).toBe(file.fileSize);
    expect(file.tensors).toHaveLength(summary.tensors);
    expect(file.metadata['general.name']).toBe('plain');
    expect(file.metadata['general.file_type']).toBe(7);
    const types = new Map(file.tensors.map((t) => [t.name, t.type]));
    expect(types.get('blk.0.attn_q.weight')).toBe(GgmlType.Q8_0);
    expect(types.get('token_embd.weight')).toBe(GgmlType.Q8_0);
    expect(types.get('blk.0.attn_norm.weight')).toBe(GgmlType.F32);
  });

  it('merges the checkpoint’s LoRA adapter: llama.cpp gives the merged model’s log-probs', async () => {
    const out = join(root, 'adapted.gguf');
    const { stdout } = await run(['convert', adapted, '--out', out, '--json']);
    expect(JSON.parse(stdout)).toMatchObject({ type: 'f32', merged_adapter: true });
    const ids = tinyTokenizer.encode('the cat sat on the mat', { addBos: true });
    const logits = merged.forward(tf.tensor2d([ids], undefined, 'int32'));
    const want = (logits.arraySync() as number[][][])[0]!.map(logSoftmax);
    logits.dispose();
    const cpp = await loadLlamaCppModel(out);
    const context = await createExactContext(cpp);
    try {
      expect(maxAbsDiff((await llamaCppLogProbs(context, ids)).flat(), want.flat())).toBeLessThan(1e-4);
    } finally {
      await context.dispose();
      await cpp.dispose();
    }
  });

  it('refuses a missing directory with exit code 2 and the reason', async () => {
    const { stdout, exitCode } = await run([
      'convert',
      join(root, 'nope'),
      '--out',
      join(root, 'x.gguf'),
      '--json',
    ]);
    expect(exitCode).toBe(2);
    expect(JSON.parse(stdout).error).toContain('does not exist');
  });

  it('refuses an unknown --type', async () => {
    await expect(run(['convert', plain, '--out', join(root, 'x.gguf'), '--type', 'q4_0'])).rejects.toThrow(
      'expected f32 or q8_0',
    );
  });
});
