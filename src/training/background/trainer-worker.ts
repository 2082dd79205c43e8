/**
 * The background trainer inside `corgi serve` (docs/training.md): the server checks
 * every `pollSeconds` whether a round is due (`roundDue`: enough new live sessions, or the period
 * passed with at least one; after failed rounds, once their back-off has passed), and runs each
 * round as a child process, `corgi trainer --once`, at nice 19.
 *
 * Why a child process and not a worker thread: on two cores the trainer must give way to serving. A
 * worker thread could lower only its own priority, and only on Linux (where a nice value belongs to
 * a thread), while its memory and any crash or out-of-memory in training stay the server's. A niced
 * process is the portable way (trainer-command.ts renices every one of its threads), its memory goes
 * back when the round ends, and it cannot take the server down. The child talks to the database
 * the server uses: the embedded one through its loopback socket (`Database.url`; pglite-queue.ts
 * keeps its queries from interleaving with the server's), or DATABASE_URL. It registers, gates and
 * promotes like `corgi trainer`; the server's promotion follower picks a promotion up by polling
 * (embedded) or NOTIFY (PostgreSQL). Between rounds no child runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { defaultLogger, type Logger } from '../../common/logger.ts';
import type { Database } from '../../db/database.ts';
import { parsePolicySpec } from '../../policy/policy-spec.ts';
import { type RoundFailures, retryDelayMs, roundDue, type TriggerOptions } from './background-trainer.ts';
import { releaseEmbeddedTrainerLock } from './trainer-lock.ts';

const CORGI_BIN = fileURLToPath(new URL('../../../bin/corgi.js', import.meta.url));

/** The lowest priority: the trainer only gets the CPU serving leaves. */
export const DEFAULT_TRAINER_NICE = 19;

