/**
 * Runs one `corgi` command for the scripts that chain them (experiment.ts, experiments/*.ts): the
 * command line echoed on stderr with the script's name, the child's progress passed through,
 * its stdout kept (and written to `stdoutFile` when given), a non-zero exit turned into an error.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const corgi = resolve(import.meta.dirname, '../bin/corgi.js');

export interface RunCorgiOptions {
  /** Variables set for the child on top of this process's environment. */
  env?: Record<string, string>;
  /** Append the child's stderr (its progress) to this file instead of passing it through. */
  stderrFile?: string;
}

export function runCorgi(
  script: string,
  args: string[],
  stdoutFile?: string,
  options: RunCorgiOptions = {},
): Promise<void> {
  const redirects = `${stdoutFile ? ` > ${stdoutFile}` : ''}${options.stderrFile ? ` 2>> ${options.stderrFile}` : ''}`;
  console.error(`${script}: corgi ${args.join(' ')}${redirects}`);
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [corgi, ...args], {
      stdio: ['ignore', 'pipe', options.stderrFile ? 'pipe' : 'inherit'],
      env: { ...process.env, ...options.env },
    });
    if (options.stderrFile) child.stderr?.pipe(createWriteStream(options.stderrFile, { flags: 'a' }));
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', fail);
    child.on('exit', (code) => {
      if (code !== 0) return fail(new Error(`corgi ${args[0]} exited with ${code}`));
      if (stdoutFile) writeFileSync(stdoutFile, out);
      done();
    });
  });
}

export interface TrainRun {
  /** The policy trained from (a store name or a checkpoint directory). */
  base: string;
  /** The checkpoint directory written; `<out>.work` holds the run's work checkpoint meanwhile. */
  out: string;
  attempts: number;
  seed: string;
  /** The budget both runs of an experiment share: policy-gradient tokens. */
  pgTokens: string;
  /** More `corgi train` flags. */
  extra?: string[];
}

/**
 * The `corgi train` arguments of one run of an experiment, at equal policy-gradient tokens; it
 * resumes from its work checkpoint when an earlier run was interrupted.
 */
export function corgiTrainArgs({ base, out, attempts, seed, pgTokens, extra = [] }: TrainRun): string[] {
  return [
    'train',
    '--policy',
    base,
    '--out',
    out,
    '--attempts',
    String(attempts),
    '--seed',
    seed,
    '--budget',
    'pg_tokens',
    '--pg-tokens',
    pgTokens,
    ...extra,
    ...(existsSync(`${out}.work`) ? ['--resume'] : ['--overwrite']),
  ];
}
