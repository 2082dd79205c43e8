/**
 * `npm run bench:load`: a real `corgi serve` process under sustained load. Prints JSON on
 * stdout; progress goes to stderr.
 *
 *   npm run bench:load -- [--seconds 60] [--clients 200] [--seed 1] [--check-connections 8]
 *                         [--warmup-seconds 10] [--max-attempts 2] [--max-tokens 16] [--temperature 0.7]
 *                         [--policy models/base] [--db embedded|postgres|url]
 *
 * The server is `corgi serve` on 127.0.0.1 (a child process, as deployed) with the rate limits off
 * (`--rate-limit 0 --rate-limit-ip 0 --session-rate-limit 0 --socket-rate-limit 0`: every bench client
 * shares one IP and no key). For `--seconds`, at the same time:
 * - `--clients` socket.io clients (a worker thread, bench/serve-clients.ts, one websocket each) each
 *   run sessions back to back, cycling through fixed cases (test split, `--seed`); no session starts
 *   after the deadline and the ones in flight finish;
 * - autocannon sends `POST /v1/check` (16 fixed bodies, the cases' constraints) over
 *   `--check-connections` keep-alive connections.
 * A warm-up of `--warmup-seconds` of the same load comes first (first forward passes at each batch
 * size, the database's first connections, the JIT), so the memory baseline is taken at full load's
 * high-water marks and what grows afterwards is what the run kept. Memory is the server's own, read
 * from its `GET /metrics` right after a full garbage collection: the bench starts it with
 * `--expose-gc` and a one-line preload that collects on SIGUSR2 (nothing in the product).
 *
 * | field                         | meaning                                                          |
 * |-------------------------------|------------------------------------------------------------------|
 * | `sessions_completed`          | sessions that reached `session:end` in the measured run           |
 * | `wall_s`                      | first session start → last session end (`--seconds`, then the sessions in flight finishing) |
 * | `errors`                      | session errors (refusals, `session:error`, disconnects, timeouts) + check errors, timeouts and non-2xx |
 * | `session_ms`                  | client: `session:start` emitted → `session:end`, completed sessions |
 * | `time_to_first_token_ms`      | client: `session:start` emitted → first `token`                    |
 * | `check_ms`                    | autocannon: request sent → response, every `POST /v1/check`        |
 * | `server_memory`               | RSS, V8 heap used and total, external (wasm, buffers), before (after warm-up) and after the run, each after a GC; `growth` = after / before − 1 |
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { Command, Option } from 'commander';
import pg from 'pg';
import {
  buildCases,
  checkSessionOptions,
  LOCAL_POSTGRES_URL,
  machineReport,
  NO_RATE_LIMITS,
  nonNegativeInt,
  positiveInt,
  runClients,
  SESSION_TIMEOUT_MS,
  type ServeProcess,
  sessionPayload,
  startClientsWorker,
  startServe,
  stderrTail,
  stopGently,
} from './serve-harness.ts';
import { benchLog, type QueueResult } from './serve-session.ts';
import { round, summarize } from './stats.ts';

/** The targets under sustained load: no error, bounded memory growth. */
const TARGETS = { errors: 0, rss_growth: 0.1 };
/** Collect garbage on SIGUSR2 (with --expose-gc), so memory is read after a full GC. */
const GC_PRELOAD = `data:text/javascript,${encodeURIComponent(
  "process.on('SIGUSR2', () => globalThis.gc?.());",
)}`;

const o = new Command('bench/load.ts')
  .option('--seconds <s>', 'how long the measured load runs', positiveInt, 60)
  .option(
    '--clients <n>',
    'concurrent socket.io clients, each running sessions back to back',
    positiveInt,
    200,
  )
  .option('--seed <n>', 'seed for the cases and their sampling seeds', nonNegativeInt, 1)
  .option('--check-connections <n>', 'autocannon connections sending POST /v1/check', positiveInt, 8)
  .option('--warmup-seconds <s>', 'the same load before the measured run (not reported)', nonNegativeInt, 10)
  .option('--max-attempts <n>', 'attempts per session', positiveInt, 2)
  .option('--max-tokens <n>', 'tokens per attempt at most', positiveInt, 16)
  .option('--temperature <t>', 'sampling temperature (0: greedy)', Number, 0.7)
  .option('--policy <dir>', 'checkpoint the server serves', 'models/base')
  .addOption(
    new Option(
      '--db <kind>',
      'embedded: PGlite in a temp data dir (what `npm start` uses); postgres: a fresh database on ' +
        '127.0.0.1:5432 (TEST_DATABASE_URL), dropped afterwards; url: DATABASE_URL as it is ' +
        '(default: url when DATABASE_URL is set, else embedded)',
    ).choices(['embedded', 'postgres', 'url']),
  )
  .option('--json', 'print the result as JSON (the default output)')
  .parse()
  .opts<{
    seconds: number;
    clients: number;
    seed: number;
    checkConnections: number;
    warmupSeconds: number;
    maxAttempts: number;
    maxTokens: number;
    temperature: number;
    policy: string;
    db?: 'embedded' | 'postgres' | 'url';
  }>();
