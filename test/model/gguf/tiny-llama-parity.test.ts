import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaContext, LlamaModel as LlamaCppModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../../src/model/checkpoint.ts';
import { writeLlamaGguf } from '../../../src/model/gguf/checkpoint-to-gguf.ts';
import { loadGgufModel } from '../../../src/model/gguf/gguf-to-llama.ts';
import { inspectGguf } from '../../../src/model/gguf/reader.ts';
import type { LlamaModel } from '../../../src/model/llama.ts';
import { FIXTURES, greedyByForward, maxAbsDiff, readFixture, useBackend } from '../../policy/helpers.ts';
import {
  createExactContext,
  llamaCppGreedy,
  llamaCppLogProbs,
  loadLlamaCppModel,
  logSoftmax,
} from './llama-cpp.ts';
import { tinyTokenizer } from './tiny-tokenizer.ts';

// Both fixtures: grouped-query attention (4 query heads, 2 K/V heads); `tied` adds Llama 3 rope scaling
// (rope_freqs.weight) and an explicit head_dim. Log-probabilities are compared, not logits: llama.cpp
// hands out probabilities only. Measured: llama.cpp and TF.js agree to ~3e-6, PyTorch (float64) to ~1e-5.
const TOLERANCE = 1e-4;

const dir = mkdtempSync(join(tmpdir(), 'corgi-gguf-parity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(['untied', 'tied'] as const)('the %s tiny Llama written as GGUF F32', (variant) => {
  const expected = readFixture(variant);
  const path = join(dir, `${variant}.gguf`);
  let ours: LlamaModel;
  let cpp: LlamaCppModel;
  let context: LlamaContext;
  let oursLogProbs: number[][][];

  beforeAll(async () => {
    await useBackend('cpu');
    ours = await loadCheckpoint(join(FIXTURES, variant));
    await writeLlamaGguf(ours, tinyTokenizer(), path);
    cpp = await loadLlamaCppModel(path);
    context = await createExactContext(cpp);
    const ids = tf.tensor2d(expected.input_ids, undefined, 'int32');
    const logits = ours.forward(ids).arraySync() as number[][][];
    oursLogProbs = logits.map((row) => row.map(logSoftmax));
    ids.dispose();
  });
  afterAll(async () => {
    ours.dispose();
    await context.dispose();
    await cpp.dispose();
  });

  it('gives llama.cpp the log-probabilities of our TF.js model and of PyTorch', async () => {
    for (const [b, ids] of expected.input_ids.entries()) {
      const got = await llamaCppLogProbs(context, ids);
      expect(got.length).toBe(ids.length);
      expect(got[0]!.length).toBe(ours.config.vocab_size);
      const torch = expected.logits[b]!.map(logSoftmax);
      expect(maxAbsDiff(got.flat(), oursLogProbs[b]!.flat())).toBeLessThan(TOLERANCE);
      expect(maxAbsDiff(got.flat(), torch.flat())).toBeLessThan(TOLERANCE);
    }
  });

  it('makes llama.cpp continue greedily with exactly the reference tokens', async () => {
    for (const [b, ids] of expected.input_ids.entries()) {
      const want = expected.greedy_new_tokens[b]!;
      expect(await llamaCppGreedy(context, ids, want.length)).toEqual(want);
    }
  });

  it('loads back into TF.js with the directory’s logits and config', async () => {
    const { model, config } = await loadGgufModel(path);
    try {
      expect(config.tie_word_embeddings).toBe(variant === 'tied');
      expect(config.num_key_value_heads).toBe(ours.config.num_key_value_heads);
      const ids = tf.tensor2d(expected.input_ids, undefined, 'int32');
      const a = ours.forward(ids);
      const c = model.forward(ids);
      expect(maxAbsDiff(c.dataSync(), a.dataSync())).toBeLessThan(1e-5);
      expect(greedyByForward(model, expected.input_ids, 4)).toEqual(
        expected.greedy_new_tokens.map((row) => row.slice(0, 4)),
      );
      tf.dispose([ids, a, c]);
    } finally {
      model.dispose();
    }
  });

  it('loads through loadCheckpoint given the .gguf path', async () => {
    const model = await loadCheckpoint(path);
    expect(model.numParameters()).toBe(ours.numParameters());
    model.dispose();
  });

  it('reads back through the GGUF reader: llama keys, names, permuted q rows', async () => {
    const file = await inspectGguf(path);
    expect(file.metadata['general.architecture']).toBe('llama');
    expect(file.metadata['llama.attention.head_count_kv']).toBe(2);
    expect(file.metadata['tokenizer.ggml.pre']).toBe('gpt-2');
    const names = file.tensors.map((t) => t.name);
    expect(names).toContain('blk.1.attn_q.weight');
    expect(names.includes('output.weight')).toBe(variant === 'untied');
    expect(names.includes('rope_freqs.weight')).toBe(variant === 'tied');
    const q = file.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    expect(q.dims).toEqual([16, 16]);
  });
});
