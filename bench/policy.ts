/**
 * Policy model throughput (the `corgi bench` contract):
 *   node bin/run-ts.js bench/policy.ts --layers 2 --dim 128 --heads 4 --vocab 2048 --ctx 64 --batch 16 --json
 * With --reference, bench/pytorch_reference.py then runs the same model, data and steps in PyTorch
 * (Debian python3-torch via /usr/bin/python3) and a second JSON line gives its numbers and the ratios.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import type { BackendName } from '../src/model/tfjs/backend.ts';
import { runPolicyBench } from '../src/training/lm/bench.ts';

const int = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got "${value}"`);
  return n;
};

const program = new Command('bench/policy.ts')
  .option('--layers <n>', 'num_hidden_layers', int, 2)
  .option('--dim <n>', 'hidden_size', int, 128)
  .option('--heads <n>', 'num_attention_heads', int, 4)
  .option('--kv-heads <n>', 'num_key_value_heads (default: heads)', int)
  .option('--vocab <n>', 'vocab_size', int, 2048)
  .option('--ctx <n>', 'sequence length', int, 64)
  .option('--batch <n>', 'training batch size', int, 16)
  .option('--intermediate <n>', 'intermediate_size (default: 256·⌈8·dim/3/256⌉)', int)
  .option('--steps <n>', 'timed training steps', int, 10)
  .addOption(
    new Option('--threads <n>', 'training threads (2: data parallel with a worker)').choices(['1', '2']),
  )
  .addOption(new Option('--backend <name>', 'force a backend').choices(['gpu', 'node', 'wasm', 'cpu']))
  .option('--stock-kernels', 'use the stock wasm BatchMatMul kernel (before/after comparison)')
  .option('--profile', 'print tf.profile kernel tables to stderr')
  .option('--reference', 'also run bench/pytorch_reference.py and print its numbers and the ratios')
  .option('--json', 'print the result as one JSON line (the default output)')
  .parse();

const o = program.opts();
const result = await runPolicyBench({
  layers: o.layers,
  dim: o.dim,
  heads: o.heads,
  kvHeads: o.kvHeads,
  vocab: o.vocab,
  ctx: o.ctx,
  batch: o.batch,
  intermediate: o.intermediate,
  trainSteps: o.steps,
  threads: o.threads ? (Number(o.threads) as 1 | 2) : undefined,
  backend: o.backend as BackendName | undefined,
  stockKernels: Boolean(o.stockKernels),
  profile: Boolean(o.profile),
});
process.stdout.write(`${JSON.stringify(result)}\n`);

if (o.reference) {
  const args = ['--layers', o.layers, '--dim', o.dim, '--heads', o.heads, '--vocab', o.vocab, '--ctx', o.ctx];
  args.push('--batch', o.batch, '--steps', o.steps);
  if (o.kvHeads) args.push('--kv-heads', o.kvHeads);
  if (o.intermediate) args.push('--intermediate', o.intermediate);
  const script = fileURLToPath(new URL('./pytorch_reference.py', import.meta.url));
  const out = execFileSync('/usr/bin/python3', [script, ...args.map(String)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const reference = JSON.parse(out.trim().split('\n').pop()!) as typeof result;
  const ratio = (key: 'train_tokens_per_s' | 'gen_tokens_per_s_b1' | 'gen_tokens_per_s_b32') =>
    Math.round((result[key] / reference[key]) * 1000) / 1000;
  const { config: _, ...numbers } = reference;
  process.stdout.write(
    `${JSON.stringify({
      reference: numbers,
      ratio: {
        train: ratio('train_tokens_per_s'),
        gen_b1: ratio('gen_tokens_per_s_b1'),
        gen_b32: ratio('gen_tokens_per_s_b32'),
      },
    })}\n`,
  );
}
