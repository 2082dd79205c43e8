/**
 * Per-token log-probabilities of a batch with a training memory footprint that fits a 135M model in
 * wasm's 4 GB: one differentiable op whose backward recomputes what autodiff would have kept.
 *
 * Plain autodiff keeps every intermediate of every layer until the backward pass (≈ 10 MB per token
 * for SmolLM2-135M with LoRA on all projections, so a 192-token step exhausted the heap) and projects
 * every position onto the 49,152-word vocabulary. Here:
 * - layers run in micro-batches of at most `microBatchTokens` tokens (rows × their padded length);
 *   the forward keeps only each layer's input [N, D], and the backward reruns one layer at a time
 *   under a tape to get its vector-Jacobian product (per-layer activation recomputation, as
 *   `torch.utils.checkpoint` does per block);
 * - only target positions (mask 1) reach the final norm and the vocabulary head, `headChunk` rows at
 *   a time, in the forward and again in the backward: prompt tokens never cost a [·, V] product;
 * - a row is cut after its last target (right padding and trailing context are never computed).
 * The result equals the plain graph's up to float summation order (test/training/lm/recompute.test.ts
 * compares values and gradients).
 *
 * The op takes the trainable variables as its inputs, so `tf.variableGrads` / `computeGradients`
 * around any loss built from its output get their gradients through it unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import { disposeLayerContext, type LlamaModel } from '../../model/llama.ts';
import { tokenLogProbs } from '../../model/tfjs/wasm-kernels.ts';

export interface RecomputeOptions {
  /**
   * Tokens (rows × padded length) per micro-batch of the layer stack: bounds the activations alive
   * at once. A row longer than this is a micro-batch of its own. @default 2048
   */
  microBatchTokens?: number;
  /** Target positions projected onto the vocabulary at once (logits are [headChunk, V]). @default 128 */
  headChunk?: number;
  /** Score under softmax(logits / temperature). @default 1 */
  temperature?: number;
}

/** Consecutive rows [from, from + rows) run as one [rows, length] micro-batch. */
interface MicroBatch {
  from: number;
  rows: number;
  length: number;
  /** Flat positions b·length + t (b within the micro-batch) of its targets, and the [B, T] ones. */
  local: Int32Array;
  global: Int32Array;
  targets: Int32Array;
}

/** Groups rows into micro-batches by the token budget; rows with no target are skipped. */
function planMicroBatches(
  mask: Float32Array,
  targets: Int32Array,
  B: number,
  T: number,
  budget: number,
): MicroBatch[] {
  const needed: number[] = []; // per row: last target column + 1 (0: no target)
  for (let b = 0; b < B; b++) {
    let last = 0;
    for (let t = 0; t < T; t++) if (mask[b * T + t] !== 0) last = t + 1;
    needed.push(last);
  }
  const plans: MicroBatch[] = [];
  let b = 0;
  while (b < B) {
    if (needed[b] === 0) {
      b++;
      continue;
    }
    const from = b;
    let length = needed[b]!;
    b++;
    while (b < B && needed[b]! > 0 && (b - from + 1) * Math.max(length, needed[b]!) <= budget) {
      length = Math.max(length, needed[b]!);
      b++;
    }
    const local: number[] = [];
    const global: number[] = [];
    const ids: number[] = [];
    for (let r = from; r < b; r++) {
      for (let t = 0; t < length; t++) {
        if (t < T && mask[r * T + t] !== 0) {
          local.push((r - from) * length + t);
          global.push(r * T + t);
          ids.push(targets[r * T + t]!);
        }
      }
    }
    plans.push({
      from,
      rows: b - from,
      length,
      local: Int32Array.from(local),
      global: Int32Array.from(global),
      targets: Int32Array.from(ids),
    });
  }
  return plans;
}

/**
 * Runs `engine.gradients` from inside another gradient's backward pass. The engine keeps one active
 * tape: a nested call started at depth 0 would replace the outer backward's tape and leave it null,
 * so the outer tape is put back afterwards. The nested tape's saved tensors are freed by the call.
 */
