/**
 * `corgi bench --policy <model> --train --json`: LoRA training tokens/s of the TensorFlow.js Llama on
 * a real model's GGUF (dequantized), beside a PyTorch peer doing the same step on the same weights in
 * the same run (bench/pytorch_lora_train.py).
 *
 * The batch is rollout-shaped: `sequences` rows of `length` tokens whose last `completion` tokens are
 * the targets (an attempt after its prompt). One step = forward of every position, the head and
 * cross-entropy at the targets, backward into the adapters, clipping and an AdamW update; tokens/s
 * counts every token of the batch (prompt included). Both sides start from the same adapters (ours,
 * written to a temporary directory with the base weights and the batch), so their first losses must
 * agree: `loss` and `peer_loss` are printed as a parity check. Rates come from the median step.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '../../common/random.ts';
import { toConfigJson } from '../../model/config.ts';
import { loadGgufModel } from '../../model/gguf/gguf-to-llama.ts';
import { attachLora, LORA_TARGET_MODULES, loraAdapterFiles } from '../../model/lora.ts';
import { type FloatTensor, serializeSafetensors } from '../../model/safetensors.ts';
import { selectBackend } from '../../model/tfjs/backend.ts';
import { type KernelTime, profileKernels } from '../../model/tfjs/kernel-profile.ts';
import { resolveGgufPath } from '../../policy/llama-bench.ts';
import { AdamW } from './optim.ts';
import { computeGradients, maskedLmLoss, toTokenBatch, trainableParameters } from './sequence-logprobs.ts';

export interface LoraTrainBenchOptions {
  /** A GGUF file, a directory holding one, or a model store name. */
  policy: string;
  /** Rows of the batch. @default 4 */
  sequences?: number;
  /** Tokens per row (prompt + completion). @default 400 */
  length?: number;
  /** Target tokens at the end of each row. @default 100 */
  completion?: number;
  /** LoRA rank; alpha is 2r. @default 16 */
  rank?: number;
  /** Projections adapted in every layer. @default all seven */
  targetModules?: readonly string[];
  /** Tokens per micro-batch of the layer stack (recompute.ts). @default 2048 */
  microBatchTokens?: number;
  /** Measured steps per side after one warm-up; the median counts. @default 3 */
  rounds?: number;
  /** CPU threads: the PyTorch peer's (TensorFlow.js wasm computes on one). @default 1 */
  threads?: number;
  /** The Python interpreter that runs the peer. @default python3 */
  python?: string;
  /** @default 0 */
  seed?: number;
  log?: (line: string) => void;
}

export interface LoraTrainBenchResult {
  engine: 'tfjs-wasm';
  model: string;
  /** `sequences × length, completion targets each, LoRA r=… on …`, for humans. */
  shape: string;
  sequences: number;
  length: number;
  completion: number;
  lora_r: number;
  target_modules: string[];
  train_tokens_per_s: number;
  peer_train_tokens_per_s: number;
  train_ratio: number;
  threads: number;
  peer_threads: number;
  peer: string;
  /** Mean cross-entropy of the first step on each side (same start: they must agree). */
  loss: number;
  peer_loss: number;
  step_ms: number;
  peer_step_ms: number;
  /** The wasm heap after the measured steps, GB: its high-water mark (wasm's limit is 4 GB). */
  wasm_heap_gb: number;
  /** Time per kernel of one profiled step, largest first. */
  top_kernels: KernelTime[];
}

