/**
 * The background trainer (`corgi trainer`): the service improving itself from its traffic. It
 * wakes every `pollSeconds`, and when `minSessions` new live sessions have been logged since the
 * last round (or `periodMinutes` have passed) it runs one round:
 *
 *   lock (one trainer at a time) → CORGI training from the live version (trainCorgi, production
 *   prompts included) → checkpoint written atomically → policy_versions candidate → eval gate on
 *   the validation split against the live version → promote (servers swap at a turn boundary) or
 *   refuse with the reason.
 *
 * Promotion goes through the database (promotion.ts): NOTIFY on PostgreSQL, and the servers'
 * polling of policy_versions on the embedded database, so the trainer may run in another process
 * or in a worker of the server's own process.
 */

import { join, resolve } from 'node:path';
import { defaultLogger, type Logger } from '../../common/logger.ts';
import type { Database } from '../../db/database.ts';
import { getLivePolicyVersion } from '../../db/policy-versions.ts';
import { liveSessionsSinceLastVersion } from '../../db/sessions.ts';
import { trainingStepRecorder } from '../../db/training-steps.ts';
import { servingPolicyLoader } from '../../policy/serving-loader.ts';
import {
  DEFAULT_GATE_TOLERANCE,
  type GateRecord,
  gateCandidate,
  validationCases,
} from '../../promotion/eval-gate.ts';
import { promote } from '../../promotion/promote.ts';
import { registerCheckpoint } from '../../promotion/versions.ts';
import type { EvalCase } from '../../tasks/cases.ts';
import type { ProgressReporter } from '../progress.ts';
import type { CorgiConfigInput } from '../rl/corgi-config.ts';
import { type TrainSummary, trainCorgi } from '../rl/corgi-trainer.ts';
import type { RolloutPrompt } from '../rl/rollouts.ts';
import { withTrainerLock } from './trainer-lock.ts';

export interface TrainerRoundOptions {
  db: Database;
  /** Checkpoints go to `<checkpointDir>/<version>`. */
  checkpointDir: string;
  /** What to train from while nothing has been promoted (the shipped base model). */
  fallbackPolicy: string;
  /** Training config; `policy`, `out` and `version` are set by the round. */
  train?: Omit<CorgiConfigInput, 'policy' | 'out' | 'version'>;
  /** The gate's cases (default: `validationCases()`), tolerance and K. */
  gate?: { cases?: readonly EvalCase[]; tolerance?: number; attempts?: number };
  /** Train on these prompts instead of the task pools (tests). */
  prompts?: readonly RolloutPrompt[];
  signal?: AbortSignal;
  progress?: ProgressReporter;
  /** Version names: `corgi-<UTC timestamp>` by default. */
  now?: () => Date;
  /** The model store and GGUF cache (the commands pass CORGI_DATA_DIR). @default './data' */
  dataDir?: string;
}

export interface TrainerRound {
  version: string;
  parentVersion: string | null;
  promoted: boolean;
  /** Why the gate refused it, or null. */
  reason: string | null;
  summary: TrainSummary;
  gate: GateRecord;
}