export interface TrainerWorkerOptions
  extends Pick<TriggerOptions, 'minSessions' | 'periodMinutes' | 'backoffSeconds'> {
  /** The server's database: the checks run on it, and the child connects to `db.url`. */
  db: Database;
  /** What to train from while nothing has been promoted. */
  policyDir: string;
  /** Where trained checkpoints go. */
  checkpointDir: string;
  /** Seconds between checks. @default 30 */
  pollSeconds?: number;
  /** The child's nice value. @default 19 */
  nice?: number;
  /** More `corgi trainer` flags (training budget, gate cases, ...). */
  args?: readonly string[];
  /** Where rounds and the child's lines (as `[trainer <pid>]`) are logged. @default defaultLogger (logger.ts) */
  logger?: Logger;
  /** Called after each round with what it did. */
  onRound?: (round: WorkerRound) => void;
  /** The child's environment. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** What one round (one child process) did. */
export interface WorkerRound {
  pid: number | undefined;
  /** The candidate's version, when the round got that far. */
  version: string | null;
  promoted: boolean;
  /** Why the gate refused the candidate. */
  reason: string | null;
  /** Why the round failed (no verdict), or null. */
  error: string | null;
}

export interface TrainerWorker {
  /** True while a round's child process runs. */
  readonly training: boolean;
  /** Stops checking, ends a running round (SIGTERM, then SIGKILL after `graceMs`) and waits for it. */
  close(graceMs?: number): Promise<void>;
}

/** Starts checking for due rounds; the first check comes after one poll interval. */
export function startTrainerWorker(options: TrainerWorkerOptions): TrainerWorker {
  const logger = options.logger ?? defaultLogger;
  const log = logger.child('trainer');
  const pollMs = (options.pollSeconds ?? 30) * 1000;
  const nice = options.nice ?? DEFAULT_TRAINER_NICE;
  const failures: RoundFailures = { count: 0, lastAt: 0 };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let child: ChildProcess | null = null;
  let ticking: Promise<void> = Promise.resolve();

  const runRound = (newSessions: number, since: string | null) =>
    new Promise<WorkerRound>((done) => {
      const args = [
        CORGI_BIN,
        'trainer',
        '--once',
        '--policy',
        options.policyDir,
        '--checkpoint-dir',
        options.checkpointDir,
        ...(options.args ?? []),
      ];
      const env: NodeJS.ProcessEnv = {
        ...(options.env ?? process.env),
        DATABASE_URL: options.db.url,
        CORGI_TRAINER_NICE: String(nice),
        // Plain lines: this process relays each one through its own logger.
        CORGI_LOG_FORMAT: 'text',
      };
      // One llama.cpp thread for the rollouts unless configured: at nice 19 a second thread waits
      // at every layer's barrier for a core the server is using.
      env.CORGI_LLAMA_THREADS ??= '1';
      if (options.db.embedded) env.CORGI_DATABASE_EMBEDDED = '1';
      else delete env.CORGI_DATABASE_EMBEDDED;
      const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
      child = proc;
      try {
        // The main thread at once; the child renices its other threads itself.
        if (proc.pid !== undefined) setPriority(proc.pid, nice);
      } catch (error) {
        log.warn(`could not lower the trainer's priority: ${(error as Error).message}`);
      }
      log.info(
        `round started: pid ${proc.pid}, nice ${nice} (${newSessions} new live sessions since ${since ?? 'the start'})`,
      );
      let stdout = '';
      // What a failed round reports: its last error line (`corgi: …`, commander's `error: …`), or last line.
      let lastLine = '';
      let errorLine = '';
      let partial = '';
      const childLog = logger.child(`trainer ${proc.pid}`);
      proc.stdout!.on('data', (chunk) => {
        stdout += chunk;
      });
      proc.stderr!.on('data', (chunk) => {
        const lines = (partial + chunk).split(/\r?\n|\r/);
        partial = lines.pop()!;
        for (const line of lines) {
          if (line.trim() === '') continue;
          lastLine = line;
          if (/^(corgi|error):/i.test(line.trim())) errorLine = line.trim();
          childLog.info(line);
        }
      });
      proc.once('error', (error) =>
        done({ pid: proc.pid, version: null, promoted: false, reason: null, error: error.message }),
      );
      proc.once('close', (code, signal) => {
        child = null;
        const result = parseRoundResult(stdout);
        if (result) {
          done({
            pid: proc.pid,
            version: result.version,
            promoted: result.promoted,
            reason: result.reason,
            error: null,
          });
        } else {
          const how = signal ? `killed by ${signal}` : `exit code ${code}`;
          const last = errorLine || partial.trim() || lastLine.trim();
          done({
            pid: proc.pid,
            version: null,
            promoted: false,
            reason: null,
            error: last ? `${how}: ${last}` : how,
          });
        }
      });
    });

  const tick = async () => {
    if (stopped) return;
    try {
      const check = await roundDue(options.db, { ...options, failures });
      if (check.due && !stopped) {
        const round = await runRound(check.newSessions, check.since);
        if (round.error === null) {
          failures.count = 0;
          log.info(
            round.promoted
              ? `promoted ${round.version}`
              : `the eval gate refused ${round.version}: ${round.reason}`,
          );
        } else {
          failures.count++;
          failures.lastAt = Date.now();
          const wait = retryDelayMs(failures.count, options);
          log.error(
            `round failed (${failures.count} in a row): ${round.error}; next try in ${Math.round(wait / 1000)} s at the earliest`,
          );
          // A child that died holding the embedded trainer lock would keep it until restart.
          if (options.db.embedded && !stopped)
            await releaseEmbeddedTrainerLock(options.db).catch(() => false);
        }
        options.onRound?.(round);
      }
    } catch (error) {
      if (!stopped) log.error(`check failed: ${(error as Error).message}`);
    }
    schedule();
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      ticking = tick();
    }, pollMs);
  };
  schedule();

  return {
    get training() {
      return child !== null;
    },
    async close(graceMs = 15_000) {
      stopped = true;
      clearTimeout(timer);
      const running = child as ChildProcess | null;
      if (running && running.exitCode === null && running.signalCode === null) {
        const exited = new Promise((resolve) => running.once('close', resolve));
        running.kill('SIGTERM');
        const killer = setTimeout(() => running.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(killer);
      }
      await ticking;
      if (options.db.embedded) await releaseEmbeddedTrainerLock(options.db).catch(() => false);
    },
  };
}

/** The JSON `corgi trainer --once` prints: the round's version and verdict. */
function parseRoundResult(
  stdout: string,
): { version: string; promoted: boolean; reason: string | null } | null {
  const start = stdout.indexOf('{');
  if (start < 0) return null;
  try {
    const result = JSON.parse(stdout.slice(start)) as {
      version?: unknown;
      promoted?: unknown;
      reason?: unknown;
    };
    if (typeof result.version !== 'string' || typeof result.promoted !== 'boolean') return null;
    return {
      version: result.version,
      promoted: result.promoted,
      reason: typeof result.reason === 'string' ? result.reason : null,
    };
  } catch {
    return null;
  }
}

