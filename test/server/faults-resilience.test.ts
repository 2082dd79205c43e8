/**
 * No single request or a hung database stalls the service, provoked for real against a running
 * server with socket.io clients streaming sessions all the while:
 *
 * - A costly `/v1/check` (a 100 KB base64 blob, and a 200 KB response with twenty paper
 *   constraints that runs past the check budget): the other clients' token gaps stay under
 *   `GAP_BOUND_MS`, no socket drops, `/healthz` answers, and the over-budget check fails with 422
 *   `check_timeout` while its worker is replaced.
 * - PostgreSQL hangs (a TCP proxy between the server and PostgreSQL stops forwarding; connections
 *   stay open, nothing answers): `/healthz` answers 503 with the reason within 2 s, new sessions
 *   are refused with `storage_unavailable` + Retry-After, and once the proxy forwards again the
 *   same process serves sessions; every acknowledged attempt is stored.
 * (kill -9 and restart: faults-server-killed.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { ADVERSARIAL_SHAPES, base64Blob } from '../support/adversarial-texts.ts';
import { openTestDatabase, TEST_DATABASE_URL } from '../support/database.ts';
import { countStored, PausableProxy, SessionLoad, waitUntil } from '../support/fault-harness.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

/** Tokens come every 20 ms; a gap over this means the event loop stalled. */
const GAP_BOUND_MS = 300;
const FAILING = [{ id: 'keywords:existence', kwargs: { keywords: ['zyzzyva'] } }];
const ANSWER = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
const NO_RATE_LIMITS = { rateLimits: { sessionsPerMinute: 0, perIpPerMinute: 0, perKeyPerMinute: 0 } };

const post = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

