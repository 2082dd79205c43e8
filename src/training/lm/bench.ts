/**
 * `corgi bench`: training throughput of the policy model on the selected TensorFlow.js backend and
 * generation throughput of the same model on llama.cpp (the engine that serves), printed as the CLI
 * contract says:
 *   {"backend", "config": <config.json fields>, "train_tokens_per_s", "gen_tokens_per_s_b1", "gen_tokens_per_s_b32"}
 * bench/pytorch_reference.py measures the same model, data and steps in PyTorch (one thread).
 *
 * - Training step: forward, mean cross-entropy over all B·T positions, backward, global-norm
 *   clipping and an AdamW update, on random tokens. Tokens/s = B·T per step.
 * - Generation: the trained model written as a GGUF F32 file and decoded greedily by llama.cpp on
 *   one thread, from an 8-token prompt up to the context length (llama-bench.ts
 *   `benchModelGeneration`); tokens/s counts generated tokens only (the prefill is inside the timed
 *   region).
 * - Rates come from the median step (training) or run (generation): the machine is shared.
 *
 * The wasm backend computes on one core, so with two or more cores the training step runs data
 * parallel (train.ts `DataParallelTrainer`: a worker_thread with a model replica takes half of each
 * batch); `threads: 1` measures the single-thread step.
 */
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '../../common/random.ts';
import { type LlamaConfig, parseLlamaConfig, toConfigJson } from '../../model/config.ts';
import { LlamaModel } from '../../model/llama.ts';
import { type BackendName, selectBackend } from '../../model/tfjs/backend.ts';
import { profileKernels } from '../../model/tfjs/kernel-profile.ts';
import { benchModelGeneration } from '../../policy/llama-bench.ts';
import { AdamW } from './optim.ts';
import { DataParallelTrainer, trainStep } from './train.ts';

export interface PolicyBenchOptions {
  /** @default 2 */
  layers?: number;
  /** hidden_size. @default 128 */
  dim?: number;
  /** @default 4 */
  heads?: number;
  /** num_key_value_heads. @default heads */
  kvHeads?: number;
  /** @default 2048 */
  vocab?: number;
  /** Context length: training sequence length and generation length. @default 64 */
  ctx?: number;
  /** Training batch size. @default 16 */
  batch?: number;
  /** intermediate_size. @default Meta's rule: 256·⌈(8·dim/3)/256⌉ (512 for dim 128) */
  intermediate?: number;
  /** Timed training steps (after 2 warm-up steps). @default 10 */
  trainSteps?: number;
  /** Threads for the training step: 2 runs it data parallel with a worker. @default 2 with ≥ 2 cores, else 1 */
  threads?: 1 | 2;
  /** Backend to force; otherwise `selectBackend`'s order. */
  backend?: BackendName;
  /** Use the stock wasm BatchMatMul kernel (for before/after comparisons). @default false */
  stockKernels?: boolean;
  /** Print a `tf.profile` kernel table of one training step to stderr. */
  profile?: boolean;
  /** @default 0 */
  seed?: number;
  /** Progress lines. @default stderr */
  log?: (line: string) => void;
}

export interface PolicyBenchResult {
  backend: string;
  config: Record<string, unknown>;
  train_tokens_per_s: number;
  gen_tokens_per_s_b1: number;
  gen_tokens_per_s_b32: number;
  /** Threads the training step used (2: data parallel with a worker). Not part of the contract. */
  train_threads: number;
}

/** The bench model's config: a small Llama with HF field names. */
export function benchConfig(options: PolicyBenchOptions = {}): LlamaConfig {
  const dim = options.dim ?? 128;
  const heads = options.heads ?? 4;
  return parseLlamaConfig({
    vocab_size: options.vocab ?? 2048,
    hidden_size: dim,
    intermediate_size: options.intermediate ?? 256 * Math.ceil((8 * dim) / 3 / 256),
    num_hidden_layers: options.layers ?? 2,
    num_attention_heads: heads,
    num_key_value_heads: options.kvHeads ?? heads,
    max_position_embeddings: options.ctx ?? 64,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
  });
}

