/**
 * The CORGI objective (Bezalel, Orgad and Globerson, AAAI 2025), in the shape TRL documents its
 * GRPO trainer: whole feedback sessions are the samples, a session's reward is the best checker
 * score over its attempts, advantages are relative to the other sessions of the same prompt (no
 * value network), and every assistant token of every attempt is trained with a clipped
 * importance-ratio surrogate plus a per-token KL penalty to the frozen reference model. Prompt and
 * feedback tokens are context, never targets.
 *
 * This file holds the pure parts: rewards, advantages, the per-token loss and its metrics.
 * corgi-trainer.ts runs the loop around them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from '../../model/llama.ts';
import { sequenceLogProbs, type TokenBatch, toTokenBatch } from '../lm/sequence-logprobs.ts';

/** How a session's attempt scores become one reward. */
export type RewardMode = 'best' | 'final' | 'discounted';
/** How rewards become advantages within a prompt's group of sessions. */
export type AdvantageMode = 'rloo' | 'grpo';

/**
 * A session's reward from its attempts' scores (in order): `best` = max (the paper's), `final` =
 * the last attempt's, `discounted` = max over k of discount^(k−1)·score_k (a solve on a later
 * attempt is worth less, which rewards getting it right early).
 */
export function sessionReward(scores: readonly number[], mode: RewardMode, discount = 1): number {
  if (scores.length === 0) return 0;
  if (mode === 'final') return scores.at(-1)!;
  if (mode === 'best') return Math.max(...scores);
  return Math.max(...scores.map((s, k) => discount ** k * s));
}

/**
 * A writer's rating (-1 thumbs down, 0 neutral, 1–5 stars) on [-1, 1]: −1, 0, and (r − 3) / 2.
 * The trainer adds `rating_weight` times this to a logged session's reward.
 */
export function ratingBonus(rating: number | null): number {
  if (rating === null) return 0;
  if (rating <= 0) return Math.max(-1, rating);
  return (rating - 3) / 2;
}

/**
 * Group-relative advantages for the sessions of one prompt.
 * - `rloo` (REINFORCE leave-one-out): r_i − mean of the others. Unbiased; no scaling.
 * - `grpo`: (r_i − mean) / (std + 1e-4); zero when every session scored the same.
 * A group of one has no baseline and gets 0 (nothing to learn from a lone sample).
 */
export function groupAdvantages(rewards: readonly number[], mode: AdvantageMode): number[] {
  const n = rewards.length;
  if (n < 2) return rewards.map(() => 0);
  const sum = rewards.reduce((a, b) => a + b, 0);
  if (mode === 'rloo') return rewards.map((r) => r - (sum - r) / (n - 1));
  const mean = sum / n;
  const std = Math.sqrt(rewards.reduce((a, r) => a + (r - mean) ** 2, 0) / n);
  if (std < 1e-8) return rewards.map(() => 0);
  return rewards.map((r) => (r - mean) / (std + 1e-4));
}

/** One attempt as a training sequence: its prompt (context) and the tokens the policy sampled. */
export interface AttemptSample {
  /** The prompt ids the attempt was generated from (chat template, fitted to the window). */
  promptIds: number[];
  /** The sampled tokens, end-of-turn included when the attempt stopped on it. */
  completionIds: number[];
  /** Log-probs of `completionIds` under the behaviour policy μ, as generation (llama.cpp) reported them. */
  behaviourLogprobs: number[];
  /** The session's advantage, shared by every token of every attempt of the session. */
  advantage: number;
  /**
   * Off-policy (a logged production session replayed by a later policy): trained with a truncated
   * importance weight min(c, π/μ) fixed before the update, instead of the clipped surrogate.
   */
  offPolicy: boolean;
}

export interface ObjectiveOptions {
  /** ε of the clipped surrogate: ratios outside [1−ε, 1+ε] stop pushing. */
  clipEpsilon: number;
  /** β of the per-token KL penalty to the reference (the paper used 0.075). */
  klCoef: number;
  /** Sampling temperature of the rollouts: log-probs are scored under softmax(logits / T). */
  temperature: number;
  /** c of the truncated importance weights min(c, π_old/μ) (V-trace's ρ̄). */
  importanceCap: number;
}

/** Sums over one minibatch, for the step's metrics (means are taken over all minibatches). */
export interface ObjectiveStats {
  /** Target (assistant) tokens. */
  tokens: number;
  /** Σ loss over tokens (the loss is this over `tokens`). */
  lossSum: number;
  /** Σ k3 KL estimate exp(ref − π) − (ref − π) − 1 over tokens. */
  klSum: number;
  /** On-policy tokens whose ratio left [1−ε, 1+ε]. */
  clipped: number;
  onPolicyTokens: number;
  /** Σ π/π_old over on-policy tokens (1 on the first epoch, up to rounding). */
  ratioSum: number;
}

