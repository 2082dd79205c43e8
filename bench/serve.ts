/**
 * `npm run bench:serve`: the live service under concurrent load. Prints JSON on
 * stdout; progress goes to stderr.
 *
 *   npm run bench:serve -- [--clients 64] [--sessions 128] [--max-attempts 4] [--max-tokens 64]
 *                          [--temperature 0.7] [--seed 1] [--rounds 2] [--db embedded|postgres|url]
 *
 * One process loads the served model once (`--policy`: a store name, a GGUF file or a checkpoint
 * directory, on llama.cpp exactly as `corgi serve` loads it; default SmolLM2-135M-Instruct) and runs
 * the same sessions two ways, with the same concurrency:
 * - **server**: `startServer` (express + socket.io + the session service + the database, exactly
 *   as `corgi serve` wires them) on a loopback port, and `--clients` socket.io clients in a worker
 *   thread (bench/serve-clients.ts), each on its own websocket connection, each running sessions
 *   one after another from a shared queue;
 * - **direct**: `--clients` workers calling `runSession` on the same policy, with no server,
 *   socket or database.
 * The sessions are fixed: `buildTaskPool` cases from the test split (seeded), the same sampling
 * options and a per-session seed, so both paths ask for the same tokens (`outputs_identical_to_direct`
 * says whether they got them: llama.cpp's batched float sums may differ with batch companions) and the wall
 * times compare like for like. With `--rounds R` the two paths alternate ABBA so a drift in the
 * machine's load does not favour either.
 *
 * The clients share the machine with the server (their thread takes CPU time from the two cores),
 * so the overhead reported is an upper bound on the server's own.
 *
 * Metrics (all times in ms, measured where a user would see them):
 * | field                         | meaning                                                          |
 * |-------------------------------|------------------------------------------------------------------|
 * | `sessions_per_s`              | completed sessions / wall time of the server path                |
 * | `time_to_first_token_ms`      | client: `session:start` emitted → first `token` event            |
 * | `attempt_time_to_first_token_ms` | client: `attempt:start` → the attempt's first `token` (retries re-prefill the conversation) |
 * | `token_gap_ms`                | client: time between consecutive `token` events of one attempt   |
 * | `db_rows_per_s`               | rows in `sessions` + `turns` written during the server path (counted in the database) / its wall time |
 * | `overhead`                    | server wall time / direct wall time − 1, summed over rounds      |
 * | `overhead_cpu`                | the same ratio of the process's CPU time (steadier on a shared machine) |
 * | `mean_decode_batch`           | sequences generating together, sampled every 10 ms (`mean_waiting_for_prefill`: attempts waiting for a free sequence) |
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { Command, Option } from 'commander';
import { runtimeSettingsFromEnv } from '../src/cli/command-env.ts';
import { configureRuntime } from '../src/common/runtime-settings.ts';
import { type Database, openDatabase } from '../src/db/database.ts';
import { expandStoreName } from '../src/model/store/resolve-policy-spec.ts';
import { selectBackend } from '../src/model/tfjs/backend.ts';
import { resolveCheckpointDir } from '../src/policy/builtin-model.ts';
import { PolicyRegistry } from '../src/policy/policy-registry.ts';
import { servingPolicyLoader } from '../src/policy/serving-loader.ts';
import type { PolicySource } from '../src/policy/types.ts';
import { type RunningServer, startServer } from '../src/server/server.ts';
import { runSession } from '../src/session/session-runner.ts';
import { preloadTextModels } from '../src/text/preload.ts';
import {
  type BenchCase,
  buildCases,
  checkSessionOptions,
  LOCAL_POSTGRES_URL,
  machineReport,
  nonNegativeInt,
  positiveInt,
  runClients,
  SESSION_TIMEOUT_MS,
  sessionPayload,
  startClientsWorker,
} from './serve-harness.ts';
import {
  logToStderr,
  type QueueResult,
  runQueue,
  type SessionRecord,
  SessionRecorder,
} from './serve-session.ts';
import { round, summarize } from './stats.ts';

/** The service's targets: 64 concurrent sessions, no error, p99 token gap, server overhead. */
const TARGETS = { concurrent_sessions: 64, errors: 0, p99_token_gap_ms: 250, overhead: 0.15 };
const program = new Command('bench/serve.ts')
  .option('--clients <n>', 'concurrent socket.io clients (and direct workers)', positiveInt, 64)
  .option('--sessions <n>', 'sessions per path and round (default: 2 × clients)', positiveInt)
  .option('--max-attempts <n>', 'attempts per session (1 answer + retries with feedback)', positiveInt, 4)
  .option('--max-tokens <n>', 'tokens per attempt at most', positiveInt, 64)
  .option('--temperature <t>', 'sampling temperature (0: greedy)', Number, 0.7)
  .option('--seed <n>', 'seed for the task pool and the per-session sampling seeds', nonNegativeInt, 1)
  .option(
    '--rounds <n>',
    'direct/server rounds, alternated ABBA (direct first, then server first)',
    positiveInt,
    2,
  )
  .option(
    '--policy <spec>',
    'store name, GGUF file or checkpoint directory to serve',
    'smollm2-135m-instruct',
  )
  .addOption(
    new Option(
      '--db <kind>',
      'embedded: PGlite in a temp dir (what `npm start` uses); postgres: 127.0.0.1:5432/test ' +
        '(TEST_DATABASE_URL); url: DATABASE_URL. Each in a fresh schema, dropped afterwards ' +
        '(default: url when DATABASE_URL is set, else embedded)',
    ).choices(['embedded', 'postgres', 'url']),
  )
  .option('--json', 'print the result as JSON (the default output)')
  .parse();

