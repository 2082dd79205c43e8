/**
 * `npm run bench:faults`: provokes each fault against a real server process (bench/fault-server.ts)
 * on the real PostgreSQL while socket.io clients stream sessions, and prints JSON: for each fault,
 * the attempts clients saw acknowledged, how many of those are stored, the lost ones, and the p99
 * gap between two tokens of one attempt during the fault (tokens come every 20 ms).
 *   costly_check   a 100 KB base64 /v1/check, then a 200 KB one with twenty paper constraints
 *                  that runs past the check budget
 *   hung_database  the TCP proxy between server and PostgreSQL stops forwarding for --hang-s seconds
 *   kill_9         SIGKILL the server mid-session, start another on the same database
 * Options: --clients N (default 4), --hang-s S (default 5). DATABASE_URL (default the tests'
 * postgres://postgres@127.0.0.1:5432/test) names the database; the bench works in a schema of its own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openDatabase } from '../src/db/database.ts';
import { ADVERSARIAL_SHAPES, base64Blob } from '../test/support/adversarial-texts.ts';
import { type Acknowledged, countStored, PausableProxy, SessionLoad } from '../test/support/fault-harness.ts';

const { values } = parseArgs({
  options: { clients: { type: 'string', default: '4' }, 'hang-s': { type: 'string', default: '5' } },
});
const clients = Number(values.clients);
const hangMs = Number(values['hang-s']) * 1000;
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const FAILING = [{ id: 'keywords:existence', kwargs: { keywords: ['zyzzyva'] } }];
const RUN_TS = fileURLToPath(new URL('../bin/run-ts.js', import.meta.url));
const SERVER = fileURLToPath(new URL('./fault-server.ts', import.meta.url));

const log = (message: string) => process.stderr.write(`[bench:faults] ${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number | null) => (value === null ? null : Math.round(value));

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: Math.round(performance.now() - started) };
}

function startServerProcess(url: string, schema: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [RUN_TS, SERVER, url, schema], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (chunk) => process.stderr.write(`[server] ${chunk}`));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /listening (\S+)/.exec(out);
      if (match) resolve({ child, url: match[1] });
    });
    child.once('exit', (code) => reject(new Error(`fault server exited (${code}) before listening`)));
  });
}

const schema = `corgi_bench_faults_${randomBytes(4).toString('hex')}`;
const direct = await openDatabase({ url: databaseUrl, schema, poolSize: 2 });
const target = new URL(databaseUrl);
const proxy = new PausableProxy({ host: target.hostname, port: Number(target.port || 5432) });
await proxy.open();
const proxied = new URL(databaseUrl);
proxied.host = `127.0.0.1:${proxy.port}`;
let server = await startServerProcess(proxied.toString(), schema);
const results: Record<string, unknown> = {};

async function summarize(load: SessionLoad, acknowledged: readonly Acknowledged[], from: number, to: number) {
  const stored = await countStored(direct.pool, acknowledged);
  return {
    acknowledged: stored.acknowledged,
    stored: stored.stored,
    lost: stored.lost.length,
    p99_token_gap_ms: round(load.p99GapMs(from, to)),
    tokens_during_fault: load.tokensBetween(from, to),
    socket_drops: load.disconnects.length,
  };
}

const post = (path: string, body: unknown) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

try {
  // 1. Costly checks while sessions stream.
  let load = new SessionLoad(server.url, { clients, constraints: FAILING, maxAttempts: 2 });
  await load.start();
  await sleep(3_000);
  const baselineP99 = load.p99GapMs();
  log('costly checks');
  let from = performance.now();
  const [blob, heavy, health] = await Promise.all([
    timed(() =>
      post('/v1/check', {
        response: base64Blob(100_000),
        constraints: [{ id: 'corgi:concepts', kwargs: { concepts: ['dog', 'park'] } }],
      }),
    ),
    timed(() =>
      post('/v1/check', {
        response: ADVERSARIAL_SHAPES['deep punctuation'](200_000),
        constraints: Array.from({ length: 20 }, (_, i) => ({
          id: 'corgi:concepts',
          kwargs: { concepts: [`word${i}`], pos: ['noun'] },
        })),
      }),
    ),
    sleep(300).then(() => timed(() => fetch(`${server.url}/healthz`))),
  ]);
  const longToken = await timed(() =>
    post('/v1/check', {
      response: 'a'.repeat(250_000),
      constraints: [{ id: 'corgi:concepts', kwargs: { concepts: ['dog', 'park'] } }],
    }),
  );
  await sleep(1_000);
  let to = performance.now();
  results.costly_check = {
    baseline_p99_token_gap_ms: round(baselineP99),
    base64_100kb: { status: blob.value.status, ms: blob.ms },
    a_x_250000: { status: longToken.value.status, ms: longToken.ms },
    over_budget: {
      status: heavy.value.status,
      code: ((await heavy.value.json()) as { error?: { code: string } }).error?.code ?? null,
      ms: heavy.ms,
    },
    healthz_ms: health.ms,
    ...(await summarize(load, load.acknowledged, from, to)),
  };

  // 2. A hung database.
  log(`hung database for ${hangMs / 1000} s`);
  from = performance.now();
  proxy.pause();
  await sleep(300);
  const hungHealth = await timed(() => fetch(`${server.url}/healthz`));
  const refused = await timed(() => post('/v1/sessions', { prompt: 'x', constraints: FAILING }));
  await sleep(hangMs - 300);
  proxy.resume();
  const resumed = performance.now();
  let recoveredMs: number | null = null;
  while (performance.now() - resumed < 30_000) {
    if ((await fetch(`${server.url}/healthz`)).status === 200) {
      recoveredMs = Math.round(performance.now() - resumed);
      break;
    }
    await sleep(100);
  }
  await sleep(2_000);
  to = performance.now();
  results.hung_database = {
    hang_s: hangMs / 1000,
    healthz: { status: hungHealth.value.status, ms: hungHealth.ms },
    new_session: {
      status: refused.value.status,
      code: ((await refused.value.json()) as { error?: { code: string } }).error?.code ?? null,
      retry_after: refused.value.headers.get('retry-after'),
      ms: refused.ms,
    },
    recovered_after_resume_ms: recoveredMs,
    ...(await summarize(load, load.acknowledged, from, to)),
  };
  await load.stop();

  // 3. kill -9 mid-session, then a new server on the same database.
  log('kill -9');
  load = new SessionLoad(server.url, { clients, constraints: FAILING, maxAttempts: 2 });
  await load.start();
  await sleep(2_000);
  from = performance.now();
  server.child.kill('SIGKILL');
  await new Promise((resolve) => server.child.once('exit', resolve));
  const restartStarted = performance.now();
  server = await startServerProcess(proxied.toString(), schema);
  const restartMs = Math.round(performance.now() - restartStarted);
  await load.stop();
  const afterKill = new SessionLoad(server.url, { clients, constraints: FAILING, maxAttempts: 2 });
  await afterKill.start();
  await sleep(3_000);
  to = performance.now();
  await afterKill.stop();
  const killed = await summarize(load, [...load.acknowledged, ...afterKill.acknowledged], from, to);
  const interrupted = await direct.pool.query(
    `SELECT count(*)::int AS n FROM ${schema}.sessions WHERE status = 'interrupted'`,
  );
  results.kill_9 = {
    ...killed,
    // Tokens and gaps on the new server's sessions (the killed one's clients dropped, by design).
    p99_token_gap_ms: round(afterKill.p99GapMs()),
    tokens_during_fault: afterKill.tokensBetween(from, to),
    restart_ms: restartMs,
    sessions_marked_interrupted: interrupted.rows[0].n,
  };
} finally {
  server.child.kill('SIGTERM');
  proxy.resume();
  await proxy.close();
  await direct.pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await direct.close();
}
console.log(JSON.stringify({ clients, ...results }, null, 2));
process.exit(0);
