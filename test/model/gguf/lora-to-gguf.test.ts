import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaContext, LlamaModel as LlamaCppModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../../src/model/checkpoint.ts';
import { writeLlamaGguf } from '../../../src/model/gguf/checkpoint-to-gguf.ts';
import { writeLoraAdapterGguf } from '../../../src/model/gguf/lora-to-gguf.ts';
import { inspectGguf } from '../../../src/model/gguf/reader.ts';
import type { LlamaModel } from '../../../src/model/llama.ts';
import { attachLora, mergeLora, saveLoraAdapter } from '../../../src/model/lora.ts';
import { FIXTURES, maxAbsDiff, readFixture, useBackend } from '../../policy/helpers.ts';
import { createExactContext, llamaCppLogProbs, loadLlamaCppModel, logSoftmax } from './llama-cpp.ts';
import { tinyTokenizer } from './tiny-tokenizer.ts';

const dir = mkdtempSync(join(tmpdir(), 'corgi-gguf-lora-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Every projection adapted (q and k included, whose B rows llama.cpp needs permuted like the base),
// B random instead of PEFT's zeros so the adapter changes the output; rsLoRA so alpha ≠ PEFT's alpha.
describe.each(['untied', 'tied'] as const)(
  'a LoRA adapter on the %s tiny Llama, applied by llama.cpp',
  (variant) => {
    const expected = readFixture(variant);
    const basePath = join(dir, `${variant}.gguf`);
    const adapterPath = join(dir, `${variant}-lora.gguf`);
    let merged: LlamaModel;
    let cpp: LlamaCppModel;
    let context: LlamaContext;

    beforeAll(async () => {
      await useBackend('cpu');
      const model = await loadCheckpoint(join(FIXTURES, variant));
      await writeLlamaGguf(model, tinyTokenizer(), basePath);
      attachLora(model, {
        r: 2,
        alpha: 3,
        useRslora: true,
        seed: 5,
        targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      });
      let seed = 100;
      for (const { b } of model.adapters.values())
        b.assign(tf.randomNormal(b.shape, 0, 0.3, 'float32', seed++));
      await writeLoraAdapterGguf(model, adapterPath);
      await saveLoraAdapter(model, join(dir, `${variant}-peft`));
      mergeLora(model);
      merged = model;
      cpp = await loadLlamaCppModel(basePath);
      context = await createExactContext(cpp, { lora: [{ filePath: adapterPath, scale: 1 }] });
    });
    afterAll(async () => {
      merged.dispose();
      await context.dispose();
      await cpp.dispose();
    });

    it('gives the log-probabilities of our merged-weights model within 1e-4', async () => {
      const ids = tf.tensor2d(expected.input_ids, undefined, 'int32');
      const logits = merged.forward(ids).arraySync() as number[][][];
      ids.dispose();
      for (const [b, row] of expected.input_ids.entries()) {
        const got = await llamaCppLogProbs(context, row);
        const want = logits[b]!.map(logSoftmax);
        expect(maxAbsDiff(got.flat(), want.flat())).toBeLessThan(1e-4);
        // The adapter matters: the base model's log-probabilities are far from these.
        expect(maxAbsDiff(got.flat(), expected.logits[b]!.flatMap(logSoftmax))).toBeGreaterThan(1e-2);
      }
    });

    it('writes llama.cpp’s adapter keys and tensor shapes', async () => {
      const file = await inspectGguf(adapterPath);
      expect(file.metadata['general.type']).toBe('adapter');
      expect(file.metadata['adapter.type']).toBe('lora');
      expect(file.metadata['adapter.lora.alpha']).toBeCloseTo((3 / Math.sqrt(2)) * 2, 5);
      const a = file.tensors.find((t) => t.name === 'blk.0.attn_q.weight.lora_a')!;
      const b = file.tensors.find((t) => t.name === 'blk.0.attn_q.weight.lora_b')!;
      expect(a.dims).toEqual([16, 2]);
      expect(b.dims).toEqual([2, 16]);
      expect(file.tensors).toHaveLength(2 * 7 * 2);
    });

    it('writes the same file from the PEFT adapter directory', async () => {
      const fromDir = join(dir, `${variant}-from-dir.gguf`);
      await writeLoraAdapterGguf(join(dir, `${variant}-peft`), fromDir, { baseConfig: merged.config });
      expect(readFileSync(fromDir).equals(readFileSync(adapterPath))).toBe(true);
    });
  },
);
