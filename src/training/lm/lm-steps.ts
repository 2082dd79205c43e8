/**
 * The two language-model steps the pipeline needs beyond training/lm/train.ts: a training step whose
 * loss is masked to some targets (SFT trains on assistant tokens only) and a held-out loss.
 *
 * `maskedTrainStep` is `trainStep` with crossEntropy's per-row weights. It runs on one thread:
 * `DataParallelTrainer` (training/lm/train.ts) has no weights argument yet, so SFT does not use the
 * second core. A `weights` parameter there (worker message included, halves averaged by Σweights
 * rather than rows) would let SFT run data parallel too.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from '../../model/llama.ts';
import { crossEntropy } from '../../model/tfjs/wasm-kernels.ts';
import type { Batch } from './lm-data.ts';
import type { AdamW } from './optim.ts';
import { computeGradients, trainableParameters } from './sequence-logprobs.ts';
import type { StepStats } from './train.ts';

/** Logits [B·T, V] for a batch's inputs. */
function logitsOf(model: LlamaModel, inputs: tf.Tensor2D): tf.Tensor2D {
  const [B, T] = inputs.shape;
  return tf.reshape(model.forward(inputs), [B * T, model.config.vocab_size]);
}

/** The batch as tensors (the caller disposes them). */
export function batchTensors(batch: Batch): {
  inputs: tf.Tensor2D;
  targets: tf.Tensor2D;
  weights?: tf.Tensor1D;
} {
  const shape: [number, number] = [batch.rows, batch.cols];
  return {
    inputs: tf.tensor2d(batch.inputs, shape, 'int32'),
    targets: tf.tensor2d(batch.targets, shape, 'int32'),
    weights: batch.weights ? tf.tensor1d(batch.weights, 'float32') : undefined,
  };
}

/**
 * Weighted mean cross-entropy Σ wᵢ·nllᵢ / Σ wᵢ of a batch (`weights` a 0/1 mask; none: the plain
 * mean) and its gradient for every trainable parameter, keyed by HF name. The caller disposes the
 * gradients.
 */
export function maskedLossAndGradients(
  model: LlamaModel,
  batch: Batch,
): { loss: number; grads: Map<string, tf.Tensor> } {
  const { inputs, targets, weights } = batchTensors(batch);
  try {
    return computeGradients(trainableParameters(model), () =>
      crossEntropy(logitsOf(model, inputs), tf.reshape(targets, [-1]) as tf.Tensor1D, weights),
    );
  } finally {
    tf.dispose([inputs, targets, ...(weights ? [weights] : [])]);
  }
}

/** One AdamW step on the masked loss (see `maskedLossAndGradients`), on this thread. */
export function maskedTrainStep(model: LlamaModel, optimizer: AdamW, batch: Batch): StepStats {
  const { loss, grads } = maskedLossAndGradients(model, batch);
  const { gradNorm } = optimizer.apply(grads);
  tf.dispose([...grads.values()]);
  return { loss, gradNorm };
}

/**
 * Mean cross-entropy over every counted target of `batches` (weighted by their masks), and the
 * number of targets it covers. Forward only, no gradients.
 */
export function evaluateLoss(model: LlamaModel, batches: Iterable<Batch>): { loss: number; tokens: number } {
  let total = 0;
  let tokens = 0;
  for (const batch of batches) {
    if (batch.targetTokens === 0) continue;
    const { inputs, targets, weights } = batchTensors(batch);
    // A number out of tidy: nothing but the scalar is read back.
    const mean = tf.tidy(
      () =>
        crossEntropy(
          logitsOf(model, inputs),
          tf.reshape(targets, [-1]) as tf.Tensor1D,
          weights,
        ).dataSync()[0]!,
    );
    tf.dispose([inputs, targets, ...(weights ? [weights] : [])]);
    total += mean * batch.targetTokens;
    tokens += batch.targetTokens;
  }
  return { loss: tokens > 0 ? total / tokens : Number.NaN, tokens };
}