describe('a costly check while sessions stream', () => {
  let db: Database;
  let server: RunningServer;
  let load: SessionLoad;

  beforeAll(async () => {
    db = await openTestDatabase();
    server = await startServer({
      db,
      policy: fixedPolicy(new ScriptedPolicy([ANSWER], 'scripted-stream', 20)),
      port: 0,
      security: NO_RATE_LIMITS,
      checkPool: { threads: 2, timeoutMs: 3_000 },
    });
    load = new SessionLoad(server.url, { clients: 4, constraints: FAILING, maxAttempts: 2 });
    await load.start();
    await waitUntil(() => load.gaps.length > 20, 60_000, 'tokens streaming');
  });
  afterAll(async () => {
    await load?.stop();
    await server?.close();
    await db?.close();
  });

  it('answers the 100 KB base64 check and stops the over-budget one; other clients keep streaming', async () => {
    const from = performance.now();
    const blob = timed(() =>
      post(`${server.url}/v1/check`, {
        response: base64Blob(100_000),
        constraints: [{ id: 'corgi:concepts', kwargs: { concepts: ['dog', 'park'] } }],
      }),
    );
    const heavy = timed(() =>
      post(`${server.url}/v1/check`, {
        response: ADVERSARIAL_SHAPES['deep punctuation'](200_000),
        constraints: Array.from({ length: 20 }, (_, i) => ({
          id: 'corgi:concepts',
          kwargs: { concepts: [`word${i}`], pos: ['noun'] },
        })),
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const health = await timed(() => fetch(`${server.url}/healthz`));
    expect(health.value.status).toBe(200);
    expect(health.ms).toBeLessThan(2_000);

    const blobAnswer = await blob;
    expect(blobAnswer.value.status).toBe(200);
    expect(await blobAnswer.value.json()).toMatchObject({ ok: false, score: 0 });
    const heavyAnswer = await heavy;
    expect(heavyAnswer.value.status).toBe(422);
    expect((await heavyAnswer.value.json()).error).toMatchObject({
      code: 'check_timeout',
      message: expect.stringMatching(/^response: checking took longer than the 3000 ms budget/),
    });
    const to = performance.now();
    expect(server.checkPool!.timeouts).toBe(1);

    expect(load.tokensBetween(from, to)).toBeGreaterThan(20);
    expect(load.p99GapMs(from, to)).toBeLessThan(GAP_BOUND_MS);
    expect(load.disconnects).toEqual([]);
    // The replaced worker checks again.
    const after = await post(`${server.url}/v1/check`, { response: 'a dog', constraints: FAILING });
    expect(after.status).toBe(200);
    await load.stop();
    const stored = await countStored(db.pool, load.acknowledged);
    expect(stored.acknowledged).toBeGreaterThan(0);
    expect(stored.lost).toEqual([]);
  });
});

describe('PostgreSQL hangs', () => {
  let direct: Database;
  let proxied: Database;
  let proxy: PausableProxy;
  let server: RunningServer;
  let load: SessionLoad;

  beforeAll(async () => {
    direct = await openTestDatabase();
    const target = new URL(TEST_DATABASE_URL);
    proxy = new PausableProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.open();
    target.host = `127.0.0.1:${proxy.port}`;
    proxied = await openDatabase({
      url: target.toString(),
      schema: direct.schema,
      poolSize: 4,
      migrate: false,
      // Short deadlines so the test sees each one fire.
      timeouts: { connectMs: 1_000, queryMs: 2_000, statementMs: 1_500 },
    });
    server = await startServer({
      db: proxied,
      policy: fixedPolicy(new ScriptedPolicy([ANSWER], 'scripted-hang', 20)),
      port: 0,
      security: NO_RATE_LIMITS,
      clusterAdapter: false,
      checkPool: { threads: 1 },
    });
    load = new SessionLoad(server.url, { clients: 3, constraints: FAILING, maxAttempts: 2 });
    await load.start();
    await waitUntil(() => load.acknowledged.length > 2, 60_000, 'attempts acknowledged');
  });
  afterAll(async () => {
    proxy?.resume();
    await load?.stop();
    await server?.close();
    await proxied?.close();
    await proxy?.close();
    await direct?.close();
  });

  it('answers /healthz with 503 within 2 s, refuses sessions with storage_unavailable, recovers, loses nothing', async () => {
    proxy.pause();
    const health = await timed(() => fetch(`${server.url}/healthz`));
    expect(health.ms).toBeLessThan(2_000);
    expect(health.value.status).toBe(503);
    expect(await health.value.json()).toMatchObject({
      status: 'degraded',
      database: 'unavailable',
      reason: expect.stringMatching(/within 1500 ms|timeout/),
    });
    const refused = await timed(() =>
      post(`${server.url}/v1/sessions`, { prompt: 'x', constraints: FAILING }),
    );
    expect(refused.ms).toBeLessThan(2_000);
    expect(refused.value.status).toBe(503);
    expect(refused.value.headers.get('retry-after')).toBe('5');
    expect((await refused.value.json()).error.code).toBe('storage_unavailable');
    // Checks need no database, and the event loop is free.
    const check = await timed(() =>
      post(`${server.url}/v1/check`, { response: 'a dog', constraints: FAILING }),
    );
    expect(check.value.status).toBe(200);
    expect(check.ms).toBeLessThan(2_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(load.refusals).toContain('storage_unavailable');

    proxy.resume();
    const ackedBefore = load.acknowledged.length;
    await expect
      .poll(async () => (await fetch(`${server.url}/healthz`)).status, { timeout: 15_000, interval: 250 })
      .toBe(200);
    const again = await post(`${server.url}/v1/sessions`, {
      prompt: 'x',
      constraints: FAILING,
      maxAttempts: 1,
    });
    expect(again.status).toBe(200);
    await expect.poll(() => load.acknowledged.length, { timeout: 30_000 }).toBeGreaterThan(ackedBefore + 2);
    await load.stop();
    expect(load.disconnects).toEqual([]);
    const stored = await countStored(direct.pool, load.acknowledged);
    expect(stored.lost).toEqual([]);
  });
});