/** Deterministic token ids in [10, vocab), different per row. */
function syntheticRows(rows: number, length: number, vocab: number, seed: number): number[][] {
  const rng = createRng('lora-bench-rows', seed);
  return Array.from({ length: rows }, () => Array.from({ length }, () => rng.int(10, vocab - 1)));
}

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export async function runLoraTrainBench(options: LoraTrainBenchOptions): Promise<LoraTrainBenchResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const {
    sequences = 4,
    length = 400,
    completion = 100,
    rank = 16,
    targetModules = LORA_TARGET_MODULES,
    microBatchTokens = 2048,
    rounds = 3,
    threads = 1,
    python = 'python3',
    seed = 0,
  } = options;
  if (!(completion >= 1 && completion < length))
    throw new RangeError(`--completion must be in 1..${length - 1} (the row length), got ${completion}`);
  const path = resolveGgufPath(options.policy);
  await selectBackend({ preferred: 'wasm', log });
  const { model, config } = await loadGgufModel(path);
  const lora = { r: rank, alpha: 2 * rank, targetModules: [...targetModules], seed };
  attachLora(model, lora);
  // Adapters start with B = 0 (PEFT's init); a small random B makes the first step's gradient reach A too.
  const params = trainableParameters(model);
  let n = 0;
  for (const [name, v] of params)
    if (name.endsWith('lora_B.weight'))
      v.assign(tf.randomNormal(v.shape, 0, 0.01, 'float32', seed + 1000 + n++));
  const lr = 1e-4;
  const optimizer = new AdamW(params, { lr, weightDecay: 0 });
  const rows = syntheticRows(sequences, length, config.vocab_size, seed);
  const mask = rows.map((r) => r.map((_, t) => (t >= length - completion ? 1 : 0)));
  const batch = toTokenBatch(rows.map((ids, b) => ({ ids, mask: mask[b]! })));
  const shape = `${sequences} × ${length} tokens, last ${completion} of each the targets; LoRA r=${rank} alpha=${2 * rank} on ${targetModules.join(',')}`;
  log(`bench: ${shape}`);

  // The peer's inputs, written before our first update changes the adapters.
  const dir = await mkdtemp(join(tmpdir(), 'corgi-lora-bench-'));
  try {
    const weights = new Map<string, FloatTensor>();
    for (const [name, v] of model.params)
      weights.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    await writeFile(join(dir, 'model.safetensors'), serializeSafetensors(weights));
    weights.clear();
    const adapter = loraAdapterFiles(model, lora);
    await writeFile(join(dir, 'adapter_model.safetensors'), adapter['adapter_model.safetensors']!);
    await writeFile(join(dir, 'config.json'), JSON.stringify(toConfigJson(config)));
    await writeFile(
      join(dir, 'batch.json'),
      JSON.stringify({ ids: rows, mask, r: rank, alpha: 2 * rank, target_modules: targetModules, lr }),
    );

    const step = () => {
      const { loss, grads } = computeGradients(params, () =>
        maskedLmLoss(model, batch, { microBatchTokens }),
      );
      optimizer.apply(grads);
      tf.dispose([...grads.values()]);
      return loss;
    };
    const loss = step(); // warm-up (kernels, transposes); its loss is the parity check
    const stepMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      step();
      stepMs.push(performance.now() - t0);
      log(`bench: tfjs step ${i + 1}/${rounds}: ${stepMs.at(-1)!.toFixed(0)} ms`);
    }
    const heapBytes = wasmHeapBytes();
    const topKernels = (await profileKernels(step)).kernels.map((k) => ({ ...k, ms: Math.round(k.ms) }));
    const ms = median(stepMs);

    log(`bench: PyTorch peer (${threads} thread(s))`);
    const script = new URL('../../../bench/pytorch_lora_train.py', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(
      python,
      [script, '--dir', dir, '--steps', String(rounds), '--threads', String(threads)],
      { maxBuffer: 1 << 20 },
    );
    const peer = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      train_tokens_per_s: number;
      step_ms: number;
      loss: number;
      threads: number;
      torch: string;
    };
    const tokensPerS = (sequences * length) / (ms / 1000);
    const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
    return {
      engine: 'tfjs-wasm',
      model: path,
      shape,
      sequences,
      length,
      completion,
      lora_r: rank,
      target_modules: [...targetModules],
      train_tokens_per_s: round(tokensPerS),
      peer_train_tokens_per_s: peer.train_tokens_per_s,
      train_ratio: round(tokensPerS / peer.train_tokens_per_s, 3),
      threads: 1,
      peer_threads: peer.threads,
      peer: `pytorch-${peer.torch}`,
      loss: round(loss, 4),
      peer_loss: peer.loss,
      step_ms: round(ms),
      peer_step_ms: peer.step_ms,
      wasm_heap_gb: round(heapBytes / 1e9, 2),
      top_kernels: topKernels,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
    optimizer.dispose();
    tf.dispose([batch.ids, batch.mask]);
    model.dispose();
  }
}

/** The wasm heap's size: it grows and never shrinks, so this is the high-water mark (the limit is 4 GB). */
function wasmHeapBytes(): number {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.length ?? 0;
}
