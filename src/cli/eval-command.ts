/**
 * `corgi eval --policy <dir> --cases <file.jsonl> --attempts K [--n N] [--seed S] [--json]`: the CLI
 * face of `evaluatePolicy` (a contract: keep its flags and output). Greedy decoding, K attempts per case;
 * `--temperature T` samples the attempts instead, seeded by `--seed` (0 when unset).
 *
 * Output: the report as JSON (`--json`) or a markdown table on stdout; progress on stderr (one
 * line redrawn in place on a terminal, a line every 15 s otherwise); with `--out`, every case's
 * session as one JSON line, in case order. Bad input (a missing file, an invalid case line, a flag
 * out of range) exits 2 with a message naming the flag or the file and line; with `--json` the
 * message also goes to stdout as `{"error", "field"}`. Ctrl-C stops the sessions and exits 130.
 */

import { appendFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { CorgiError } from '../common/errors.ts';
import { expandStoreName } from '../model/store/resolve-policy-spec.ts';
import { modelVersionName, resolveCheckpointDir } from '../policy/builtin-model.ts';
import { MAX_ATTEMPTS_LIMIT } from '../session/session-runner.ts';
import { type EvalCase, readCasesJsonl } from '../tasks/cases.ts';
import {
  DEFAULT_EVAL_ATTEMPTS,
  DEFAULT_EVAL_CONCURRENCY,
  DEFAULT_EVAL_MAX_TOKENS,
  type EvalCaseResult,
  type EvalProgress,
  evaluatePolicy,
  formatEvalProgress,
  formatEvalTable,
  selectCases,
} from '../training/eval/eval.ts';
import { dataDirFromEnv } from './command-env.ts';
import { defaultPolicyDir } from './generate-command.ts';

/** Exit code for refused input, as `corgi check` uses it. */
const EXIT_BAD_INPUT = 2;
/** Seconds between progress lines when stderr is not a terminal. */
const PROGRESS_LINE_SECONDS = 15;

/** Raw flag values: parsed in the action, so every refusal is reported the same way. */
interface EvalCommandOptions {
  policy?: string;
  cases?: string;
  attempts: string;
  n?: string;
  seed?: string;
  temperature: string;
  maxTokens: string;
  concurrency: string;
  out?: string;
  skipInvalid?: boolean;
  json?: boolean;
}

/** Input the command refuses; `flag` names the offending flag. */
class EvalInputError extends CorgiError {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super('invalid_input', `${flag}: ${message}`);
  }
}

/** Adds `corgi eval` to `program`. */
export function registerEvalCommand(program: Command): Command {
  return program
    .command('eval')
    .description(
      'Measure success@1..K of a checkpoint on constrained cases: greedy decoding (or sampled, --temperature), up to K attempts per case ' +
        'with checker feedback between them. Report on stdout (markdown table, or JSON with --json), progress on stderr.',
    )
    .option(
      '--policy <dir>',
      'store model name or checkpoint directory in Hugging Face layout (default: $CORGI_POLICY or models/base)',
    )
    .option(
      '--cases <file>',
      'JSON lines {"id"?, "constraints": [...], "prompt"?} (the paper\'s test sets in ../shared/data/corgi too)',
    )
    .option('--attempts <k>', `attempts per case, 1..${MAX_ATTEMPTS_LIMIT}`, String(DEFAULT_EVAL_ATTEMPTS))
    .option('--n <n>', 'evaluate only N cases: the first N, or a seeded sample with --seed')
    .option(
      '--seed <s>',
      'with --n, draw a reproducible random sample of N cases instead of the first N; with --temperature, seed the draws',
    )
    .option(
      '--temperature <t>',
      "sample every attempt at this softmax temperature (the server's default is 0.7) instead of decoding greedily",
      '0',
    )
    .option(
      '--max-tokens <n>',
      'upper bound on generated tokens per attempt',
      String(DEFAULT_EVAL_MAX_TOKENS),
    )
    .option(
      '--concurrency <c>',
      'sessions in flight (decoded together, up to 32 llama.cpp sequences)',
      String(DEFAULT_EVAL_CONCURRENCY),
    )
    .option('--out <file>', "write each case's session (attempt texts, scores, feedback) as JSON lines")
    .option('--skip-invalid', 'skip invalid case lines with a warning instead of refusing the file')
    .option('--json', 'print the report as JSON')
    .action(async (options: EvalCommandOptions) => {
      process.exitCode = await runEval(options);
    });
}