function nestedGradients(
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy: tf.Tensor,
): { value: tf.Tensor; grads: (tf.Tensor | undefined)[] } {
  const engine = tf.engine() as unknown as {
    state: { activeTape: unknown };
    gradients(
      f: () => tf.Tensor,
      xs: tf.Tensor[],
      dy: tf.Tensor,
      allowNoGradients: boolean,
    ): { value: tf.Tensor; grads: (tf.Tensor | undefined)[] };
  };
  const outer = engine.state.activeTape;
  try {
    return engine.gradients(f, xs, dy, true);
  } finally {
    engine.state.activeTape = outer;
  }
}

/** Whether a gradient tape is recording (we are inside `tf.grads` / `variableGrads`'s forward). */
function tapeIsRecording(): boolean {
  const state = (tf.engine() as unknown as { state: { gradientDepth: number; kernelDepth: number } }).state;
  return state.gradientDepth > 0 && state.kernelDepth === 0;
}

/**
 * log π(targets[b, t] | inputs[b, ≤t]) where mask[b, t] ≠ 0, 0 elsewhere → [B, T] float32.
 * inputs and targets: int32 [B, T] (targets are the inputs shifted by one); mask: [B, T].
 * Differentiable with respect to `variables` (the model's trainable ones) when a tape is recording.
 */