checkSessionOptions(o);

const log = benchLog('bench:load');

// ---------------------------------------------------------------------------------------------
// autocannon (no type declarations ship with it): the part of its API used here.

interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}
interface AutocannonResult {
  latency: Percentiles & { totalCount: number };
  requests: { total: number; sent: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(event: 'response', listener: () => void): void;
}
type Autocannon = (options: Record<string, unknown>) => AutocannonInstance;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

function checkRequests(seed: number) {
  const responses = [
    'The dog ran across the park and stopped by the old oak tree.',
    'Here is my answer.\n\n* first point\n* second point\n\nP.S. thanks for reading',
    'A quiet morning, a cup of tea, and the sound of rain on the window.',
    'THE PLAN IS SIMPLE: WE WALK TO THE STATION AND TAKE THE FIRST TRAIN.',
  ];
  return buildCases(16, { seed, temperature: 0, maxTokens: 1 }).map((item, i) => ({
    method: 'POST',
    path: '/v1/check',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ response: responses[i % responses.length], constraints: item.specs }),
  }));
}

// ---------------------------------------------------------------------------------------------
// The server's memory.

interface Memory {
  rss_mb: number;
  heap_used_mb: number;
  heap_total_mb: number;
  /** ArrayBuffers outside the V8 heap: the wasm backend's memory, PGlite's, buffers. */
  external_mb: number;
}

/** The server's memory after a full GC, from its Prometheus metrics. */
async function serverMemory(server: ServeProcess): Promise<Memory> {
  server.child.kill('SIGUSR2');
  await new Promise((done) => setTimeout(done, 1_000));
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const metric = (name: string) => {
    const match = new RegExp(`^corgi_${name} (\\S+)$`, 'm').exec(text);
    if (!match) throw new Error(`GET /metrics: no corgi_${name}`);
    return Math.round((Number(match[1]) / 2 ** 20) * 10) / 10;
  };
  return {
    rss_mb: metric('process_resident_memory_bytes'),
    heap_used_mb: metric('nodejs_heap_size_used_bytes'),
    heap_total_mb: metric('nodejs_heap_size_total_bytes'),
    external_mb: metric('nodejs_external_memory_bytes'),
  };
}

// ---------------------------------------------------------------------------------------------
// The database the server writes to.

interface BenchDatabase {
  env: NodeJS.ProcessEnv;
  description: string;
  close(): Promise<void>;
}