const o = program.opts<{
  clients: number;
  sessions?: number;
  maxAttempts: number;
  maxTokens: number;
  temperature: number;
  seed: number;
  rounds: number;
  policy: string;
  db?: 'embedded' | 'postgres' | 'url';
}>();
checkSessionOptions(o);
const sessionsPerPhase = o.sessions ?? 2 * o.clients;

const log = logToStderr;

// ---------------------------------------------------------------------------------------------
// The two paths.

interface PhaseResult extends QueueResult {
  path: 'direct' | 'server';
  /**
   * CPU time the whole bench process spent (all threads: the clients' worker and, with the
   * embedded database, PGlite count too; an external PostgreSQL does not).
   */
  cpuMs: number;
  /** Rows added to sessions + turns (server path only). */
  dbRows?: number;
  /** The scheduler's rows, sampled every 10 ms (see `sampleScheduler`). */
  scheduler?: SchedulerSample;
}

interface SchedulerSample {
  /** Sequences generating (llama.cpp decodes them as one batch). */
  meanActive: number;
  /** Attempts waiting for a free sequence. */
  meanWaiting: number;
}

/**
 * Samples llama.cpp's busy and waiting sequences until the returned function is called. The two
 * paths ask for the same tokens, yet their wall times can differ because arrivals shape the
 * batches; these numbers show how full the batch ran.
 */
function sampleScheduler(policy: { load?: { busy: number; waiting: number } }): () => SchedulerSample {
  let samples = 0;
  let active = 0;
  let waiting = 0;
  const timer = setInterval(() => {
    const load = policy.load;
    if (!load) return;
    samples++;
    active += load.busy;
    waiting += load.waiting;
  }, 10);
  return () => {
    clearInterval(timer);
    return { meanActive: active / Math.max(1, samples), meanWaiting: waiting / Math.max(1, samples) };
  };
}

/** CPU milliseconds (user + system) of this process since `start`. */
function cpuMsSince(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1000;
}

async function runDirect(policy: PolicySource, cases: readonly BenchCase[]): Promise<PhaseResult> {
  const runOne = async (_worker: number, item: BenchCase): Promise<SessionRecord> => {
    const recorder = new SessionRecorder();
    try {
      for await (const part of runSession(
        {
          prompt: item.prompt,
          constraints: item.constraints,
          maxAttempts: o.maxAttempts,
          sampling: item.sampling,
        },
        { policy },
      )) {
        if (part.type === 'attempt:start') recorder.attemptStart();
        else if (part.type === 'token') recorder.token();
        else if (part.type === 'attempt:end') recorder.attemptEnd(part.text);
        else if (part.type === 'session:end') return recorder.end(part.ok, part.attempts);
        else if (part.type === 'error') return recorder.fail(`${part.code}: ${part.message}`);
      }
      return recorder.fail('the session ended without session:end');
    } catch (error) {
      return recorder.fail((error as Error).message);
    }
  };
  const cpu = process.cpuUsage();
  const result = await runQueue('direct', cases, o.clients, runOne, log);
  return { path: 'direct', ...result, cpuMs: cpuMsSince(cpu) };
}

