import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  computeGradients,
  maskedLogProbs,
  trainableParameters,
} from '../../../src/training/lm/sequence-logprobs.ts';
import {
  type AttemptSample,
  corgiLoss,
  disposePrepared,
  groupAdvantages,
  prepareBatch,
  ratingBonus,
  readStats,
  sampleSequence,
  sessionReward,
} from '../../../src/training/rl/corgi-objective.ts';
import { useBackend } from '../../policy/helpers.ts';
import { tinyModel } from '../../policy/tiny-policy.ts';

beforeAll(async () => {
  await useBackend('wasm');
});

describe('rewards and advantages', () => {
  it('scores a session by its best, final or discounted attempt', () => {
    expect(sessionReward([0.2, 1, 0.5], 'best')).toBe(1);
    expect(sessionReward([0.2, 1, 0.5], 'final')).toBe(0.5);
    expect(sessionReward([0.2, 1, 0.5], 'discounted', 0.5)).toBe(0.5);
    expect(sessionReward([], 'best')).toBe(0);
  });

  it('maps ratings onto [-1, 1]', () => {
    expect([null, -1, 0, 1, 3, 5].map(ratingBonus)).toEqual([0, -1, 0, -1, 0, 1]);
  });

  it('gives leave-one-out and GRPO advantages, zero for a group with no spread', () => {
    expect(groupAdvantages([1, 0, 0, 0], 'rloo')).toEqual([1, -1 / 3, -1 / 3, -1 / 3]);
    const grpo = groupAdvantages([1, 0], 'grpo');
    expect(grpo[0]).toBeCloseTo(1, 3);
    expect(grpo[1]).toBeCloseTo(-1, 3);
    expect(groupAdvantages([0.5, 0.5, 0.5], 'grpo')).toEqual([0, 0, 0]);
    expect(groupAdvantages([0.7], 'rloo')).toEqual([0]);
  });
});

describe('corgiLoss', () => {
  const sample = (advantage: number, offPolicy = false): AttemptSample => ({
    promptIds: [1, 40, 41, 42],
    completionIds: [50, 51, 52],
    behaviourLogprobs: [0, 0, 0],
    advantage,
    offPolicy,
  });

  it('is the plain policy gradient when the policy is the behaviour policy, and moves log-probs the way of the advantage', () => {
    const model = tinyModel(3);
    const samples = [sample(1)];
    const current = maskedLogProbs(model, samples.map(sampleSequence));
    samples[0]!.behaviourLogprobs = current[0]!;
    // Reference = current policy: the KL term and its gradient are zero at the start.
    const prepared = prepareBatch(samples, current, [null], { importanceCap: 1 });
    const params = trainableParameters(model);
    const options = { clipEpsilon: 0.2, klCoef: 0.075, temperature: 1, importanceCap: 1 };
    let statsTensor: tf.Tensor1D | undefined;
    const { loss, grads } = computeGradients(params, () => {
      const out = corgiLoss(model, prepared, options);
      statsTensor = out.stats;
      return out.loss;
    });
    const stats = readStats(statsTensor!);
    expect(stats.tokens).toBe(3);
    expect(stats.klSum).toBeCloseTo(0, 5);
    expect(stats.clipped).toBe(0);
    expect(stats.ratioSum).toBeCloseTo(3, 4);
    expect(loss).toBeCloseTo(-1, 4); // −mean(ρ·A) with ρ = 1, A = 1
    // One small step down the gradient raises the completion's log-probability.
    const before = current[0]!.reduce((a, b) => a + b, 0);
    for (const [name, g] of grads) params.get(name)!.assign(tf.sub(params.get(name)!, tf.mul(g, 0.05)));
    const after = maskedLogProbs(model, samples.map(sampleSequence))[0]!.reduce((a, b) => a + b, 0);
    expect(after).toBeGreaterThan(before);
    tf.dispose([...grads.values()]);
    disposePrepared(prepared);
    model.dispose();
  });

  it('clips ratios outside 1±ε and penalises distance from the reference', () => {
    const model = tinyModel(4);
    const samples = [sample(1)];
    const current = maskedLogProbs(model, samples.map(sampleSequence));
    // Behaviour 1 nat less likely than now: ρ = e > 1 + ε, so a positive advantage is clipped.
    samples[0]!.behaviourLogprobs = current[0]!.map((lp) => lp - 1);
    const reference = [current[0]!.map((lp) => lp - 0.5)];
    const prepared = prepareBatch(samples, reference, [null], { importanceCap: 1 });
    const out = corgiLoss(model, prepared, { clipEpsilon: 0.2, klCoef: 1, temperature: 1, importanceCap: 1 });
    const stats = readStats(out.stats);
    expect(stats.clipped).toBe(3);
    const klPerToken = Math.exp(-0.5) + 0.5 - 1;
    expect(stats.klSum / 3).toBeCloseTo(klPerToken, 4);
    expect(out.loss.dataSync()[0]).toBeCloseTo(-1.2 + klPerToken, 4);
    out.loss.dispose();
    disposePrepared(prepared);
    model.dispose();
  });

  it('weights off-policy samples by the truncated importance ratio fixed before the update', () => {
    const model = tinyModel(5);
    const samples = [sample(2, true)];
    const current = maskedLogProbs(model, samples.map(sampleSequence));
    samples[0]!.behaviourLogprobs = current[0]!.map((lp) => lp + Math.log(4)); // π/μ = 1/4
    const prepared = prepareBatch(samples, current, current, { importanceCap: 1 });
    expect([...prepared.offWeight.dataSync()].filter((w) => w > 0).map((w) => Number(w.toFixed(4)))).toEqual([
      0.25, 0.25, 0.25,
    ]);
    const out = corgiLoss(model, prepared, { clipEpsilon: 0.2, klCoef: 0, temperature: 1, importanceCap: 1 });
    const meanLogp = current[0]!.reduce((a, b) => a + b, 0) / 3;
    expect(out.loss.dataSync()[0]).toBeCloseTo(-0.25 * 2 * meanLogp, 3);
    expect(readStats(out.stats).onPolicyTokens).toBe(0);
    out.loss.dispose();
    disposePrepared(prepared);
    model.dispose();
  });
});
