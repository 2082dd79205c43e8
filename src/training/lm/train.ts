/**
 * Language-model training steps: loss and gradients on a batch, one AdamW update, and the same
 * step split across two threads.
 *
 * The wasm backend computes on one core (see wasm-kernels.ts), so `DataParallelTrainer` runs a
 * replica of the model in a worker_thread with its own wasm instance: each side computes the
 * gradients of its share of the batch, the worker's come back as transferred buffers, the main
 * thread averages them (weighted by tokens), applies AdamW and sends the new weights with the next
 * step. The result is the single-thread step's up to float rounding (test/training/lm/training.test.ts).
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { toConfigJson } from '../../model/config.ts';
import type { LlamaModel } from '../../model/llama.ts';
import { type BackendName, selectedBackend } from '../../model/tfjs/backend.ts';
import { crossEntropy } from '../../model/tfjs/wasm-kernels.ts';
import type { AdamW } from './optim.ts';
import { computeGradients, trainableParameters } from './sequence-logprobs.ts';

export interface StepStats {
  /** Mean next-token cross-entropy over the batch. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

/**
 * Mean cross-entropy of `model` on `inputs` → `targets` (int32 [B, T]) and its gradient for every
 * trainable parameter, keyed by HF name. The caller disposes the gradients.
 */
export function lossAndGradients(
  model: LlamaModel,
  inputs: tf.Tensor2D,
  targets: tf.Tensor2D,
): { loss: number; grads: Map<string, tf.Tensor> } {
  const [B, T] = inputs.shape;
  const V = model.config.vocab_size;
  return computeGradients(trainableParameters(model), () => {
    const logits = tf.reshape(model.forward(inputs), [B * T, V]) as tf.Tensor2D;
    return crossEntropy(logits, tf.reshape(targets, [B * T]) as tf.Tensor1D);
  });
}

/** One training step on one thread: loss, gradients, AdamW update. */
export function trainStep(
  model: LlamaModel,
  optimizer: AdamW,
  inputs: tf.Tensor2D,
  targets: tf.Tensor2D,
): StepStats {
  const { loss, grads } = lossAndGradients(model, inputs, targets);
  const { gradNorm } = optimizer.apply(grads);
  tf.dispose([...grads.values()]);
  return { loss, gradNorm };
}

// ---------------------------------------------------------------------------------------------
// Data parallel over worker_threads.

/** Messages to the worker (train-worker.ts). */
export type ToWorker =
  | {
      type: 'init';
      backend: BackendName | null;
      config: Record<string, unknown>;
      weights: Record<string, Float32Array>;
    }
  | {
      type: 'step';
      weights: Record<string, Float32Array>;
      inputs: Int32Array;
      targets: Int32Array;
      rows: number;
      cols: number;
    };

/** Messages from the worker. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'grads'; loss: number; grads: Record<string, Float32Array> }
  | { type: 'error'; message: string };

/** Copies of every parameter's values, ready to transfer. */
function snapshot(model: LlamaModel): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  // Copied: the cpu backend's dataSync returns its own storage, which a transfer would detach.
  for (const [name, v] of model.params) out[name] = new Float32Array(v.dataSync() as Float32Array);
  return out;
}

export interface DataParallelOptions {
  /**
   * Fraction of each batch's rows the worker takes; the main thread also runs the optimizer, so a
   * little over half balances the two. @default 0.5
   */
  workerShare?: number;
}

/**
 * A training step split between this thread and one worker thread. Create with `start`, call
 * `step` per batch, `close` at the end. The model and optimizer stay on this thread.
 */
export class DataParallelTrainer {
  private pending: { resolve: (m: FromWorker) => void; reject: (e: Error) => void } | null = null;

  private constructor(
    private readonly model: LlamaModel,
    private readonly optimizer: AdamW,
    private readonly worker: Worker,
    private readonly workerShare: number,
  ) {
    worker.on('message', (message: FromWorker) => {
      const pending = this.pending;
      this.pending = null;
      if (!pending) return;
      if (message.type === 'error') pending.reject(new Error(`training worker: ${message.message}`));
      else pending.resolve(message);
    });
    worker.on('error', (error) => {
      this.pending?.reject(error);
      this.pending = null;
    });
    worker.on('exit', (code) => {
      this.pending?.reject(new Error(`training worker exited (code ${code})`));
      this.pending = null;
    });
  }