async function countRows(db: Database): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(
    'SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM turns) AS n',
  );
  return Number(rows[0].n);
}

async function runServer(
  server: RunningServer,
  db: Database,
  clients: Worker,
  cases: readonly BenchCase[],
): Promise<PhaseResult> {
  const rowsBefore = await countRows(db);
  const cpu = process.cpuUsage();
  const result = await runClients(clients, {
    url: server.url,
    payloads: cases.map((item) => sessionPayload(item, o.maxAttempts)),
    clients: o.clients,
    timeoutMs: SESSION_TIMEOUT_MS,
  });
  const cpuMs = cpuMsSince(cpu);
  // Every turn is written before its attempt:end is emitted, so all rows are in by now.
  return { path: 'server', ...result, cpuMs, dbRows: (await countRows(db)) - rowsBefore };
}

// ---------------------------------------------------------------------------------------------
// The database the server writes to.

interface BenchDatabase {
  db: Database;
  description: string;
  close(): Promise<void>;
}

async function openBenchDatabase(): Promise<BenchDatabase> {
  const kind = o.db ?? (process.env.DATABASE_URL ? 'url' : 'embedded');
  const schema = `corgi_bench_${randomBytes(4).toString('hex')}`;
  if (kind === 'embedded') {
    // A throwaway data directory: the bench must not write into the user's ./data.
    const dataDir = mkdtempSync(join(os.tmpdir(), 'corgi-bench-pglite-'));
    // url '' (not undefined) so a DATABASE_URL in the environment is ignored, as --db asked.
    const db = await openDatabase({ url: '', dataDir, schema });
    return {
      db,
      description: `embedded PGlite over pglite-socket (what npm start uses), fresh data dir, schema ${schema}`,
      close: async () => {
        await db.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const url = kind === 'postgres' ? LOCAL_POSTGRES_URL : process.env.DATABASE_URL;
  if (!url) throw new Error('--db url: DATABASE_URL is not set');
  const db = await openDatabase({ url, schema });
  const host = new URL(url).host + new URL(url).pathname;
  return {
    db,
    description: `PostgreSQL at ${host} (${kind === 'url' ? 'DATABASE_URL' : 'local'}), fresh schema ${schema}`,
    close: async () => {
      await db.pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Reporting.

function describePhase(phases: PhaseResult[]) {
  const records = phases.flatMap((p) => p.records);
  const wallS = phases.reduce((sum, p) => sum + p.wallMs, 0) / 1000;
  const completed = records.filter((r) => r.error === undefined);
  const tokens = records.reduce((sum, r) => sum + r.tokens, 0);
  return {
    wall_s: round(wallS, 2),
    cpu_s: round(phases.reduce((sum, p) => sum + p.cpuMs, 0) / 1000, 2),
    sessions_completed: completed.length,
    errors: records.length - completed.length,
    sessions_per_s: round(completed.length / wallS),
    attempts: records.reduce((sum, r) => sum + r.attempts, 0),
    tokens,
    tokens_per_s: round(tokens / wallS, 1),
    success_rate: round(completed.filter((r) => r.ok).length / Math.max(1, completed.length)),
    peak_concurrent_sessions: Math.max(...phases.map((p) => p.peakConcurrent)),
    // Time-weighted over the phases (each phase's mean weighs by its wall time).
    mean_decode_batch: round(
      phases.reduce((sum, p) => sum + (p.scheduler?.meanActive ?? 0) * p.wallMs, 0) / (wallS * 1000),
      1,
    ),
    mean_waiting_for_prefill: round(
      phases.reduce((sum, p) => sum + (p.scheduler?.meanWaiting ?? 0) * p.wallMs, 0) / (wallS * 1000),
      1,
    ),
    time_to_first_token_ms: summarize(
      records.flatMap((r) => (r.firstTokenMs === null ? [] : [r.firstTokenMs])),
    ),
    attempt_time_to_first_token_ms: summarize(records.flatMap((r) => r.attemptFirstTokenMs)),
    token_gap_ms: summarize(records.flatMap((r) => r.gapsMs)),
  };
}

// ---------------------------------------------------------------------------------------------
// The run.

/**
 * The server's rate limits, lifted: every bench client shares one loopback IP and no key, where
 * 64 real users would each have their own allowance (30 sessions and 60 connections a minute per
 * IP would refuse the bench in seconds). Limits stay installed (very high, not 0) so each request
 * still pays for its counting, as in production.
 */
const UNLIMITED = 1_000_000;
const BENCH_RATE_LIMITS = {
  perIpPerMinute: UNLIMITED,
  perKeyPerMinute: UNLIMITED,
  sessionsPerMinute: UNLIMITED,
  socketConnectionsPerMinute: UNLIMITED,
};

async function main(): Promise<void> {
  configureRuntime(runtimeSettingsFromEnv());
  await selectBackend({ log });
  // IFEval's sentence splitter trains on first use: do it now, not inside a timed session.
  preloadTextModels();
  const dataDir = resolve(process.env.CORGI_DATA_DIR ?? 'data');
  const load = servingPolicyLoader({ cacheDir: join(dataDir, 'cache', 'gguf'), sequences: o.clients });
  const path = resolveCheckpointDir(expandStoreName(o.policy, { dataDir }));
  const local = await load(path, o.policy);
  const registry = new PolicyRegistry(local);
  const loadAtStart = os.loadavg()[0];

  // Warm-up sessions come from the same pool but are never timed: the first forward passes at
  // each batch size, the database's first connections and queries cost extra.
  const warmupCount = Math.min(o.clients, 8);
  log(`building ${sessionsPerPhase} cases (+${warmupCount} warm-up) from the test split, seed ${o.seed}`);
  const all = buildCases(sessionsPerPhase + warmupCount, {
    seed: o.seed,
    temperature: o.temperature,
    maxTokens: o.maxTokens,
  });
  const warmup = all.slice(0, warmupCount);
  const cases = all.slice(warmupCount);

  const direct: PhaseResult[] = [];
  const served: PhaseResult[] = [];
  const rounds: {
    round: number;
    order: string;
    direct_wall_s: number;
    server_wall_s: number;
    overhead: number;
    overhead_cpu: number;
  }[] = [];
  let database: BenchDatabase | undefined;
  let server: RunningServer | undefined;
  let clients: Worker | undefined;
  try {
    database = await openBenchDatabase();
    log(`database: ${database.description}`);
    server = await startServer({
      db: database.db,
      policy: registry,
      port: 0,
      host: '127.0.0.1',
      security: { rateLimits: BENCH_RATE_LIMITS },
    });
    clients = startClientsWorker();
    log(`server on ${server.url}, policy ${registry.current().version}`);

    log(`warm-up: ${warmupCount} sessions each way`);
    await runDirect(registry, warmup);
    await runServer(server, database.db, clients, warmup);

    for (let r = 0; r < o.rounds; r++) {
      // ABBA: direct first in even rounds, server first in odd ones.
      const order: ('direct' | 'server')[] = r % 2 === 0 ? ['direct', 'server'] : ['server', 'direct'];
      const results: Partial<Record<'direct' | 'server', PhaseResult>> = {};
      for (const path of order) {
        log(`round ${r + 1}/${o.rounds}: ${path}, ${cases.length} sessions, ${o.clients} concurrent`);
        const stopSampling = sampleScheduler(local);
        const result =
          path === 'direct'
            ? await runDirect(registry, cases)
            : await runServer(server, database.db, clients, cases);
        result.scheduler = stopSampling();
        results[path] = result;
        log(`round ${r + 1}/${o.rounds}: ${path} took ${(result.wallMs / 1000).toFixed(1)} s`);
      }
      direct.push(results.direct!);
      served.push(results.server!);
      rounds.push({
        round: r + 1,
        order: order.join(' → '),
        direct_wall_s: round(results.direct!.wallMs / 1000, 2),
        server_wall_s: round(results.server!.wallMs / 1000, 2),
        overhead: round(results.server!.wallMs / results.direct!.wallMs - 1),
        overhead_cpu: round(results.server!.cpuMs / results.direct!.cpuMs - 1),
      });
    }
  } finally {
    await clients?.terminate();
    await server?.close();
    await database?.close();
    await registry.close();
  }

  const serverStats = describePhase(served);
  const directStats = describePhase(direct);
  const dbRows = served.reduce((sum, p) => sum + (p.dbRows ?? 0), 0);
  const overhead = serverStats.wall_s / directStats.wall_s - 1;
  // Under a shared machine's load the wall time swings with the CPU share the bench gets; the CPU
  // time it spends does not, so it is reported beside the wall-time ratio.
  const overheadCpu = serverStats.cpu_s / directStats.cpu_s - 1;
  // Same session, same seed → same tokens on both paths; count the sessions where that held.
  const identical = served.reduce(
    (sum, phase, r) =>
      sum +
      phase.records.filter(
        (record, i) => record.texts.join('\u0000') === direct[r].records[i].texts.join('\u0000'),
      ).length,
    0,
  );
  const gapP99 = serverStats.token_gap_ms?.p99 ?? Number.NaN;

  const report = {
    bench: 'serve',
    ...machineReport(loadAtStart),
    policy: registry.current().version,
    policy_dir: o.policy,
    engine: 'llama.cpp',
    server:
      'startServer (express + socket.io + session service) in the bench process on 127.0.0.1; ' +
      'socket.io clients (one websocket each) in a worker thread',
    database: database.description,
    config: {
      clients: o.clients,
      sessions: sessionsPerPhase,
      rounds: o.rounds,
      max_attempts: o.maxAttempts,
      max_tokens: o.maxTokens,
      temperature: o.temperature,
      seed: o.seed,
      cases: `buildTaskPool({split: 'test', size: ${sessionsPerPhase + warmupCount}, seed: ${o.seed}}), first ${warmupCount} for warm-up`,
    },
    sessions_completed: serverStats.sessions_completed,
    errors: serverStats.errors,
    sessions_per_s: serverStats.sessions_per_s,
    time_to_first_token_ms: serverStats.time_to_first_token_ms,
    attempt_time_to_first_token_ms: serverStats.attempt_time_to_first_token_ms,
    token_gap_ms: serverStats.token_gap_ms,
    db_rows_written: dbRows,
    db_rows_per_s: round(dbRows / serverStats.wall_s, 1),
    overhead: round(overhead),
    overhead_definition:
      'server wall time / direct runSession wall time − 1, same sessions and concurrency, summed over rounds',
    overhead_cpu: round(overheadCpu),
    overhead_cpu_definition:
      'the same ratio of the CPU time the bench process spent (all threads, so the clients count against the server)',
    outputs_identical_to_direct: `${identical}/${served.length * cases.length}`,
    server_path: serverStats,
    direct_path: directStats,
    rounds,
    targets: {
      concurrent_sessions: {
        target: TARGETS.concurrent_sessions,
        value: serverStats.peak_concurrent_sessions,
        met: serverStats.peak_concurrent_sessions >= TARGETS.concurrent_sessions && serverStats.errors === 0,
      },
      errors: {
        target: TARGETS.errors,
        value: serverStats.errors,
        met: serverStats.errors === TARGETS.errors,
      },
      p99_token_gap_ms: {
        target: TARGETS.p99_token_gap_ms,
        value: gapP99,
        met: gapP99 < TARGETS.p99_token_gap_ms,
      },
      overhead: { target: TARGETS.overhead, value: round(overhead), met: overhead < TARGETS.overhead },
    },
    first_errors: served
      .flatMap((p) => p.records)
      .filter((r) => r.error !== undefined)
      .slice(0, 5)
      .map((r) => r.error),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

try {
  await main();
} catch (error) {
  // One clear line, not a stack through the wasm module's rethrowing rejection handler.
  log(`failed: ${(error as Error).message}`);
  process.exitCode = 1;
}
