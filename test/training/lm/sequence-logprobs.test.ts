import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from '../../../src/model/llama.ts';
import { servingPolicyLoader } from '../../../src/policy/serving-loader.ts';
import { AdamW, createLrSchedule } from '../../../src/training/lm/optim.ts';
import {
  computeGradients,
  maskedLmLoss,
  maskedLogProbs,
  sequenceLogProbs,
  toTokenBatch,
  trainableParameters,
} from '../../../src/training/lm/sequence-logprobs.ts';
import { maxAbsDiff, useBackend } from '../../policy/helpers.ts';
import { saveTinyCheckpoint, tinyModel, tinyTokenizer } from '../../policy/tiny-policy.ts';

let model: LlamaModel;
beforeAll(async () => {
  await useBackend('wasm');
  model = tinyModel(4);
});
afterAll(() => model.dispose());

/** A chat with its assistant mask, from the tiny tokenizer's template. */
const chat = tinyTokenizer.applyChatTemplate([
  { role: 'user', content: 'Use the words dog and park.' },
  { role: 'assistant', content: 'The dog ran.' },
  { role: 'user', content: 'Feedback: missing park.' },
  { role: 'assistant', content: 'The dog ran in the park.' },
]);
const short = { ids: [0, 4, 70, 71, 6, 5, 80, 81, 6], mask: [0, 0, 0, 0, 0, 0, 1, 1, 1] };

/** float64 log-softmax reference from the model's logits, per position. */
function referenceLogProbs(ids: number[], T = 1): number[] {
  const V = model.config.vocab_size;
  const logits = tf.tidy(() => model.forward(tf.tensor2d([ids], undefined, 'int32')).dataSync());
  return ids.map((id, t) => {
    if (t === 0) return 0;
    const row = Array.from(logits.subarray((t - 1) * V, t * V), (x) => x / T);
    const max = Math.max(...row);
    return row[id]! - max - Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
  });
}

