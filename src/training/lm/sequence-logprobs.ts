/**
 * Training primitives over chat token sequences: masked per-token log-probabilities (what a policy
 * gradient and a KL penalty need) and the masked language-model loss (SFT), with gradients for any
 * set of variables, so the same code trains the full model or only LoRA adapters.
 *
 * Alignment: a batch is ids [B, T] with a mask [B, T] aligned to the ids, the way
 * `Tokenizer.applyChatTemplate` returns `assistantMask`: mask[b][t] = 1 means "token t is a target",
 * predicted from tokens < t. Column 0 is never a target (nothing predicts it).
 *
 * These agree with generation's behaviour log-probs (llama-cpp-policy.ts) when sampling used temperature 1,
 * topK 0, topP 1; pass `temperature` to score under softmax(logits / T) instead. Truncated sampling
 * (top-k, top-p) has no differentiable counterpart here: use its behaviour log-probs as they are.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from '../../model/llama.ts';
import { loraParameters } from '../../model/lora.ts';
import { type RecomputeOptions, recomputedTokenLogProbs } from './recompute.ts';

/** One sequence and its target mask (same length). */
export interface MaskedSequence {
  ids: readonly number[];
  /** 1 where the token is a target (e.g. `assistantMask`), 0 elsewhere. */
  mask: readonly number[];
}

/** A right-padded batch: ids int32 [B, T], mask float32 [B, T] (0 on padding). */
export interface TokenBatch {
  ids: tf.Tensor2D;
  mask: tf.Tensor2D;
}

/**
 * Stacks sequences into a right-padded batch (right padding needs no attention mask: a causal
 * model never looks ahead, and pad columns are not targets). The caller disposes the tensors.
 */
export function toTokenBatch(sequences: readonly MaskedSequence[], padId = 0): TokenBatch {
  if (sequences.length === 0) throw new Error('toTokenBatch: no sequences');
  const T = Math.max(...sequences.map((s) => s.ids.length));
  if (T < 2)
    throw new Error(`toTokenBatch: sequences need at least 2 tokens to have a target, longest is ${T}`);
  const B = sequences.length;
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Float32Array(B * T);
  sequences.forEach((s, b) => {
    if (s.mask.length !== s.ids.length)
      throw new Error(`sequence ${b}: ${s.ids.length} ids but ${s.mask.length} mask entries`);
    ids.set(s.ids, b * T);
    for (let t = 1; t < s.mask.length; t++) mask[b * T + t] = s.mask[t] ? 1 : 0;
  });
  return { ids: tf.tensor2d(ids, [B, T], 'int32'), mask: tf.tensor2d(mask, [B, T]) };
}

export type LogProbOptions = RecomputeOptions;

/**
 * log π(ids[b, t] | ids[b, <t]) at every masked position, 0 elsewhere → [B, T], aligned with the
 * ids (column 0 is 0). Differentiable: use inside `computeGradients`. Memory stays bounded at any
 * batch size (recompute.ts: layers recomputed in the backward, in micro-batches of
 * `microBatchTokens`; only masked positions reach the vocabulary head).
 */
export function sequenceLogProbs(
  model: LlamaModel,
  batch: TokenBatch,
  options: LogProbOptions = {},
): tf.Tensor2D {
  const [B, T] = batch.ids.shape;
  const variables = [...trainableParameters(model).values()];
  return tf.tidy(() => {
    const inputs = tf.slice(batch.ids, [0, 0], [B, T - 1]); // [B, T−1]: tokens 0..T−2 predict 1..T−1
    const targets = tf.slice(batch.ids, [0, 1], [B, T - 1]);
    const mask = tf.slice(batch.mask, [0, 1], [B, T - 1]);
    const logp = recomputedTokenLogProbs(model, inputs, targets, mask, variables, options); // [B, T−1]
    return tf.concat([tf.zeros([B, 1]), logp], 1) as tf.Tensor2D; // realigned with the ids
  });
}

/**
 * Mean next-token cross-entropy over the masked positions (Σ mask·nll / Σ mask): supervised
 * fine-tuning on assistant tokens only. Differentiable.
 */
export function maskedLmLoss(
  model: LlamaModel,
  batch: TokenBatch,
  options: RecomputeOptions = {},
): tf.Scalar {
  return tf.tidy(() => {
    const logp = sequenceLogProbs(model, batch, options);
    return tf.div(tf.neg(tf.sum(logp)), tf.maximum(tf.sum(batch.mask), 1)) as tf.Scalar;
  });
}

/**
 * Per sequence, the log-probs of its masked tokens in order, as numbers (no gradient): reference
 * log-probs for a KL penalty, or a check against generation's behaviour log-probs.
 */
export function maskedLogProbs(
  model: LlamaModel,
  sequences: readonly MaskedSequence[],
  options: LogProbOptions = {},
): number[][] {
  const batch = toTokenBatch(sequences);
  try {
    const logp = sequenceLogProbs(model, batch, options);
    const values = logp.dataSync();
    logp.dispose();
    const T = batch.ids.shape[1];
    return sequences.map((s, b) => {
      const out: number[] = [];
      for (let t = 1; t < s.mask.length; t++) if (s.mask[t]) out.push(values[b * T + t]!);
      return out;
    });
  } finally {
    tf.dispose([batch.ids, batch.mask]);
  }
}

/**
 * What an optimizer should train: the LoRA adapters when the model has them (the base is frozen
 * then), otherwise every trainable base weight. Keys are PEFT or HF names.
 */
export function trainableParameters(model: LlamaModel): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  for (const [name, v] of model.params) if (v.trainable) params.set(name, v);
  for (const [name, v] of loraParameters(model)) params.set(name, v);
  return params;
}

/**
 * The value of `loss` and its gradient for each of `params` (keys kept). The caller disposes the
 * gradients (or passes them to `AdamW.apply` and then disposes them).
 *
 * @example
 * const params = trainableParameters(model);
 * const optimizer = new AdamW(params, { lr: 1e-4 });
 * const { loss, grads } = computeGradients(params, () => maskedLmLoss(model, batch));
 * optimizer.apply(grads);
 * tf.dispose([...grads.values()]);
 */
export function computeGradients(
  params: ReadonlyMap<string, tf.Variable>,
  loss: () => tf.Scalar,
): { loss: number; grads: Map<string, tf.Tensor> } {
  const names = new Map<string, string>();
  const vars: tf.Variable[] = [];
  for (const [name, v] of params) {
    names.set(v.name, name);
    vars.push(v);
  }
  const { value, grads } = tf.variableGrads(loss, vars);
  const lossValue = value.dataSync()[0]!;
  value.dispose();
  const byName = new Map<string, tf.Tensor>();
  for (const [varName, g] of Object.entries(grads)) byName.set(names.get(varName)!, g);
  return { loss: lossValue, grads: byName };
}