/**
 * The prepared minibatch: ids and mask, and per-position old-policy log-probs, reference log-probs,
 * advantages and importance weights, all [B, T] aligned with the ids (0 off the mask).
 */
export interface PreparedBatch {
  batch: TokenBatch;
  /** The ratio's denominator: log π_old when it was recomputed before the update, else log μ. */
  old: tf.Tensor2D;
  reference: tf.Tensor2D;
  advantage: tf.Tensor2D;
  /** Fixed truncated importance weights on off-policy rows, 0 elsewhere. */
  offWeight: tf.Tensor2D;
  /**
   * Fixed truncated importance weights min(c, π_old/μ) on on-policy rows whose π_old was recomputed
   * (the rollout engine's distribution μ differs from the trained engine's π_old), 1 on other
   * on-policy rows, 0 on off-policy rows.
   */
  onWeight: tf.Tensor2D;
  /** 1 on on-policy rows' positions, 0 on off-policy rows. */
  onPolicy: tf.Tensor2D;
}

/** The masked sequence of a sample: prompt as context, completion as targets. */
export function sampleSequence(sample: AttemptSample): { ids: number[]; mask: number[] } {
  return {
    ids: [...sample.promptIds, ...sample.completionIds],
    mask: [...sample.promptIds.map(() => 0), ...sample.completionIds.map(() => 1)],
  };
}

/** Per-position values of each sample (completion-aligned `values(sample)`) as a [B, T] tensor. */
function alignedTensor(
  samples: readonly AttemptSample[],
  T: number,
  values: (sample: AttemptSample, b: number) => readonly number[] | number,
): tf.Tensor2D {
  const out = new Float32Array(samples.length * T);
  samples.forEach((s, b) => {
    const v = values(s, b);
    const start = s.promptIds.length;
    for (let j = 0; j < s.completionIds.length; j++)
      out[b * T + start + j] = typeof v === 'number' ? v : v[j]!;
  });
  return tf.tensor2d(out, [samples.length, T]);
}

/**
 * Per-token truncated importance weights min(c, π/μ) = min(c, exp(log π − log μ)) of an off-policy
 * sample: `current` = log π under the policy being trained, `behaviour` = log μ as logged.
 */
export function truncatedImportanceWeights(
  current: readonly number[],
  behaviour: readonly number[],
  cap: number,
): number[] {
  if (current.length !== behaviour.length)
    throw new Error(
      `importance weights: ${current.length} log-probs but ${behaviour.length} behaviour log-probs`,
    );
  return current.map((lp, j) => Math.min(cap, Math.exp(lp - behaviour[j]!)));
}

/**
 * Builds the tensors for one minibatch. `reference[b]` and `current[b]` are the completion
 * log-probs of sample b under the frozen reference and under the policy before the step's updates
 * (π_old; required for off-policy samples, optional for on-policy ones, whose ratio is then taken
 * against μ). The caller disposes the result (`disposePrepared`).
 */
export function prepareBatch(
  samples: readonly AttemptSample[],
  reference: readonly (readonly number[])[],
  current: readonly (readonly number[] | null)[],
  options: Pick<ObjectiveOptions, 'importanceCap'>,
): PreparedBatch {
  const batch = toTokenBatch(samples.map(sampleSequence));
  const T = batch.ids.shape[1];
  return {
    batch,
    old: alignedTensor(samples, T, (s, b) => (!s.offPolicy && current[b]) || s.behaviourLogprobs),
    reference: alignedTensor(samples, T, (_, b) => reference[b]!),
    advantage: alignedTensor(samples, T, (s) => s.advantage),
    offWeight: alignedTensor(samples, T, (s, b) => {
      if (!s.offPolicy) return 0;
      const now = current[b];
      if (!now) throw new Error('prepareBatch: an off-policy sample needs its current log-probs');
      return truncatedImportanceWeights(now, s.behaviourLogprobs, options.importanceCap);
    }),
    onWeight: alignedTensor(samples, T, (s, b) => {
      if (s.offPolicy) return 0;
      const old = current[b];
      return old ? truncatedImportanceWeights(old, s.behaviourLogprobs, options.importanceCap) : 1;
    }),
    onPolicy: alignedTensor(samples, T, (s) => (s.offPolicy ? 0 : 1)),
  };
}