async function runEval(options: EvalCommandOptions): Promise<number> {
  const fail = (message: string, field?: string) => {
    process.stderr.write(`corgi eval: ${message}\n`);
    if (options.json)
      process.stdout.write(`${JSON.stringify({ error: message, ...(field ? { field } : {}) })}\n`);
    return EXIT_BAD_INPUT;
  };
  let input: ReturnType<typeof parseInput>;
  try {
    input = parseInput(options);
  } catch (error) {
    if (EvalInputError.isInstance(error)) return fail(error.message, error.flag);
    throw error;
  }

  const [{ CheckpointError }, { servingPolicyLoader }] = await Promise.all([
    import('../model/checkpoint.ts'),
    import('../policy/serving-loader.ts'),
  ]);
  // Evaluation decodes on llama.cpp, the engine that serves: a checkpoint directory is converted
  // to GGUF once (cached in the data directory) and decoded with its own tokenizer.
  const load = servingPolicyLoader({
    cacheDir: join(dataDirFromEnv(), 'cache', 'gguf'),
    sequences: Math.min(input.concurrency, MAX_SEQUENCES),
  });
  let policy: Awaited<ReturnType<typeof load>>;
  try {
    policy = await load(input.policyDir, input.version);
  } catch (error) {
    if (CheckpointError.isInstance(error)) return fail(`--policy: ${error.message}`, '--policy');
    throw error;
  }

  const out = options.out ? openOrderedJsonl(options.out) : null;
  const progress = createProgressWriter();
  const controller = new AbortController();
  const stop = () => controller.abort(new Error('interrupted'));
  let errors = 0;
  let firstError: string | undefined;
  process.once('SIGINT', stop);
  try {
    const report = await evaluatePolicy({
      policy,
      cases: input.cases,
      attempts: input.attempts,
      concurrency: input.concurrency,
      maxTokens: input.maxTokens,
      temperature: input.temperature,
      samplingSeed: input.seed ?? 0,
      onProgress: progress.update,
      onCase: (result) => {
        if (result.error !== undefined) {
          errors++;
          firstError ??= result.error;
        }
        out?.write(result);
      },
      signal: controller.signal,
    });
    progress.end();
    if (errors > 0) {
      process.stderr.write(
        `corgi eval: ${errors} of ${report.n} cases stopped on a generation error, counted as unsolved ` +
          `(first: ${firstError})${out ? `; see "error" in ${options.out}` : ''}\n`,
      );
    }
    process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : `${formatEvalTable(report)}\n`);
    return 0;
  } catch (error) {
    progress.end();
    if (controller.signal.aborted) {
      process.stderr.write('corgi eval: interrupted\n');
      return 130;
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', stop);
    policy.dispose();
  }
}

