/**
 * `corgi trainer`: the background trainer (background-trainer.ts) as a process beside the servers,
 * on the PostgreSQL they share (`DATABASE_URL`). It checks every `--poll-seconds` whether a round
 * is due, trains, gates and promotes; servers pick promotions up by NOTIFY. `--once` runs one round
 * now and exits. Training flags are `corgi train`'s (the config's), minus where the checkpoint
 * comes from and goes to, which the round decides.
 *
 * `corgi serve` on the embedded database runs `corgi trainer --once` as a low-priority child process
 * for each round (trainer-worker.ts), with DATABASE_URL pointing at the embedded database's socket
 * and these variables: CORGI_DATABASE_EMBEDDED=1 (the URL is PGlite behind pglite-socket: one
 * connection, no migrations, the embedded lock and promotion rules) and CORGI_TRAINER_NICE=<n>
 * (every thread of this process gets that nice value).
 */

import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';
import type { Logger } from '../common/logger.ts';
import { expandStoreName } from '../model/store/resolve-policy-spec.ts';
import { type CorgiConfigInput, corgiConfigSchema } from '../training/rl/corgi-config.ts';
import {
  backendOptionsFromEnv,
  databaseOptionsFromEnv,
  dataDirFromEnv,
  loggerFromEnv,
} from './command-env.ts';
import { addConfigOptions, readConfigFlags } from './config-flags.ts';

/** Fields a round sets itself. */
const ROUND_FIELDS = new Set(['policy', 'out', 'version', 'resume', 'overwrite', 'run_id']);

function positive(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !(n >= 0)) throw new InvalidArgumentError(`expected a number ≥ 0, got "${text}"`);
  return n;
}

interface TrainerCommandOptions {
  policy: string;
  checkpointDir: string;
  minSessions: number;
  periodMinutes: number;
  pollSeconds: number;
  gateCases: number;
  tolerance: number;
  once?: boolean;
}

/** Adds `corgi trainer` to `program`. */
export function registerTrainerCommand(program: Command): Command {
  const command = program
    .command('trainer')
    .description(
      'Run the background trainer against DATABASE_URL: when enough live sessions came in (or a period passed), ' +
        'train from the live version, gate the candidate on the validation split, promote or refuse it',
    )
    .option('--policy <dir>', 'what to train from while nothing has been promoted', 'models/base')
    .option(
      '--checkpoint-dir <dir>',
      'where trained checkpoints go (every server must see this path)',
      join(process.env.CORGI_DATA_DIR ?? 'data', 'checkpoints'),
    )
    .addOption(
      new Option('--min-sessions <n>', 'new live sessions that start a round')
        .default(50)
        .argParser(positive),
    )
    .addOption(
      new Option('--period-minutes <m>', 'minutes after which any new session starts a round')
        .default(60)
        .argParser(positive),
    )
    .addOption(new Option('--poll-seconds <s>', 'seconds between checks').default(30).argParser(positive))
    .addOption(
      new Option('--gate-cases <n>', 'validation cases the gate compares on')
        .default(128)
        .argParser(positive),
    )
    .addOption(
      new Option('--tolerance <x>', 'largest drop of success@K / mean best score the gate accepts')
        .default(0.02)
        .argParser(positive),
    )
    .option('--once', 'run one round now and exit');
  const shape = Object.fromEntries(
    Object.entries(corgiConfigSchema.shape).filter(([field]) => !ROUND_FIELDS.has(field)),
  ) as unknown as Record<string, z.ZodType>;
  const fields = addConfigOptions(command, { train: shape }, { train: 'Training' });
  command.action(async (options: TrainerCommandOptions, cmd: Command) => {
    process.exitCode = await runTrainer(options, readConfigFlags(cmd, fields) as Partial<CorgiConfigInput>);
  });
  return command;
}

async function runTrainer(options: TrainerCommandOptions, train: Partial<CorgiConfigInput>): Promise<number> {
  if (!process.env.DATABASE_URL) {
    process.stderr.write(
      'corgi trainer: DATABASE_URL is not set. The embedded database lives inside `corgi serve`; run the trainer ' +
        'against a PostgreSQL server the servers share (see docs/operations.md).\n',
    );
    return 2;
  }
  const [{ selectBackend }, { openDatabase }, trainer, { validationCases }] = await Promise.all([
    import('../model/tfjs/backend.ts'),
    import('../db/database.ts'),
    import('../training/background/background-trainer.ts'),
    import('../promotion/eval-gate.ts'),
  ]);
  const logger = loggerFromEnv();
  if (process.env.CORGI_TRAINER_NICE) reniceThisProcess(Number(process.env.CORGI_TRAINER_NICE), logger);
  await selectBackend(backendOptionsFromEnv(process.env, logger));
  // The embedded database of the `corgi serve` that started this process, through its socket.
  const embedded = process.env.CORGI_DATABASE_EMBEDDED === '1';
  const opened = await openDatabase({
    ...databaseOptionsFromEnv(process.env, logger),
    ...(embedded ? { poolSize: 1, migrate: false } : {}),
  });
  const db = embedded ? { ...opened, embedded: true } : opened;
  const controller = new AbortController();
  const stop = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // Started by `corgi serve` (an IPC channel): stop when it goes away. The channel alone must not
  // keep this process alive.
  if (process.channel) {
    process.channel.unref();
    process.once('disconnect', stop);
  }
  const round = {
    db,
    checkpointDir: options.checkpointDir,
    fallbackPolicy: expandStoreName(options.policy, { dataDir: dataDirFromEnv() }),
    dataDir: dataDirFromEnv(),
    train,
    gate: { cases: validationCases({ size: options.gateCases }), tolerance: options.tolerance },
    signal: controller.signal,
  };
  try {
    if (options.once) {
      const result = await trainer.runTrainerRound(round);
      process.stdout.write(
        `${JSON.stringify({ ...result, summary: { ...result.summary, config: undefined } }, null, 2)}\n`,
      );
      return result.promoted ? 0 : 1;
    }
    await trainer.runBackgroundTrainer({
      ...round,
      minSessions: options.minSessions,
      periodMinutes: options.periodMinutes,
      pollSeconds: options.pollSeconds,
      logger,
    });
    return 0;
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    process.removeListener('disconnect', stop);
    await db.close();
  }
}

/**
 * Gives every thread of this process the nice value `nice`. On Linux a nice value belongs to a
 * thread, and `os.setPriority(pid)` changes only the thread whose id is the pid (the main one):
 * V8's and libuv's threads, started before, would keep the parent's priority. Threads started later
 * inherit their creator's. Logs what the kernel then reports.
 */
function reniceThisProcess(nice: number, logger: Logger): void {
  const tasks = (() => {
    try {
      return readdirSync('/proc/self/task').map(Number);
    } catch {
      return [0]; // not Linux: the process
    }
  })();
  let niced = 0;
  for (const tid of tasks) {
    try {
      setPriority(tid, nice);
      niced++;
    } catch {
      // a thread that ended meanwhile
    }
  }
  logger.child('trainer').info(`nice ${getPriority(0)} on ${niced} of ${tasks.length} threads`);
}