  /** Starts the worker and copies the model into it. */
  static async start(
    model: LlamaModel,
    optimizer: AdamW,
    options: DataParallelOptions = {},
  ): Promise<DataParallelTrainer> {
    // The worker runs TypeScript too: tsx's loader hooks do not cross threads, so a small bootstrap
    // registers them in the worker before importing the worker module.
    const tsxApi = import.meta.resolve('tsx/esm/api');
    // From dist/ (the built CLI) the worker is the compiled .js beside this file.
    const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const entry = new URL(`./train-worker${extension}`, import.meta.url).href;
    const bootstrap = `(async () => {
      const { register } = await import(${JSON.stringify(tsxApi)});
      register();
      await import(${JSON.stringify(entry)});
    })().catch((error) => { throw error; });`;
    const worker = new Worker(bootstrap, { eval: true, env: process.env });
    const trainer = new DataParallelTrainer(model, optimizer, worker, options.workerShare ?? 0.5);
    const weights = snapshot(model);
    await trainer.request(
      { type: 'init', backend: selectedBackend(), config: toConfigJson(model.config), weights },
      Object.values(weights).map((w) => w.buffer as ArrayBuffer),
    );
    return trainer;
  }

  private request(message: ToWorker, transfer: ArrayBuffer[]): Promise<FromWorker> {
    if (this.pending) throw new Error('DataParallelTrainer: one step at a time');
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(message, transfer);
    });
  }

  /** One step on `inputs` → `targets` (int32 [B, T], B ≥ 2): the worker takes the last rows. */
  async step(inputs: tf.Tensor2D, targets: tf.Tensor2D): Promise<StepStats> {
    const [B, T] = inputs.shape;
    if (B < 2) throw new Error(`DataParallelTrainer: a batch of ${B} row(s) cannot be split`);
    const workerRows = Math.min(B - 1, Math.max(1, Math.round(B * this.workerShare)));
    const mainRows = B - workerRows;
    const weights = snapshot(this.model);
    const workerInputs = tf.slice(inputs, [mainRows, 0], [workerRows, T]);
    const workerTargets = tf.slice(targets, [mainRows, 0], [workerRows, T]);
    const reply = this.request(
      {
        type: 'step',
        weights,
        inputs: workerInputs.dataSync() as Int32Array,
        targets: workerTargets.dataSync() as Int32Array,
        rows: workerRows,
        cols: T,
      },
      Object.values(weights).map((w) => w.buffer as ArrayBuffer),
    );
    tf.dispose([workerInputs, workerTargets]);

    // This thread's share, computed while the worker computes its own.
    const mainInputs = tf.slice(inputs, [0, 0], [mainRows, T]) as tf.Tensor2D;
    const mainTargets = tf.slice(targets, [0, 0], [mainRows, T]) as tf.Tensor2D;
    let mine: ReturnType<typeof lossAndGradients>;
    try {
      mine = lossAndGradients(this.model, mainInputs, mainTargets);
    } catch (error) {
      await reply.catch(() => {}); // leave the worker idle before reporting
      throw error;
    } finally {
      tf.dispose([mainInputs, mainTargets]);
    }

    const theirs = await reply;
    if (theirs.type !== 'grads') throw new Error(`training worker: unexpected reply ${theirs.type}`);
    // Each side's loss is a mean over its tokens: weight by rows (all rows have T tokens).
    const a = mainRows / B;
    const b = workerRows / B;
    const grads = new Map<string, tf.Tensor>();
    for (const [name, g] of mine.grads) {
      const other = theirs.grads[name];
      if (!other) throw new Error(`training worker sent no gradient for ${name}`);
      grads.set(
        name,
        tf.tidy(() => tf.add(tf.mul(g, a), tf.mul(tf.tensor(other, g.shape), b))),
      );
    }
    tf.dispose([...mine.grads.values()]);
    const { gradNorm } = this.optimizer.apply(grads);
    tf.dispose([...grads.values()]);
    return { loss: a * mine.loss + b * theirs.loss, gradNorm };
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