/** Validates the flags and reads the cases; throws `EvalInputError` naming the flag. */
function parseInput(options: EvalCommandOptions): {
  policyDir: string;
  /** The name the report gives the policy. */
  version: string;
  cases: EvalCase[];
  attempts: number;
  concurrency: number;
  maxTokens: number;
  temperature: number;
  seed: number | undefined;
} {
  const attempts = parseInteger('--attempts', options.attempts, 1, MAX_ATTEMPTS_LIMIT);
  const maxTokens = parseInteger('--max-tokens', options.maxTokens, 1);
  const concurrency = parseInteger('--concurrency', options.concurrency, 1);
  const n = options.n === undefined ? undefined : parseInteger('--n', options.n, 1);
  const seed = options.seed === undefined ? undefined : parseInteger('--seed', options.seed, 0);
  const temperature = Number(options.temperature);
  if (options.temperature.trim() === '' || !Number.isFinite(temperature) || temperature < 0) {
    throw new EvalInputError(
      '--temperature',
      `expected a number ≥ 0 (0 decodes greedily), got "${options.temperature}"`,
    );
  }

  const spec = options.policy ?? defaultPolicyDir();
  const expanded = expandStoreName(spec, { dataDir: dataDirFromEnv() });
  const policyDir = resolveCheckpointDir(expanded);
  // A store model is reported under its store name, anything else under its file or directory name.
  const version = expanded !== spec ? spec : modelVersionName(policyDir);
  if (!isModel(policyDir)) {
    throw new EvalInputError(
      '--policy',
      `no model at ${policyDir} (expected a GGUF file, a directory holding one, or a checkpoint directory ` +
        'with config.json, model.safetensors and tokenizer.json); pass --policy <store name | dir | file.gguf> ' +
        'or set CORGI_POLICY',
    );
  }
  if (options.cases === undefined) {
    throw new EvalInputError('--cases', 'required: a JSON-lines file of {"id"?, "constraints", "prompt"?}');
  }
  if (!existsSync(options.cases) || !statSync(options.cases).isFile()) {
    throw new EvalInputError('--cases', `no such file: ${options.cases}`);
  }
  let all: EvalCase[];
  try {
    all = readCasesJsonl(options.cases, {
      skipInvalid: options.skipInvalid,
      onSkip: (error) => process.stderr.write(`corgi eval: skipped ${error.message}\n`),
    });
  } catch (error) {
    // The reader's message already names the file and line: `cases.jsonl:3: constraints[0].id: ...`.
    throw new EvalInputError(
      '--cases',
      `${(error as Error).message} (fix the line, or pass --skip-invalid to skip such lines)`,
    );
  }
  if (all.length === 0) throw new EvalInputError('--cases', `${options.cases} holds no cases`);
  return {
    policyDir,
    version,
    cases: selectCases(all, { n, seed }),
    attempts,
    concurrency,
    maxTokens,
    temperature,
    seed,
  };
}

/** Sessions decoded at once on llama.cpp; more cases wait for a free sequence. */
const MAX_SEQUENCES = 32;

/** A GGUF file, a directory holding one, or a checkpoint directory. */
function isModel(path: string): boolean {
  if (!existsSync(path)) return false;
  if (statSync(path).isFile()) return path.toLowerCase().endsWith('.gguf');
  return existsSync(join(path, 'config.json')) || readdirSync(path).some((name) => name.endsWith('.gguf'));
}

function parseInteger(flag: string, text: string, min: number, max = Number.POSITIVE_INFINITY): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.POSITIVE_INFINITY ? `≥ ${min}` : `in ${min}..${max}`;
    throw new EvalInputError(flag, `expected an integer ${range}, got "${text}"`);
  }
  return value;
}

/**
 * A JSON-lines file written in case order while cases finish in any order: each result waits
 * until every earlier one is written, so a run cut short leaves a clean prefix.
 */
function openOrderedJsonl(path: string): { write: (result: EvalCaseResult) => void } {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, '');
  const pending = new Map<number, EvalCaseResult>();
  let next = 0;
  return {
    write: (result) => {
      pending.set(result.index, result);
      const lines: string[] = [];
      for (let ready = pending.get(next); ready; ready = pending.get(next)) {
        lines.push(JSON.stringify(ready));
        pending.delete(next++);
      }
      if (lines.length > 0) appendFileSync(path, `${lines.join('\n')}\n`);
    },
  };
}

/** Progress on stderr: redrawn in place on a terminal, else a line every 15 s and at the end. */
function createProgressWriter() {
  const isTTY = process.stderr.isTTY === true;
  let open = false;
  let lastLineAt = Number.NEGATIVE_INFINITY;
  return {
    update: (p: EvalProgress) => {
      const text = formatEvalProgress(p);
      if (isTTY) {
        process.stderr.write(`\r\x1b[2K${text}`);
        open = true;
        return;
      }
      const now = performance.now() / 1000;
      if (now - lastLineAt >= PROGRESS_LINE_SECONDS || p.done === p.total) {
        lastLineAt = now;
        process.stderr.write(`${text}\n`);
      }
    },
    end: () => {
      if (open) process.stderr.write('\n');
      open = false;
    },
  };
}