/** One round: train from the live version, register, gate, promote. Holds the trainer lock throughout. */
export async function runTrainerRound(options: TrainerRoundOptions): Promise<TrainerRound> {
  const { db } = options;
  return withTrainerLock(
    db,
    async ({ signal }) => {
      const live = await getLivePolicyVersion(db.pool);
      const parentDir = live?.checkpointPath ?? resolve(options.fallbackPolicy);
      const parentVersion = live?.version ?? null;
      const stamp = (options.now?.() ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
      const version = `corgi-${stamp}`;
      const out = join(resolve(options.checkpointDir), version);
      const dataDir = options.dataDir ?? './data';
      const summary = await trainCorgi(
        { ...options.train, policy: parentDir, out, version },
        {
          db: db.pool,
          onStep: trainingStepRecorder(db.pool),
          dataDir,
          signal,
          ...(options.prompts ? { prompts: options.prompts } : {}),
          ...(options.progress ? { progress: options.progress } : {}),
        },
      );
      await registerCheckpoint(db, {
        dir: out,
        version,
        parentVersion,
        metrics: { ...summary.last, steps: summary.steps, minutes: summary.minutes },
      });
      // Both gated on llama.cpp, loaded as a server loads them.
      const load = servingPolicyLoader({ cacheDir: join(dataDir, 'cache', 'gguf'), dataDir });
      const candidate = await load(out, version);
      const current = await load(parentDir, parentVersion ?? 'fallback').catch(async (error) => {
        await candidate.dispose();
        throw error;
      });
      let gate: GateRecord;
      try {
        gate = await gateCandidate({
          db,
          candidate,
          live: current,
          cases: options.gate?.cases ?? validationCases(),
          tolerance: options.gate?.tolerance ?? DEFAULT_GATE_TOLERANCE,
          ...(options.gate?.attempts !== undefined ? { attempts: options.gate.attempts } : {}),
          evalOptions: { signal },
        });
      } finally {
        await candidate.dispose();
        await current.dispose();
      }
      if (gate.passed) await promote(db, { version }, { load });
      return { version, parentVersion, promoted: gate.passed, reason: gate.reason, summary, gate };
    },
    options.signal ? { signal: options.signal } : {},
  );
}

/** Rounds that failed in a row (no candidate registered), and when the last one did. */
export interface RoundFailures {
  count: number;
  /** Milliseconds since the epoch. */
  lastAt: number;
}

export interface TriggerOptions {
  /** New live sessions since the last round that start one. @default 50 */
  minSessions?: number;
  /** Minutes after the last round that start one anyway (if any session came in). @default 60 */
  periodMinutes?: number;
  /**
   * Failed rounds since the last one that ended (promoted or refused). A failed round registers
   * nothing, so the trigger stays met; without a back-off it would be retried at every poll.
   */
  failures?: RoundFailures | null;
  /** Wait after a first failure; doubles with each further one, up to `periodMinutes`. @default 60 */
  backoffSeconds?: number;
  /** Clock for the back-off (ms since the epoch). @default Date.now */
  clock?: () => number;
}

/** How long to wait after `failures` before trying again: backoff·2^(n−1), at most the period. */
export function retryDelayMs(
  failures: number,
  { backoffSeconds = 60, periodMinutes = 60 }: Pick<TriggerOptions, 'backoffSeconds' | 'periodMinutes'> = {},
): number {
  if (failures <= 0) return 0;
  return Math.min(periodMinutes * 60_000, backoffSeconds * 1000 * 2 ** Math.min(failures - 1, 30));
}

/**
 * Whether a round is due: `minSessions` live sessions logged since the last version was
 * registered, or `periodMinutes` passed since then with at least one; and, after failed rounds,
 * once their back-off has passed (`retryAt` says when).
 */
export async function roundDue(
  db: Pick<Database, 'pool'>,
  {
    minSessions = 50,
    periodMinutes = 60,
    failures = null,
    backoffSeconds,
    clock = Date.now,
  }: TriggerOptions = {},
): Promise<{ due: boolean; newSessions: number; since: string | null; retryAt: string | null }> {
  const { since, sessions, now: dbNow } = await liveSessionsSinceLastVersion(db.pool);
  const newSessions = Number(sessions);
  const minutes = since ? (dbNow.getTime() - since.getTime()) / 60_000 : Number.POSITIVE_INFINITY;
  const triggered = newSessions >= minSessions || (newSessions > 0 && minutes >= periodMinutes);
  const retryAt =
    failures && failures.count > 0
      ? failures.lastAt + retryDelayMs(failures.count, { backoffSeconds, periodMinutes })
      : null;
  const waiting = retryAt !== null && clock() < retryAt;
  return {
    due: triggered && !waiting,
    newSessions,
    since: since ? since.toISOString() : null,
    retryAt: waiting ? new Date(retryAt).toISOString() : null,
  };
}

export interface BackgroundTrainerOptions extends TrainerRoundOptions, TriggerOptions {
  /** Seconds between checks. @default 30 */
  pollSeconds?: number;
  /** Called after each round (and with the error of a failed one). */
  onRound?: (round: TrainerRound | Error) => void;
  /** Where rounds are logged (as `[trainer]`). @default defaultLogger (logger.ts) */
  logger?: Logger;
}

/**
 * Checks and runs rounds until `signal` aborts. A failed round is logged and retried after a
 * back-off that doubles with each failure in a row (`retryDelayMs`), not at every poll.
 */
export async function runBackgroundTrainer(options: BackgroundTrainerOptions): Promise<void> {
  const log = (options.logger ?? defaultLogger).child('trainer');
  const pollMs = (options.pollSeconds ?? 30) * 1000;
  const failures: RoundFailures = { count: 0, lastAt: 0 };
  while (!options.signal?.aborted) {
    const check = await roundDue(options.db, { ...options, failures });
    if (check.due) {
      log.info(`${check.newSessions} new live sessions since ${check.since ?? 'the start'}: training`);
      try {
        const round = await runTrainerRound(options);
        log.info(
          round.promoted
            ? `promoted ${round.version} (from ${round.parentVersion ?? 'the base model'})`
            : `refused ${round.version}: ${round.reason}`,
        );
        failures.count = 0;
        options.onRound?.(round);
      } catch (error) {
        if (options.signal?.aborted) break;
        failures.count++;
        failures.lastAt = (options.clock ?? Date.now)();
        const wait = retryDelayMs(failures.count, options);
        log.error(
          `round failed (${failures.count} in a row): ${(error as Error).message}; next try in ${Math.round(wait / 1000)} s at the earliest`,
        );
        options.onRound?.(error as Error);
      }
    }
    await new Promise<void>((done) => {
      const timer = setTimeout(done, pollMs);
      options.signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          done();
        },
        { once: true },
      );
    });
  }
}
