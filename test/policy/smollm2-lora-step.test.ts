import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGgufModel } from '../../src/model/gguf/gguf-to-llama.ts';
import { loadGgufTokenizer } from '../../src/model/gguf/gguf-tokenizer.ts';
import type { LlamaModel } from '../../src/model/llama.ts';
import { attachLora, LORA_TARGET_MODULES } from '../../src/model/lora.ts';
import { AdamW } from '../../src/training/lm/optim.ts';
import {
  computeGradients,
  maskedLmLoss,
  toTokenBatch,
  trainableParameters,
} from '../../src/training/lm/sequence-logprobs.ts';
import { noteSkip, smollm2GgufPath } from '../support/smollm2.ts';
import { useBackend } from './helpers.ts';

const path = smollm2GgufPath();
noteSkip('LoRA step on SmolLM2', path);

describe.skipIf(!path)('a LoRA step on SmolLM2-135M-Instruct (dequantized GGUF, wasm)', () => {
  let model: LlamaModel;
  beforeAll(async () => {
    await useBackend('wasm');
    model = (await loadGgufModel(path!)).model;
    // The paper's adapter: r = 16 on all seven projections.
    attachLora(model, { r: 16, alpha: 32, targetModules: LORA_TARGET_MODULES, seed: 1 });
  }, 120_000);
  afterAll(() => model?.dispose());

  it('trains on a ~400-token sequence inside the wasm heap and lowers its loss', async () => {
    // A rollout-shaped sequence: ~300 tokens of prompt, then a completion of ~100 as the targets.
    const tokenizer = await loadGgufTokenizer(path!);
    const prompt = tokenizer.encode(
      Array.from(
        { length: 14 },
        (_, i) => `Sentence ${i + 1}: the river runs past the old mill, and the town listens to it.`,
      ).join(' '),
    );
    const completion = tokenizer.encode(
      ' The dog ran through the park, chased a ball, rolled in the grass, and came home tired and happy. '.repeat(
        4,
      ),
    );
    const ids = [...prompt, ...completion];
    expect(ids.length).toBeGreaterThan(350);
    expect(ids.length).toBeLessThan(600);
    const batch = toTokenBatch([{ ids, mask: [...prompt.map(() => 0), ...completion.map(() => 1)] }]);
    const params = trainableParameters(model);
    const optimizer = new AdamW(params, { lr: 1e-3, weightDecay: 0 });
    const step = () => {
      const { loss, grads } = computeGradients(params, () => maskedLmLoss(model, batch));
      optimizer.apply(grads);
      tf.dispose([...grads.values()]);
      return loss;
    };
    const before = step();
    const after = tf.tidy(() => maskedLmLoss(model, batch).dataSync()[0]!);
    expect(Number.isFinite(before)).toBe(true);
    expect(after).toBeLessThan(before);
    const heap = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    expect(heap).toBeLessThan(4 * 1024 ** 3);
    optimizer.dispose();
    tf.dispose([batch.ids, batch.mask]);
  }, 600_000);
});