async function benchDatabase(): Promise<BenchDatabase> {
  const kind = o.db ?? (process.env.DATABASE_URL ? 'url' : 'embedded');
  // The server keeps its data dir (checkpoints, the embedded database) out of the user's ./data.
  const dataDir = mkdtempSync(join(os.tmpdir(), 'corgi-bench-load-'));
  const removeDataDir = async () => rmSync(dataDir, { recursive: true, force: true });
  const base: NodeJS.ProcessEnv = { ...process.env, CORGI_DATA_DIR: dataDir };
  if (kind === 'embedded') {
    delete base.DATABASE_URL;
    return {
      env: base,
      description: 'embedded PGlite (what npm start uses), fresh data dir',
      close: removeDataDir,
    };
  }
  if (kind === 'url') {
    if (!process.env.DATABASE_URL) throw new Error('--db url: DATABASE_URL is not set');
    const { host, pathname } = new URL(process.env.DATABASE_URL);
    return {
      env: base,
      description: `PostgreSQL at ${host}${pathname} (DATABASE_URL)`,
      close: removeDataDir,
    };
  }
  // `corgi serve` uses a database's public schema: give it a database of its own.
  const name = `corgi_bench_load_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: LOCAL_POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(LOCAL_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    env: { ...base, DATABASE_URL: url.toString() },
    description: `PostgreSQL at ${url.host}, fresh database ${name}, dropped afterwards`,
    close: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
      await removeDataDir();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The load.

interface LoadResult {
  sessions: QueueResult;
  checks: AutocannonResult;
}

async function runLoad(
  server: ServeProcess,
  clients: Worker,
  payloads: unknown[],
  seconds: number,
  label: string,
): Promise<LoadResult> {
  const sessions = runClients(clients, {
    url: server.url,
    payloads,
    clients: o.clients,
    timeoutMs: SESSION_TIMEOUT_MS,
    durationMs: seconds * 1000,
    bench: `bench:load ${label}`,
  });
  let responses = 0;
  const checks = autocannon({
    url: server.url,
    connections: o.checkConnections,
    duration: seconds,
    requests: checkRequests(o.seed),
  });
  checks.on('response', () => {
    responses++;
  });
  const progress = setInterval(() => log(`${label}: ${responses} checks answered`), 5_000);
  checks.then(
    () => clearInterval(progress),
    () => clearInterval(progress),
  );
  try {
    // The clients connect first (all of them, before their clock starts); autocannon starts at once.
    const [sessionResult, checkResult] = await Promise.all([sessions, checks]);
    return { sessions: sessionResult, checks: checkResult };
  } finally {
    clearInterval(progress);
  }
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg()[0];
  const cases = buildCases(Math.max(256, o.clients * 2), {
    seed: o.seed,
    temperature: o.temperature,
    maxTokens: o.maxTokens,
  });
  const payloads = cases.map((item) => sessionPayload(item, o.maxAttempts));
  let database: BenchDatabase | undefined;
  let server: ServeProcess | undefined;
  let clients: Worker | undefined;
  let measured: LoadResult;
  let before: Memory;
  let after: Memory;
  try {
    database = await benchDatabase();
    log(`database: ${database.description}`);
    log(`starting corgi serve --policy ${o.policy} (rate limits off)`);
    server = await startServe(['--policy', resolve(o.policy), ...NO_RATE_LIMITS], database.env, {
      nodeArgs: ['--expose-gc', '--import', GC_PRELOAD],
    });
    log(`server on ${server.url} (pid ${server.child.pid})`);
    clients = startClientsWorker();
    if (o.warmupSeconds > 0) {
      log(`warm-up: ${o.warmupSeconds} s, ${o.clients} clients + ${o.checkConnections} check connections`);
      await runLoad(server, clients, payloads, o.warmupSeconds, 'warm-up');
    }
    before = await serverMemory(server);
    log(`server memory before: ${JSON.stringify(before)}`);
    log(`load: ${o.seconds} s, ${o.clients} clients + ${o.checkConnections} check connections`);
    measured = await runLoad(server, clients, payloads, o.seconds, 'load');
    after = await serverMemory(server);
    log(`server memory after: ${JSON.stringify(after)}`);
  } catch (error) {
    if (server) log(`server stderr (tail):\n${stderrTail(server)}`);
    throw error;
  } finally {
    await clients?.terminate();
    await stopGently(server);
    await database?.close();
  }

  const records = measured.sessions.records;
  const completed = records.filter((r) => r.error === undefined);
  const sessionErrors = records.length - completed.length;
  const { checks } = measured;
  const checkErrors = checks.errors + checks.timeouts + checks.non2xx;
  const errors = sessionErrors + checkErrors;
  const growth = (key: keyof Memory) => round(after[key] / before[key] - 1);
  const rssGrowth = growth('rss_mb');

  const report = {
    bench: 'load',
    ...machineReport(loadAtStart),
    server: `corgi serve --policy ${o.policy} on 127.0.0.1, rate limits off (a child process)`,
    database: database.description,
    config: {
      seconds: o.seconds,
      warmup_seconds: o.warmupSeconds,
      clients: o.clients,
      check_connections: o.checkConnections,
      max_attempts: o.maxAttempts,
      max_tokens: o.maxTokens,
      temperature: o.temperature,
      seed: o.seed,
      cases: `buildTaskPool({split: 'test', size: ${cases.length}, seed: ${o.seed}}), cycled`,
    },
    sessions_completed: completed.length,
    sessions_per_s: round(completed.length / (measured.sessions.wallMs / 1000)),
    wall_s: round(measured.sessions.wallMs / 1000, 1),
    peak_concurrent_sessions: measured.sessions.peakConcurrent,
    checks_completed: checks['2xx'],
    checks_per_s: round(checks.requests.average, 1),
    errors,
    error_breakdown: {
      sessions: sessionErrors,
      check_errors: checks.errors,
      check_timeouts: checks.timeouts,
      check_non_2xx: checks.non2xx,
    },
    session_ms: summarize(completed.map((r) => r.durationMs)),
    time_to_first_token_ms: summarize(
      completed.flatMap((r) => (r.firstTokenMs === null ? [] : [r.firstTokenMs])),
    ),
    check_ms: {
      n: checks.latency.totalCount,
      p50: checks.latency.p50,
      p90: checks.latency.p90,
      p99: checks.latency.p99,
      max: checks.latency.max,
      mean: round(checks.latency.mean, 1),
    },
    server_memory: {
      before,
      after,
      growth: {
        rss: rssGrowth,
        heap_used: growth('heap_used_mb'),
        heap_total: growth('heap_total_mb'),
        external: growth('external_mb'),
      },
    },
    targets: {
      errors: { target: TARGETS.errors, value: errors, met: errors === TARGETS.errors },
      rss_growth: { target: TARGETS.rss_growth, value: rssGrowth, met: rssGrowth <= TARGETS.rss_growth },
    },
    first_errors: records
      .filter((r) => r.error !== undefined)
      .slice(0, 5)
      .map((r) => r.error),
    check_status_codes: Object.fromEntries(
      Object.entries(checks.statusCodeStats).map(([code, { count }]) => [code, count]),
    ),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

try {
  await main();
} catch (error) {
  log(`failed: ${(error as Error).message}`);
  process.exitCode = 1;
}