// `corgi serve` flags.

export interface TrainerFlags {
  /** true: --trainer, false: --no-trainer, undefined: the default (on with the embedded database). */
  trainer?: boolean;
  trainerMinSessions: number;
  trainerPeriodMinutes: number;
  trainerPollSeconds: number;
  trainerNice: number;
  trainerArgs: string;
}

function nonNegative(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !(n >= 0)) throw new InvalidArgumentError(`expected a number ≥ 0, got "${text}"`);
  return n;
}

function niceValue(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 19)
    throw new InvalidArgumentError(`expected an integer in 0..19, got "${text}"`);
  return n;
}

/** Adds the background trainer's flags to `corgi serve`. */
export function addTrainerFlags(command: Command): Command {
  return command
    .option(
      '--trainer',
      'run the background trainer in a low-priority child process (default with the embedded database; env CORGI_TRAINER=on)',
    )
    .option('--no-trainer', 'do not run the background trainer (env CORGI_TRAINER=off)')
    .addOption(
      new Option('--trainer-min-sessions <n>', 'new live sessions that start a training round')
        .default(50)
        .argParser(nonNegative),
    )
    .addOption(
      new Option('--trainer-period-minutes <m>', 'minutes after which any new live session starts a round')
        .default(60)
        .argParser(nonNegative),
    )
    .addOption(
      new Option('--trainer-poll-seconds <s>', 'seconds between checks whether a round is due')
        .default(30)
        .argParser(nonNegative),
    )
    .addOption(
      new Option('--trainer-nice <n>', "the trainer process's nice value (19: only idle CPU)")
        .default(DEFAULT_TRAINER_NICE)
        .argParser(niceValue),
    )
    .option(
      '--trainer-args <flags>',
      'more `corgi trainer` flags for each round, space-separated (e.g. "--budget steps --steps 20 --gate-cases 64")',
      '',
    );
}

/**
 * Starts the background trainer for `corgi serve` if it should run, and says so (or why not): on
 * by default with the embedded database and a checkpoint-directory policy; with DATABASE_URL only
 * with `--trainer` (there `corgi trainer` usually runs beside the servers); never for a remote
 * policy (nothing local to train).
 */
export function startServeTrainer(
  db: Database,
  policySpec: string,
  flags: TrainerFlags,
  {
    logger = defaultLogger,
    trainerSetting,
    dataDir = 'data',
  }: {
    logger?: Logger;
    /** `CORGI_TRAINER`: on/off when neither `--trainer` nor `--no-trainer` is given. @default unset */
    trainerSetting?: string;
    /** Checkpoints go to `<dataDir>/checkpoints`. @default 'data' */
    dataDir?: string;
  } = {},
): TrainerWorker | null {
  const log = logger.child('trainer');
  const fromEnv = trainerSetting?.trim().toLowerCase();
  const envSays = fromEnv ? !['0', 'off', 'false', 'no'].includes(fromEnv) : undefined;
  const wanted = flags.trainer ?? envSays ?? db.embedded;
  if (!wanted) {
    if (db.embedded) log.info('background trainer off (--no-trainer / CORGI_TRAINER=off)');
    return null;
  }
  const spec = parsePolicySpec(policySpec, '--policy');
  if (spec.kind !== 'local') {
    if (flags.trainer)
      log.info(`background trainer off: ${policySpec} is a remote model, nothing to train here`);
    return null;
  }
  const checkpointDir = resolve(join(dataDir, 'checkpoints'));
  const args = flags.trainerArgs.split(/\s+/).filter((arg) => arg !== '');
  log.info(
    `background trainer on: a round when ${flags.trainerMinSessions} new live sessions came in, or ` +
      `${flags.trainerPeriodMinutes} min passed with one; checked every ${flags.trainerPollSeconds} s; ` +
      `trains at nice ${flags.trainerNice} in a child process; checkpoints in ${checkpointDir}`,
  );
  return startTrainerWorker({
    db,
    policyDir: spec.dir,
    checkpointDir,
    minSessions: flags.trainerMinSessions,
    periodMinutes: flags.trainerPeriodMinutes,
    pollSeconds: flags.trainerPollSeconds,
    nice: flags.trainerNice,
    args,
    logger,
  });
}