/** Deterministic pseudo-random tokens, so every run times the same data. */
function randomTokens(count: number, vocab: number, seed: number): Int32Array {
  const rng = createRng('bench-tokens', seed);
  return Int32Array.from({ length: count }, () => rng.int(0, vocab - 1));
}

/** Runs the benchmark and returns the contract's JSON object. */
export async function runPolicyBench(options: PolicyBenchOptions = {}): Promise<PolicyBenchResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const backend = await selectBackend({
    preferred: options.backend,
    log,
    patchKernels: !options.stockKernels,
  });
  const config = benchConfig(options);
  const B = options.batch ?? 16;
  const T = config.max_position_embeddings;
  const V = config.vocab_size;
  const seed = options.seed ?? 0;
  const model = LlamaModel.init(config, { seed });
  const optimizer = new AdamW(model.params, { lr: 1e-3 });
  log(`bench: ${model.numParameters()} parameters, batch ${B} × ctx ${T}`);

  // --- training ---
  const tokens = randomTokens(B * (T + 1), V, seed);
  const rows = Array.from({ length: B }, (_, b) => tokens.subarray(b * (T + 1), (b + 1) * (T + 1)));
  const inputs = tf.tensor2d(
    rows.flatMap((r) => Array.from(r.subarray(0, T))),
    [B, T],
    'int32',
  );
  const targets = tf.tensor2d(
    rows.flatMap((r) => Array.from(r.subarray(1))),
    [B, T],
    'int32',
  );
  for (let i = 0; i < 2; i++) trainStep(model, optimizer, inputs, targets); // warm-up: kernels, caches
  if (options.profile)
    await profileTable('training step', () => trainStep(model, optimizer, inputs, targets), log);
  const threads = options.threads ?? (availableParallelism() >= 2 && B >= 2 ? 2 : 1);
  const parallel = threads === 2 ? await DataParallelTrainer.start(model, optimizer) : null;
  const step = async () =>
    parallel ? parallel.step(inputs, targets) : trainStep(model, optimizer, inputs, targets);
  if (parallel) for (let i = 0; i < 2; i++) await step(); // the worker's warm-up
  const steps = options.trainSteps ?? 10;
  let loss = 0;
  const stepMs: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    loss = (await step()).loss;
    stepMs.push(performance.now() - t0);
  }
  await parallel?.close();
  // The median step: the machine is shared, and a busy neighbour should not set the number.
  const medianMs = median(stepMs);
  const trainTokensPerS = (B * T) / (medianMs / 1000);
  log(
    `bench: train ${medianMs.toFixed(1)} ms/step (median of ${steps}, ${threads} thread(s)), loss ${loss.toFixed(3)}`,
  );
  tf.dispose([inputs, targets]);

  // --- generation: llama.cpp, on the weights just trained ---
  const generation = await benchModelGeneration(model, { promptLength: Math.min(8, T - 2), seed, log });

  optimizer.dispose();
  model.dispose();
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    backend,
    config: toConfigJson(config),
    train_tokens_per_s: round(trainTokensPerS),
    ...generation,
    train_threads: threads,
  };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs `f` under `tf.profile` and logs time per kernel, largest first. */
async function profileTable(title: string, f: () => unknown, log: (line: string) => void): Promise<void> {
  const { kernels, totalMs, count } = await profileKernels(f, 15);
  log(`profile: ${title}: ${count} kernels, ${totalMs.toFixed(1)} ms in kernels`);
  for (const { kernel, ms, calls } of kernels) {
    log(`  ${kernel.padEnd(22)} ${ms.toFixed(1).padStart(8)} ms  ${String(calls).padStart(5)} calls`);
  }
}