export function recomputedTokenLogProbs(
  model: LlamaModel,
  inputs: tf.Tensor2D,
  targets: tf.Tensor2D,
  mask: tf.Tensor2D,
  variables: readonly tf.Variable[],
  options: RecomputeOptions = {},
): tf.Tensor2D {
  const { microBatchTokens = 2048, headChunk = 128, temperature = 1 } = options;
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  if (!(microBatchTokens >= 1)) throw new RangeError(`microBatchTokens must be ≥ 1, got ${microBatchTokens}`);
  if (!(Number.isInteger(headChunk) && headChunk >= 1))
    throw new RangeError(`headChunk must be a positive integer, got ${headChunk}`);
  const [B, T] = inputs.shape;
  const L = model.config.num_hidden_layers;
  const plans = planMicroBatches(
    mask.dataSync() as Float32Array,
    targets.dataSync() as Int32Array,
    B,
    T,
    microBatchTokens,
  );
  const idsOf = (plan: MicroBatch, ids = inputs): tf.Tensor2D =>
    tf.slice(ids, [plan.from, 0], [plan.rows, plan.length]);
  const logitsOf = (rows: tf.Tensor2D) => {
    const logits = model.head(rows);
    return temperature === 1 ? logits : tf.div(logits, temperature);
  };
  // Target rows of a micro-batch in chunks: [start, end) into plan.local.
  const chunks = (plan: MicroBatch) =>
    Array.from({ length: Math.ceil(plan.local.length / headChunk) }, (_, c) => [
      c * headChunk,
      Math.min(plan.local.length, (c + 1) * headChunk),
    ]);

  /** The forward of one micro-batch: log-probs into `out`, and the layers' inputs if `keep`. */
  const forward = (plan: MicroBatch, out: Float32Array, keep: tf.Tensor2D[] | null) => {
    const context = model.layerContext(plan.rows, plan.length);
    try {
      let x: tf.Tensor2D = tf.tidy(() => model.embed(idsOf(plan)));
      for (let i = 0; i < L; i++) {
        const input = x;
        keep?.push(input);
        x = tf.tidy(() => model.decoderLayer(i, input, context));
        if (!keep) input.dispose();
      }
      const last = x;
      for (const [start, end] of chunks(plan)) {
        const values = tf.tidy(() => {
          const rows: tf.Tensor2D = tf.gather(last, plan.local.subarray(start, end));
          return tokenLogProbs(
            logitsOf(rows) as tf.Tensor2D,
            tf.tensor1d(plan.targets.subarray(start, end), 'int32'),
          );
        });
        const data = values.dataSync();
        values.dispose();
        for (let j = start; j < end; j++) out[plan.global[j]!] = data[j - start]!;
      }
      keep?.push(last);
      if (!keep) last.dispose();
    } finally {
      disposeLayerContext(context);
    }
  };

  if (!tapeIsRecording()) {
    const out = new Float32Array(B * T);
    for (const plan of plans) forward(plan, out, null);
    return tf.tensor2d(out, [B, T]);
  }

  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.at(-1) as tf.GradSaveFunc;
    const out = new Float32Array(B * T);
    const kept: tf.Tensor2D[] = []; // per micro-batch: L layer inputs and the last hidden state
    for (const plan of plans) forward(plan, out, kept);
    // The engine holds these until the backward pass and frees them after it; the ids too, which the
    // caller's tidy may have freed by then (the embedding's gradient reads them).
    save([...kept, inputs]);
    tf.dispose(kept);
    return {
      value: tf.tensor2d(out, [B, T]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => backward(dy, saved),
    };
  });

  const backward = (dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor[] => {
    const dyData = dy.dataSync() as Float32Array;
    const xs = [...variables] as tf.Tensor[];
    const total: (tf.Tensor | null)[] = xs.map(() => null);
    const accumulate = (grads: (tf.Tensor | undefined)[], offset: number) => {
      for (let j = 0; j < xs.length; j++) {
        const g = grads[offset + j];
        if (!g) continue;
        const prev = total[j];
        total[j] = prev ? tf.add(prev, g) : tf.keep(g);
        if (prev) tf.dispose([prev, g]);
      }
    };
    plans.forEach((plan, p) => {
      const hidden = saved.slice(p * (L + 1), (p + 1) * (L + 1)) as tf.Tensor2D[];
      const D = hidden[0]!.shape[1];
      const N = plan.rows * plan.length;
      // Head: d(log-probs)/d(last hidden state), one chunk of target rows at a time.
      let dx: tf.Tensor2D = tf.zeros([N, D]);
      for (const [start, end] of chunks(plan)) {
        const index = plan.local.subarray(start, end);
        const dyRows = tf.tensor1d(Array.from(plan.global.subarray(start, end), (g) => dyData[g]!));
        const rows: tf.Tensor2D = tf.gather(hidden[L]!, index); // [n, D], outside the tape (gather has no wasm gradient)
        const target = tf.tensor1d(plan.targets.subarray(start, end), 'int32');
        const { value, grads } = nestedGradients(
          () => tokenLogProbs(logitsOf(rows) as tf.Tensor2D, target),
          [rows, ...xs],
          dyRows,
        );
        const scattered = tf.scatterND(tf.tensor2d(index, [index.length, 1], 'int32'), grads[0]!, [N, D]);
        const next: tf.Tensor2D = tf.add(dx, scattered);
        tf.dispose([dx, value, dyRows, rows, target, scattered, grads[0]!]);
        dx = next;
        accumulate(grads, 1);
      }
      // Layers, last to first: each reruns its forward under a tape for its vector-Jacobian product.
      const context = model.layerContext(plan.rows, plan.length);
      try {
        for (let i = L - 1; i >= 0; i--) {
          const input = hidden[i]!;
          const { value, grads } = nestedGradients(
            () => model.decoderLayer(i, input, context),
            [input, ...xs],
            dx,
          );
          tf.dispose([dx, value]);
          dx = grads[0] as tf.Tensor2D;
          accumulate(grads, 1);
        }
      } finally {
        disposeLayerContext(context);
      }
      // The embedding, when it trains (full fine-tuning); LoRA leaves it frozen and out of `xs`.
      const embedding = model.params.get('model.embed_tokens.weight')!;
      if (xs.includes(embedding)) {
        const ids = idsOf(plan, saved.at(-1) as tf.Tensor2D);
        const { value, grads } = nestedGradients(() => model.embed(ids), [...xs], dx);
        tf.dispose([value, ids]);
        accumulate(grads, 0);
      }
      dx.dispose();
    });
    return total.map((g, j) => g ?? tf.zerosLike(xs[j]!));
  };

  return op(...variables) as tf.Tensor2D;
}
