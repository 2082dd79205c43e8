import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../src/model/checkpoint.ts';
import { initLlamaWeights, type LlamaModel } from '../../src/model/llama.ts';
import type { BackendName } from '../../src/model/tfjs/backend.ts';
import { FIXTURES, greedyByForward, maxAbsDiff, readFixture, useBackend } from '../policy/helpers.ts';
import { tinyConfig } from '../policy/tiny-policy.ts';

// Parity with an independent PyTorch forward (test/fixtures/make_llama_fixture.py): both fixtures use
// grouped-query attention (4 query heads, 2 K/V heads); `untied` is stored as F16, `tied` as BF16 with
// Llama 3 rope scaling and an explicit head_dim.
describe.each(['wasm', 'cpu'] as BackendName[])('the tiny Llama fixtures on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  describe.each(['untied', 'tied'] as const)('%s', (variant) => {
    const expected = readFixture(variant);
    let model: LlamaModel;
    beforeAll(async () => {
      model = await loadCheckpoint(join(FIXTURES, variant));
    });
    afterAll(() => model.dispose());

    it('gives the reference logits', () => {
      const ids = tf.tensor2d(expected.input_ids, undefined, 'int32');
      const logits = model.forward(ids);
      expect(logits.shape).toEqual([2, 8, model.config.vocab_size]);
      expect(maxAbsDiff(logits.dataSync(), expected.logits.flat(2))).toBeLessThan(1e-4);
      tf.dispose([ids, logits]);
    });

    it('continues greedily with exactly the reference tokens', () => {
      expect(greedyByForward(model, expected.input_ids, expected.greedy_new_tokens[0]!.length)).toEqual(
        expected.greedy_new_tokens,
      );
    });
  });
});

describe('forward preconditions', () => {
  it('refuses sequences longer than max_position_embeddings, with both numbers', async () => {
    await useBackend('wasm');
    const model = await loadCheckpoint(join(FIXTURES, 'untied'));
    const ids = tf.zeros([1, 33], 'int32') as tf.Tensor2D;
    expect(() => model.forward(ids)).toThrow('positions up to 33: max_position_embeddings is only 32');
    tf.dispose(ids);
    model.dispose();
  });
});

describe('initLlamaWeights', () => {
  it('gives the same weights for the same seed, seed 0 included (tfjs reads a 0 seed as none)', async () => {
    await useBackend('wasm');
    const hashOf = (seed: number): string[] => {
      const weights = initLlamaWeights(tinyConfig(), { seed });
      const sums = [...weights].map(([name, t]) => `${name}:${(t.dataSync() as Float32Array).join(',')}`);
      tf.dispose([...weights.values()]);
      return sums;
    };
    for (const seed of [0, 1, 7]) expect(hashOf(seed)).toEqual(hashOf(seed));
    expect(hashOf(0)).not.toEqual(hashOf(1));
  });
});
