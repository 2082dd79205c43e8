/**
 * `corgi bench [--layers L --dim D --heads H --vocab V --ctx T --batch B] --json`: the policy model's
 * training and generation throughput (bench.ts), printed as the CLI contract says:
 * `{"backend", "config", "train_tokens_per_s", "gen_tokens_per_s_b1", "gen_tokens_per_s_b32"}`.
 *
 * `corgi bench --policy <gguf | dir | store name> [--threads N --tokens N --rounds N] --json`: the
 * llama.cpp engine against a bare node-llama-cpp decode loop on the same file (llama-bench.ts):
 * `{"engine", "model", "gen_tokens_per_s_b1", "gen_tokens_per_s_b32", "peer_gen_tokens_per_s_b1",
 * "peer_gen_tokens_per_s_b32"}`.
 *
 * `corgi bench --policy <model> --train [--sequences N --length T --completion C --lora-r R --threads N
 * --rounds N] --json`: LoRA training tokens/s of the TensorFlow.js Llama on that model beside a PyTorch
 * peer doing the same step on the same weights (lora-bench.ts): `{"train_tokens_per_s",
 * "peer_train_tokens_per_s", "train_ratio", "threads", "shape", ...}`.
 */

import { type Command, InvalidArgumentError } from 'commander';
import type { LlamaBenchOptions, LlamaBenchResult } from '../policy/llama-bench.ts';
// Types only: TensorFlow.js loads when the command runs, not with every `corgi` invocation.
import type { PolicyBenchOptions, PolicyBenchResult } from '../training/lm/bench.ts';
import type { LoraTrainBenchOptions, LoraTrainBenchResult } from '../training/lm/lora-bench.ts';
import { backendOptionsFromEnv, dataDirFromEnv } from './command-env.ts';

async function runPolicyBench(options: PolicyBenchOptions): Promise<PolicyBenchResult> {
  return (await import('../training/lm/bench.ts')).runPolicyBench(options);
}

async function runLlamaBench(options: LlamaBenchOptions): Promise<LlamaBenchResult> {
  return (await import('../policy/llama-bench.ts')).runLlamaBench(options);
}

async function runLoraTrainBench(options: LoraTrainBenchOptions): Promise<LoraTrainBenchResult> {
  return (await import('../training/lm/lora-bench.ts')).runLoraTrainBench(options);
}

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
};

/**
 * Adds `corgi bench` to `program`. `run`, `runLlama` and `runTrain` are the benchmarks (test seams).
 * @default run runPolicyBench
 * @default runLlama runLlamaBench
 * @default runTrain runLoraTrainBench
 */
export function registerBenchCommand(
  program: Command,
  run: (options: PolicyBenchOptions) => Promise<PolicyBenchResult> = runPolicyBench,
  runLlama: (options: LlamaBenchOptions) => Promise<LlamaBenchResult> = runLlamaBench,
  runTrain: (options: LoraTrainBenchOptions) => Promise<LoraTrainBenchResult> = runLoraTrainBench,
): Command {
  return program
    .command('bench')
    .description('Measure training and generation tokens/s of a small Llama on the selected backend')
    .option('--layers <n>', 'num_hidden_layers', positiveInt, 2)
    .option('--dim <n>', 'hidden_size', positiveInt, 128)
    .option('--heads <n>', 'num_attention_heads', positiveInt, 4)
    .option('--vocab <n>', 'vocab_size', positiveInt, 2048)
    .option('--ctx <n>', 'context length (training sequence and generation length)', positiveInt, 64)
    .option('--batch <n>', 'training batch size', positiveInt, 16)
    .option(
      '--policy <spec>',
      'benchmark llama.cpp on this GGUF file, directory or store name against a bare decode loop',
    )
    .option('--threads <n>', 'with --policy: CPU threads for both sides', positiveInt, 1)
    .option('--tokens <n>', 'with --policy: new tokens per sequence', positiveInt, 64)
    .option(
      '--rounds <n>',
      'with --policy: measured runs per side and batch (the median counts)',
      positiveInt,
      3,
    )
    .option(
      '--train',
      'with --policy: LoRA training tokens/s of the TensorFlow.js model against a PyTorch peer',
    )
    .option('--sequences <n>', 'with --train: rows of the batch', positiveInt, 4)
    .option('--length <n>', 'with --train: tokens per row (prompt + completion)', positiveInt, 400)
    .option('--completion <n>', 'with --train: target tokens at the end of each row', positiveInt, 100)
    .option('--lora-r <n>', 'with --train: LoRA rank (alpha = 2r, all seven projections)', positiveInt, 16)
    .option('--json', 'print the result as one JSON line (the only output format)')
    .action(
      async (o: {
        layers: number;
        dim: number;
        heads: number;
        vocab: number;
        ctx: number;
        batch: number;
        policy?: string;
        threads: number;
        tokens: number;
        rounds: number;
        train?: boolean;
        sequences: number;
        length: number;
        completion: number;
        loraR: number;
      }) => {
        if (o.train) {
          if (o.policy === undefined) throw new Error('--train needs --policy <model>: the model to train');
          if (o.completion >= o.length)
            throw new Error(`--completion (${o.completion}) must be smaller than --length (${o.length})`);
          const result = await runTrain({
            policy: o.policy,
            sequences: o.sequences,
            length: o.length,
            completion: o.completion,
            rank: o.loraR,
            threads: o.threads,
            rounds: o.rounds,
          });
          process.stdout.write(`${JSON.stringify(result)}\n`);
          return;
        }
        if (o.policy !== undefined) {
          const result = await runLlama({
            policy: o.policy,
            dataDir: dataDirFromEnv(),
            threads: o.threads,
            tokens: o.tokens,
            rounds: o.rounds,
          });
          process.stdout.write(`${JSON.stringify(result)}\n`);
          return;
        }
        const { preferred, simdMatMul } = backendOptionsFromEnv();
        if (simdMatMul === false) (await import('../model/tfjs/wasm-kernels.ts')).setSimdMatMul(false);
        const result = await run({
          ...(preferred ? { backend: preferred } : {}),
          layers: o.layers,
          dim: o.dim,
          heads: o.heads,
          vocab: o.vocab,
          ctx: o.ctx,
          batch: o.batch,
        });
        // Exactly the contract's fields (progress and the thread count went to stderr).
        const { backend, config, train_tokens_per_s, gen_tokens_per_s_b1, gen_tokens_per_s_b32 } = result;
        process.stdout.write(
          `${JSON.stringify({ backend, config, train_tokens_per_s, gen_tokens_per_s_b1, gen_tokens_per_s_b32 })}\n`,
        );
      },
    );
}