export function disposePrepared(p: PreparedBatch): void {
  tf.dispose([
    p.batch.ids,
    p.batch.mask,
    p.old,
    p.reference,
    p.advantage,
    p.offWeight,
    p.onWeight,
    p.onPolicy,
  ]);
}

/**
 * The loss of one minibatch, mean over its target tokens (differentiable; use inside
 * `computeGradients`), and its stats as a kept [6] tensor the caller reads and disposes:
 *
 *   on-policy token:  −w·min(ρ·A, clip(ρ, 1−ε, 1+ε)·A) + β·KL,   ρ = π/π_old, w = min(c, π_old/μ)
 *   off-policy token: −w·A·log π + β·KL,                          w = min(c, π_old/μ)
 *   (w fixed before the update; on-policy without a recomputed π_old: π_old = μ, w = 1)
 *   KL (k3, unbiased, ≥ 0): exp(ref − log π) − (ref − log π) − 1
 */
export function corgiLoss(
  model: LlamaModel,
  p: PreparedBatch,
  options: ObjectiveOptions,
): { loss: tf.Scalar; stats: tf.Tensor1D } {
  const { clipEpsilon, klCoef, temperature } = options;
  let stats: tf.Tensor1D | undefined;
  const loss = tf.tidy(() => {
    const mask = p.batch.mask;
    const logp = sequenceLogProbs(model, p.batch, { temperature }); // 0 off the mask
    const ratio = tf.exp(tf.mul(tf.sub(logp, p.old), mask));
    const unclipped = tf.mul(ratio, p.advantage);
    const clippedRatio = tf.clipByValue(ratio, 1 - clipEpsilon, 1 + clipEpsilon);
    const surrogate = tf.neg(tf.minimum(unclipped, tf.mul(clippedRatio, p.advantage)));
    const offPolicy = tf.neg(tf.mul(tf.mul(p.offWeight, p.advantage), logp));
    const pg = tf.add(tf.mul(surrogate, p.onWeight), offPolicy);
    const d = tf.mul(tf.sub(p.reference, logp), mask);
    const kl = tf.mul(tf.sub(tf.sub(tf.exp(d), d), 1), mask);
    const perToken = tf.mul(tf.add(pg, tf.mul(kl, klCoef)), mask);
    const tokens = tf.sum(mask);
    const total = tf.sum(perToken);
    const onMask = tf.mul(mask, p.onPolicy);
    const outside = tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), clipEpsilon), 'float32');
    stats = tf.keep(
      tf.stack([
        tokens,
        total,
        tf.sum(kl),
        tf.sum(tf.mul(outside, onMask)),
        tf.sum(onMask),
        tf.sum(tf.mul(ratio, onMask)),
      ]) as tf.Tensor1D,
    );
    return tf.div(total, tf.maximum(tokens, 1)) as tf.Scalar;
  });
  return { loss, stats: stats! };
}

/** Reads and disposes the stats tensor `corgiLoss` kept. */
export function readStats(stats: tf.Tensor1D): ObjectiveStats {
  const [tokens, lossSum, klSum, clipped, onPolicyTokens, ratioSum] = stats.dataSync();
  stats.dispose();
  return {
    tokens: tokens!,
    lossSum: lossSum!,
    klSum: klSum!,
    clipped: clipped!,
    onPolicyTokens: onPolicyTokens!,
    ratioSum: ratioSum!,
  };
}

/** The rollout engine's distribution μ against the trained engine's π_old, on the sampled tokens. */
export interface EngineMismatch {
  /** Mean |log π_old − log μ| per token. */
  absLogprob: number;
  /** KL(μ‖π_old) per token, estimated as the mean of (r − 1) − log r, r = π_old/μ (k3: unbiased under μ, ≥ 0). */
  kl: number;
  tokens: number;
}

/**
 * The mismatch over the on-policy samples whose π_old was recomputed (`old[b]`, aligned with
 * `behaviourLogprobs`); zeros when there are none.
 */
export function engineMismatch(
  samples: readonly AttemptSample[],
  old: readonly (readonly number[] | null)[],
): EngineMismatch {
  let tokens = 0;
  let abs = 0;
  let kl = 0;
  samples.forEach((s, b) => {
    const now = old[b];
    if (s.offPolicy || !now) return;
    s.behaviourLogprobs.forEach((mu, j) => {
      const d = now[j]! - mu;
      tokens++;
      abs += Math.abs(d);
      kl += Math.expm1(d) - d;
    });
  });
  return { absLogprob: abs / Math.max(1, tokens), kl: kl / Math.max(1, tokens), tokens };
}
