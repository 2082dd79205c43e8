import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from '../../../src/model/llama.ts';
import { attachLora } from '../../../src/model/lora.ts';
import { tokenLogProbs } from '../../../src/model/tfjs/wasm-kernels.ts';
import { recomputedTokenLogProbs } from '../../../src/training/lm/recompute.ts';
import { computeGradients, trainableParameters } from '../../../src/training/lm/sequence-logprobs.ts';
import { maxAbsDiff, useBackend } from '../../policy/helpers.ts';
import { tinyModel } from '../../policy/tiny-policy.ts';

// Three rows of different lengths (right-padded with 0): a prompt part (mask 0) and a completion.
const ROWS = [
  { ids: [0, 4, 60, 61, 62, 63, 6, 5, 70, 71, 72, 73], completion: 4 },
  { ids: [0, 4, 90, 91, 6, 5, 80, 81], completion: 3 },
  { ids: [0, 4, 100, 101, 102, 6, 5, 110, 111, 112, 113, 114, 115, 116], completion: 7 },
];
const T = Math.max(...ROWS.map((r) => r.ids.length)) - 1;
const B = ROWS.length;
const inputs = () =>
  tf.tensor2d(
    ROWS.flatMap((r) => pad(r.ids.slice(0, -1))),
    [B, T],
    'int32',
  );
const targets = () =>
  tf.tensor2d(
    ROWS.flatMap((r) => pad(r.ids.slice(1))),
    [B, T],
    'int32',
  );
const mask = () =>
  tf.tensor2d(
    ROWS.flatMap((r) => pad(r.ids.slice(1).map((_, t) => (t >= r.ids.length - 1 - r.completion ? 1 : 0)))),
    [B, T],
  );
function pad(xs: number[]): number[] {
  return [...xs, ...Array(T - xs.length).fill(0)];
}
// A per-token loss that weights tokens differently, so every position's gradient matters.
const WEIGHTS = () =>
  tf.tensor2d(
    Array.from({ length: B * T }, (_, i) => ((i % 5) - 2) / 3),
    [B, T],
  );

/** The plain graph: every position through the head, autodiff keeping everything. */
function plainLogProbs(model: LlamaModel, temperature = 1): tf.Tensor2D {
  return tf.tidy(() => {
    const V = model.config.vocab_size;
    let logits = tf.reshape(model.forward(inputs()), [B * T, V]) as tf.Tensor2D;
    if (temperature !== 1) logits = tf.div(logits, temperature);
    const logp = tf.reshape(tokenLogProbs(logits, tf.reshape(targets(), [B * T]) as tf.Tensor1D), [B, T]);
    return tf.mul(logp, mask()) as tf.Tensor2D;
  });
}

function gradsOf(model: LlamaModel, logp: () => tf.Tensor2D) {
  const params = trainableParameters(model);
  const { loss, grads } = computeGradients(params, () =>
    tf.tidy(() => tf.sum(tf.mul(logp(), WEIGHTS())) as tf.Scalar),
  );
  const values = new Map([...grads].map(([name, g]) => [name, g.dataSync().slice() as Float32Array]));
  tf.dispose([...grads.values()]);
  return { loss, values };
}

function expectSameGradients(
  a: ReturnType<typeof gradsOf>,
  b: ReturnType<typeof gradsOf>,
  tolerance: number,
): void {
  expect(Math.abs(a.loss - b.loss)).toBeLessThan(tolerance);
  expect([...b.values.keys()].sort()).toEqual([...a.values.keys()].sort());
  for (const [name, g] of a.values) {
    const scale = Math.max(1e-3, ...Array.from(g, Math.abs));
    expect(maxAbsDiff(g, b.values.get(name)!) / scale, name).toBeLessThan(tolerance);
  }
}

describe.each(['wasm', 'cpu'] as const)('recomputedTokenLogProbs (%s)', (backend) => {
  let lora: LlamaModel;
  let full: LlamaModel;
  beforeAll(async () => {
    await useBackend(backend);
    lora = tinyModel(5);
    attachLora(lora, {
      r: 4,
      alpha: 8,
      targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      seed: 2,
    });
    // B starts at zero, which would hide errors in A's gradient: give the adapters a random B.
    for (const [i, v] of [...trainableParameters(lora)].entries())
      if (v[0].endsWith('lora_B.weight')) v[1].assign(tf.randomNormal(v[1].shape, 0, 0.1, 'float32', i));
    full = tinyModel(6, { tie_word_embeddings: true });
  });
  afterAll(() => {
    lora.dispose();
    full.dispose();
  });

  it('gives the plain graph’s log-probs at the masked positions and 0 elsewhere', () => {
    const plain = plainLogProbs(lora);
    const ids = [inputs(), targets(), mask()] as const;
    const ours = recomputedTokenLogProbs(lora, ...ids, [], { microBatchTokens: 16, headChunk: 3 });
    expect(maxAbsDiff(ours.dataSync(), plain.dataSync())).toBeLessThan(1e-5);
    tf.dispose([plain, ours, ...ids]);
  });

  it.each([
    { microBatchTokens: 1, headChunk: 1 },
    { microBatchTokens: 20, headChunk: 4 },
    { microBatchTokens: 4096, headChunk: 128 },
  ])('gives LoRA gradients equal to plain autodiff with %o', (options) => {
    const ids = [inputs(), targets(), mask()] as const;
    const vars = [...trainableParameters(lora).values()];
    const plain = gradsOf(lora, () => plainLogProbs(lora));
    const ours = gradsOf(lora, () => recomputedTokenLogProbs(lora, ...ids, vars, options));
    expectSameGradients(plain, ours, 1e-4);
    tf.dispose([...ids]);
  });

  it('gives full-model gradients (tied embedding, norms) and honours the temperature', () => {
    const ids = [inputs(), targets(), mask()] as const;
    const vars = [...trainableParameters(full).values()];
    expect(vars.length).toBe(full.params.size); // every weight trains: embedding, norms, projections
    const plain = gradsOf(full, () => plainLogProbs(full, 0.7));
    const ours = gradsOf(full, () =>
      recomputedTokenLogProbs(full, ...ids, vars, { microBatchTokens: 24, headChunk: 5, temperature: 0.7 }),
    );
    expectSameGradients(plain, ours, 1e-4);
    tf.dispose([...ids]);
  });

  it('leaves no tensor behind, with or without a tape', () => {
    const ids = [inputs(), targets(), mask()] as const;
    const vars = [...trainableParameters(lora).values()];
    const before = tf.memory().numTensors;
    tf.dispose(recomputedTokenLogProbs(lora, ...ids, vars, { microBatchTokens: 16 }));
    gradsOf(lora, () => recomputedTokenLogProbs(lora, ...ids, vars, { microBatchTokens: 16 }));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...ids]);
  });
});
