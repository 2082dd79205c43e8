/**
 * `corgi generate [--policy spec] [--max-tokens N] [--temperature T] [--seed S] "<prompt>"`: one reply
 * from a local model on llama.cpp, streamed to stdout as it is generated. A thin shell over
 * `servingPolicyLoader` (a checkpoint directory is converted to GGUF once and cached).
 */

import { existsSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { expandStoreName } from '../model/store/resolve-policy-spec.ts';
import { modelVersionName, resolveCheckpointDir } from '../policy/builtin-model.ts';
// Types only: llama.cpp loads when the command runs, not with every `corgi` invocation.
import type { LlamaCppPolicy } from '../policy/llama-cpp-policy.ts';
import { SAMPLING_DEFAULTS } from '../policy/sampling.ts';
import { dataDirFromEnv } from './command-env.ts';

/** Where `corgi generate` looks without `--policy`. */
export function defaultPolicyDir(): string {
  return process.env.CORGI_POLICY ?? 'models/base';
}

function parseNumber(kind: 'integer' | 'number', min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || (kind === 'integer' && !Number.isInteger(n)) || n < min)
      throw new InvalidArgumentError(
        `expected ${kind === 'integer' ? 'an integer' : 'a number'} ≥ ${min}, got "${value}"`,
      );
    return n;
  };
}

function parseTopP(value: string): number {
  const p = Number(value);
  if (value.trim() === '' || !(p > 0 && p <= 1))
    throw new InvalidArgumentError(`expected a number in (0, 1], got "${value}"`);
  return p;
}

interface GenerateCommandOptions {
  policy?: string;
  maxTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/** Adds `corgi generate` to `program`. */
export function registerGenerateCommand(program: Command): Command {
  return program
    .command('generate')
    .description('Generate a reply to one user message with a local model (llama.cpp), streamed to stdout')
    .argument('<prompt>', 'the user message')
    .option(
      '--policy <spec>',
      'store model name, GGUF file or checkpoint directory in Hugging Face layout (default: $CORGI_POLICY or models/base)',
    )
    .option('--max-tokens <n>', 'upper bound on generated tokens', parseNumber('integer', 1), 128)
    .option(
      '--temperature <t>',
      'softmax temperature; 0 is greedy',
      parseNumber('number', 0),
      SAMPLING_DEFAULTS.temperature,
    )
    .option('--top-k <k>', 'keep only the k most likely tokens (0: off)', parseNumber('integer', 0))
    .option('--top-p <p>', 'nucleus sampling threshold in (0, 1]', parseTopP)
    .option('--seed <s>', 'seed for reproducible sampling', parseNumber('integer', 0))
    .action(async (prompt: string, options: GenerateCommandOptions) => {
      process.exitCode = await runGenerate(prompt, options);
    });
}

async function runGenerate(prompt: string, options: GenerateCommandOptions): Promise<number> {
  const dir = resolveCheckpointDir(
    expandStoreName(options.policy ?? defaultPolicyDir(), { dataDir: dataDirFromEnv() }),
  );
  const fail = (message: string) => {
    process.stderr.write(`corgi generate: ${message}\n`);
    return 1;
  };
  if (!existsSync(dir)) {
    return fail(
      `no checkpoint in ${dir} (expected a GGUF file, a store model, or a directory with config.json, ` +
        'model.safetensors and tokenizer.json): train one first (corgi pretrain), or pass --policy <dir> or set CORGI_POLICY',
    );
  }
  const [{ CheckpointError }, { servingPolicyLoader }] = await Promise.all([
    import('../model/checkpoint.ts'),
    import('../policy/serving-loader.ts'),
  ]);
  let policy: LlamaCppPolicy;
  try {
    policy = await servingPolicyLoader({ sequences: 1, dataDir: dataDirFromEnv() })(
      dir,
      modelVersionName(dir),
    );
  } catch (error) {
    if (CheckpointError.isInstance(error)) return fail(error.message);
    throw error;
  }
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop); // Ctrl-C ends the reply cleanly
  try {
    const stream = policy.generate([{ role: 'user', content: prompt }], {
      maxTokens: options.maxTokens,
      temperature: options.temperature,
      topK: options.topK,
      topP: options.topP,
      seed: options.seed,
      signal: controller.signal,
    });
    for (;;) {
      const next = await stream.next();
      if (next.done) break;
      if (next.value.text && !process.stdout.write(next.value.text)) {
        await new Promise((resolve) => process.stdout.once('drain', resolve));
      }
    }
    process.stdout.write('\n');
    return 0;
  } catch (error) {
    // Expected failures (a prompt longer than the context) get one line, not a stack trace.
    return fail((error as Error).message);
  } finally {
    process.removeListener('SIGINT', stop);
    await policy.dispose();
  }
}