describe('sequenceLogProbs', () => {
  it('gives log π of each masked token aligned with the ids, 0 elsewhere, unaffected by padding', () => {
    const batch = toTokenBatch([{ ids: chat.ids, mask: chat.assistantMask }, short]);
    const logp = sequenceLogProbs(model, batch);
    const T = chat.ids.length;
    expect(logp.shape).toEqual([2, T]);
    const values = logp.dataSync();
    const ref = referenceLogProbs(chat.ids);
    const expected = ref.map((lp, t) => (chat.assistantMask[t] ? lp : 0));
    expect(maxAbsDiff(values.subarray(0, T), expected)).toBeLessThan(1e-5);
    const refShort = referenceLogProbs(short.ids).map((lp, t) => (short.mask[t] ? lp : 0));
    expect(maxAbsDiff(values.subarray(T, T + short.ids.length), refShort)).toBeLessThan(1e-5);
    expect(Array.from(values.subarray(T + short.ids.length, 2 * T)).every((x) => x === 0)).toBe(true);
    tf.dispose([logp, batch.ids, batch.mask]);
  });

  it('scores under softmax(logits / T) when given a temperature', () => {
    const [got] = maskedLogProbs(model, [short], { temperature: 0.5 });
    const expected = referenceLogProbs(short.ids, 0.5).filter((_, t) => short.mask[t]);
    expect(maxAbsDiff(got!, expected)).toBeLessThan(1e-5);
  });

  it("recomputes llama.cpp's behaviour log-probs at temperature 1 (the same checkpoint as GGUF F32)", async () => {
    const root = mkdtempSync(join(tmpdir(), 'corgi-sequence-logprobs-test-'));
    const policy = await servingPolicyLoader({ cacheDir: join(root, 'cache'), sequences: 1, threads: 1 })(
      await saveTinyCheckpoint(model, root, 'tiny'),
      'tiny',
    );
    try {
      const prompt = chat.ids.slice(0, 12);
      const stream = policy.generateFromIds(prompt, {
        temperature: 1,
        topK: 0,
        topP: 1,
        maxTokens: 10,
        seed: 5,
      });
      let next = await stream.next();
      while (!next.done) next = await stream.next();
      const generation = next.value;
      expect(generation.tokenIds.length).toBeGreaterThan(0);
      const ids = [...prompt, ...generation.tokenIds];
      const mask = ids.map((_, t) => (t >= prompt.length ? 1 : 0));
      const [recomputed] = maskedLogProbs(model, [{ ids, mask }]);
      // llama.cpp keeps K/V in F16: 3e-3 here; a misaligned token would be off by whole nats.
      expect(maxAbsDiff(recomputed!, generation.logprobs)).toBeLessThan(1e-2);
    } finally {
      await policy.dispose();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('maskedLmLoss', () => {
  it('is the mean negative log-prob of the masked tokens', () => {
    const sequences = [{ ids: chat.ids, mask: chat.assistantMask }, short];
    const batch = toTokenBatch(sequences);
    const loss = maskedLmLoss(model, batch);
    const all = maskedLogProbs(model, sequences).flat();
    expect(loss.dataSync()[0]).toBeCloseTo(-all.reduce((s, x) => s + x, 0) / all.length, 5);
    tf.dispose([loss, batch.ids, batch.mask]);
  });

  it('fine-tunes the whole model with AdamW on the masked tokens only', () => {
    const local = tinyModel(5);
    const params = trainableParameters(local);
    expect(params.size).toBe(local.params.size);
    const optimizer = new AdamW(params, { lr: 3e-3 });
    const batch = toTokenBatch([{ ids: chat.ids, mask: chat.assistantMask }]);
    const schedule = createLrSchedule({ peakLr: 3e-3, warmupSteps: 2, totalSteps: 10 });
    const losses: number[] = [];
    for (let step = 0; step < 10; step++) {
      optimizer.lr = schedule(optimizer.step);
      const { loss, grads } = computeGradients(params, () => maskedLmLoss(local, batch));
      optimizer.apply(grads);
      tf.dispose([...grads.values()]);
      losses.push(loss);
    }
    expect(losses[9]).toBeLessThan(losses[0]! - 1);
    tf.dispose([batch.ids, batch.mask]);
    optimizer.dispose();
    local.dispose();
  });

  it('takes no gradient from unmasked positions', () => {
    const params = trainableParameters(model);
    const gradOf = (ids: number[]) => {
      const batch = toTokenBatch([{ ids, mask: [0, 0, 0, 0, 0, 0, 1, 1, 0, 0] }]);
      const { grads } = computeGradients(params, () => maskedLmLoss(model, batch));
      const g = grads.get('model.layers.0.self_attn.q_proj.weight')!.dataSync().slice();
      tf.dispose([...grads.values(), batch.ids, batch.mask]);
      return g;
    };
    // The tokens after the last target do not matter (causal model, mask 0).
    expect(
      maxAbsDiff(gradOf([0, 4, 70, 71, 6, 5, 80, 81, 90, 91]), gradOf([0, 4, 70, 71, 6, 5, 80, 81, 12, 13])),
    ).toBe(0);
  });
});

describe('createLrSchedule', () => {
  it('warms up linearly, decays by cosine (or linearly) to minLr, then stays there', () => {
    const cosine = createLrSchedule({ peakLr: 1, warmupSteps: 4, totalSteps: 14, minLr: 0.1 });
    expect([0, 1, 2, 3].map(cosine)).toEqual([0.2, 0.4, 0.6, 0.8]);
    expect(cosine(4)).toBe(1);
    expect(cosine(9)).toBeCloseTo(0.55, 10); // halfway: (1 + 0.1) / 2
    expect(cosine(14)).toBe(0.1);
    expect(cosine(100)).toBe(0.1);
    const linear = createLrSchedule({ peakLr: 2, totalSteps: 10, decay: 'linear' });
    expect([0, 5, 10].map(linear)).toEqual([2, 1, 0]);
    expect(() => createLrSchedule({ peakLr: 1, warmupSteps: 5, totalSteps: 3 })).toThrow(
      'totalSteps (3) must be an integer ≥ warmupSteps (5)',
    );
  });
});
