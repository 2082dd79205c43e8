/**
 * Hot swap end to end: a real server serving a tiny real model to socket.io clients that run
 * multi-attempt sessions back to back, while new versions are promoted through the HTTP route, by
 * another database connection (NOTIFY on PostgreSQL; polling in the embedded mode), a corrupt
 * checkpoint is refused, and a rollback returns to the previous version. Every session must
 * complete, each attempt must report the version that generated it, and the versions that were
 * swapped out must have been disposed (their llama.cpp contexts freed).
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/logger.ts';
import { createApiKey } from '../../src/db/api-keys.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { activatePolicyVersion, getPolicyVersion } from '../../src/db/policy-versions.ts';
import { selectBackend } from '../../src/model/tfjs/backend.ts';
import { type DisposablePolicy, PolicyRegistry } from '../../src/policy/policy-registry.ts';
import { followPromotions, type PolicyFollower } from '../../src/promotion/follower.ts';
import { loadLivePolicy, promote } from '../../src/promotion/promote.ts';
import { loadLocalPolicy, type PolicyLoader, registerCheckpoint } from '../../src/promotion/versions.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { useDataDir } from '../support/data-dir.ts';
import { openTestDatabase, TEST_DATABASE_URL } from '../support/database.ts';

const root = mkdtempSync(join(tmpdir(), 'corgi-hot-swap-'));
const dirs: Record<string, string> = {};
useDataDir(join(root, 'data'));

/** A session as one client saw it. */
interface SessionLog {
  sessionId: string | null;
  /** `attempt:start` policyVersion of each attempt, in order. */
  versions: string[];
  /** `attempt:end` count. */
  ended: number;
  outcome: 'end' | 'error';
  error?: unknown;
  /** When the session finished (performance.now()). */
  finishedAt: number;
}

/**
 * One session over `socket`: a constraint the tiny random model never meets ("zebra"), so every
 * session runs all its attempts with feedback between them.
 */
function runOneSession(socket: Socket): Promise<SessionLog> {
  return new Promise((resolve) => {
    const log: SessionLog = { sessionId: null, versions: [], ended: 0, outcome: 'end', finishedAt: 0 };
    const events = ['attempt:start', 'attempt:end', 'session:end', 'session:error'] as const;
    const finish = (outcome: SessionLog['outcome'], error?: unknown) => {
      for (const event of events) socket.off(event);
      resolve({ ...log, outcome, error, finishedAt: performance.now() });
    };
    socket.on('attempt:start', (e: { policyVersion: string }) => log.versions.push(e.policyVersion));
    socket.on('attempt:end', () => log.ended++);
    socket.on('session:end', () => finish('end'));
    socket.on('session:error', (e: unknown) => finish('error', e));
    socket.emit(
      'session:start',
      {
        prompt: 'Write about an animal.',
        constraints: [{ id: 'keywords:existence', kwargs: { keywords: ['zebra'] } }],
        maxAttempts: 3,
        // Greedy: deterministic text. (A tiny random model sampling freely emits byte tokens such as
        // NUL, which PostgreSQL text cannot store — a logging problem outside hot swap.)
        sampling: { maxTokens: 6, temperature: 0 },
      },
      (ack: { sessionId?: string }) => {
        log.sessionId = ack.sessionId ?? null;
      },
    );
  });
}

/** `clients` sockets running sessions back to back until `stop()`; `done` resolves with every session. */
async function runContinuously(url: string, clients: number) {
  const sessions: SessionLog[] = [];
  let stopping = false;
  const sockets = await Promise.all(
    Array.from(
      { length: clients },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const socket = connect(url, { transports: ['websocket'], reconnection: false });
          socket.once('connect', () => resolve(socket));
          socket.once('connect_error', reject);
        }),
    ),
  );
  const loops = sockets.map(async (socket) => {
    while (!stopping) sessions.push(await runOneSession(socket));
    socket.close();
  });
  return {
    sessions,
    /** Sessions that finished after `since` with every attempt on `version`. */
    finishedOn: (version: string, since: number) =>
      sessions.filter(
        (s) => s.finishedAt > since && s.versions.length > 0 && s.versions.every((v) => v === version),
      ).length,
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
      return sessions;
    },
  };
}

/**
 * True if `versions` (one session's attempts) could have been served by a server that went live
 * with `timeline` in that order: a session moves forward through the timeline, never back.
 */
function followsTimeline(versions: string[], timeline: string[]): boolean {
  let at = 0;
  for (const version of versions) {
    while (at < timeline.length && timeline[at] !== version) at++;
    if (at === timeline.length) return false;
  }
  return true;
}

function corrupt(dir: string): void {
  const path = join(dir, 'model.safetensors');
  const bytes = readFileSync(path);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(path, bytes);
}

/** The machine has two cores and the suite runs two files at once: room for a slow minute. */
const LONG_TEST_MS = 240_000;
/** How long to wait for sessions to show a new version. */
const SWAP_WAIT_MS = 120_000;

const NO_RATE_LIMITS = {
  rateLimits: { perIpPerMinute: 0, perKeyPerMinute: 0, sessionsPerMinute: 0, socketConnectionsPerMinute: 0 },
};

beforeAll(async () => {
  await selectBackend({ preferred: 'cpu', log: () => {} });
  for (const [i, name] of ['v1', 'v2', 'v3', 'bad'].entries()) {
    const model = tinyModel(i + 1);
    dirs[name] = await saveTinyCheckpoint(model, root, name);
    model.dispose();
  }
  corrupt(dirs.bad);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** What a started server needs torn down, in order. */
interface Stack {
  db: Database;
  registry: PolicyRegistry;
  follower: PolicyFollower;
  server: RunningServer;
}

/** Versions a server loaded and has not disposed yet (one entry per load). */
const undisposed = new Set<string>();
let loads = 0;

/** `loadLocalPolicy`, recording each loaded policy until it is disposed. */
const trackedLoader: PolicyLoader = async (dir, version) => {
  const policy = await loadLocalPolicy(dir, version);
  const key = `${version}#${++loads}`;
  undisposed.add(key);
  const tracked: DisposablePolicy = {
    version: policy.version,
    generate: (messages, options) => policy.generate(messages, options),
    measurePrompt: policy.measurePrompt?.bind(policy),
    dispose: async () => {
      undisposed.delete(key);
      await policy.dispose?.();
    },
  };
  return tracked;
};

async function startStack(db: Database, pollMs: number): Promise<Stack> {
  const { policy } = await loadLivePolicy(db, {
    fallback: () => trackedLoader(dirs.v1, 'v1'),
    fallbackDir: dirs.v1,
    load: trackedLoader,
    logger: silentLogger,
  });
  const registry = new PolicyRegistry(policy);
  const follower = await followPromotions({
    db,
    registry,
    pollMs,
    load: trackedLoader,
    logger: silentLogger,
  });
  const server = await startServer({
    db,
    policy: registry,
    port: 0,
    promotions: follower,
    security: NO_RATE_LIMITS,
  });
  return { db, registry, follower, server };
}

async function stopStack(stack: Partial<Stack>): Promise<void> {
  await stack.server?.close();
  await stack.follower?.close();
  await stack.registry?.close();
  await stack.db?.close();
}

const post = (url: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('hot swap on PostgreSQL under continuous sessions', () => {
  let stack: Stack;
  let other: Database;

  beforeAll(async () => {
    // pollMs 0: a promotion from another connection can only arrive by NOTIFY.
    stack = await startStack(await openTestDatabase(), 0);
    other = await openDatabase({
      url: TEST_DATABASE_URL,
      schema: stack.db.schema,
      migrate: false,
      poolSize: 2,
    });
  });
  afterAll(async () => {
    await other?.close();
    await stopStack(stack ?? {});
  });

  it(
    'swaps through the HTTP route and NOTIFY, refuses a corrupt checkpoint, rolls back, and fails no session',
    async () => {
      const { url } = stack.server;
      expect([...undisposed]).toHaveLength(1);
      const load = await runContinuously(url, 4);
      const waitFor = (version: string, since: number) =>
        expect
          .poll(() => load.finishedOn(version, since), { timeout: SWAP_WAIT_MS, interval: 50 })
          .toBeGreaterThanOrEqual(2);

      await waitFor('v1', 0);

      // 1. The HTTP route: load, verify, record, swap here.
      let since = performance.now();
      const promoted = await post(url, '/v1/admin/promote', { checkpoint: dirs.v2 });
      expect(promoted.status).toBe(200);
      expect(await promoted.json()).toMatchObject({
        version: 'v2',
        previous: 'v1',
        changed: true,
        serving: 'v2',
      });
      await waitFor('v2', since);

      // 2. Another connection promotes (as a trainer or `corgi promote` would): NOTIFY reaches the server.
      since = performance.now();
      await promote(other, { checkpoint: dirs.v3 });
      await waitFor('v3', since);

      // 3. A corrupt checkpoint is refused with the reason; v3 keeps serving.
      const refused = await post(url, '/v1/admin/promote', { checkpoint: dirs.bad });
      expect(refused.status).toBe(422);
      const refusal = (await refused.json()) as { error: { code: string; message: string } };
      expect(refusal.error.code).toBe('invalid_checkpoint');
      expect(refusal.error.message).toMatch(
        /^checkpoint: refused "bad": checkpoint .*bad: model\.safetensors is corrupt: sha256 .*; the live version is unchanged$/,
      );
      since = performance.now();
      await waitFor('v3', since);
      expect(await (await fetch(`${url}/v1/policy`)).json()).toMatchObject({
        version: 'v3',
        status: 'promoted',
      });

      // 4. Rollback returns to v2; v3 is marked refused.
      since = performance.now();
      const back = await post(url, '/v1/admin/rollback', { reason: 'test rollback' });
      expect(back.status).toBe(200);
      expect(await back.json()).toMatchObject({
        version: 'v2',
        previous: 'v3',
        changed: true,
        serving: 'v2',
      });
      await waitFor('v2', since);
      expect(await getPolicyVersion(stack.db.pool, 'v3')).toMatchObject({
        status: 'refused',
        refusedReason: 'test rollback',
      });

      const sessions = await load.stop();

      // Every session completed with all its attempts; none failed.
      expect(sessions.filter((s) => s.outcome !== 'end')).toEqual([]);
      for (const s of sessions) expect(s.ended).toBe(s.versions.length);
      expect(sessions.length).toBeGreaterThanOrEqual(8);
      // Each session moved forward through the versions as they went live, never back.
      const timeline = ['v1', 'v2', 'v3', 'v2'];
      expect(sessions.filter((s) => !followsTimeline(s.versions, timeline)).map((s) => s.versions)).toEqual(
        [],
      );
      // Some session was in flight across a swap: its later attempts report the new version.
      const spanning = sessions.filter((s) => new Set(s.versions).size > 1);
      expect(spanning.length).toBeGreaterThan(0);
      // What the database logged per attempt matches what the client was told.
      const sample = spanning[0];
      const stored = (await (await fetch(`${url}/v1/sessions/${sample.sessionId}`)).json()) as {
        status: string;
        turns: { kind: string; policyVersion: string | null }[];
      };
      expect(stored.status).toBe('completed');
      expect(stored.turns.filter((t) => t.kind === 'attempt').map((t) => t.policyVersion)).toEqual(
        sample.versions,
      );

      // Only the live model remains loaded: v1, the first v2 and v3 were disposed once idle.
      await expect
        .poll(() => [...undisposed].map((key) => key.split('#')[0]), { timeout: 5_000 })
        .toEqual(['v2']);
    },
    LONG_TEST_MS,
  );

  it('validates requests, names the field, and keeps the routes behind the admin scope', async () => {
    const { url } = stack.server;
    const cases: [unknown, number, string, RegExp][] = [
      [{}, 400, 'invalid_request', /^body: expected \{"version": "\.\.\."\} or \{"checkpoint": "<dir>"\}$/],
      [{ version: 7 }, 400, 'invalid_request', /^version: /],
      [{ version: 'v2', extra: true }, 400, 'invalid_request', /extra/],
      [{ version: 'nope' }, 404, 'unknown_version', /^version: no policy version named "nope"$/],
      [
        { checkpoint: dirs.v3, version: 'v1' },
        409,
        'version_conflict',
        /^checkpoint: version "v1" is already registered/,
      ],
    ];
    for (const [body, status, code, message] of cases) {
      const response = await post(url, '/v1/admin/promote', body);
      expect(response.status, JSON.stringify(body)).toBe(status);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe(code);
      expect(error.message).toMatch(message);
    }

    const history = (await (await fetch(`${url}/v1/admin/policy-versions`)).json()) as {
      live: string;
      serving: string;
      versions: { version: string; status: string }[];
    };
    expect(history.live).toBe('v2');
    expect(history.serving).toBe('v2');
    expect(Object.fromEntries(history.versions.map((v) => [v.version, v.status]))).toEqual({
      v1: 'retired',
      v2: 'promoted',
      v3: 'refused',
    });

    const { key } = await createApiKey(stack.db.pool, { name: 'not an admin' });
    const forbidden = await post(
      url,
      '/v1/admin/promote',
      { version: 'v1' },
      { authorization: `Bearer ${key}` },
    );
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    expect((await (await fetch(`${url}/v1/policy`)).json()).version).toBe('v2');
  });
});

describe('hot swap on the embedded database (PGlite)', () => {
  let stack: Stack;

  beforeAll(async () => {
    // One connection: pglite-socket interleaves the protocol messages of concurrent connections when
    // the event loop stalls (loading a checkpoint does), binding one query's parameters to another's
    // statement ("bind message supplies 2 parameters, but prepared statement "" requires 14").
    stack = await startStack(
      await openDatabase({ url: '', dataDir: join(root, 'pglite'), poolSize: 1 }),
      200,
    );
  });
  afterAll(async () => {
    await stopStack(stack ?? {});
  });

  it(
    'swaps through the HTTP route and through polling, and fails no session',
    async () => {
      const { url } = stack.server;
      const load = await runContinuously(url, 2);
      const waitFor = (version: string, since: number) =>
        expect
          .poll(() => load.finishedOn(version, since), { timeout: SWAP_WAIT_MS, interval: 50 })
          .toBeGreaterThanOrEqual(2);
      await waitFor('v1', 0);

      let since = performance.now();
      const promoted = await post(url, '/v1/admin/promote', { checkpoint: dirs.v2 });
      expect(await promoted.json()).toMatchObject({ version: 'v2', previous: 'v1', serving: 'v2' });
      await waitFor('v2', since);

      // A promotion that sends no signal at all (a trainer in a worker thread writes the row): polling finds it.
      since = performance.now();
      await registerCheckpoint(stack.db, { dir: dirs.v3 });
      await activatePolicyVersion(stack.db.pool, 'v3');
      await waitFor('v3', since);

      // An in-process promotion (the same process's trainer) reaches the follower directly.
      since = performance.now();
      await promote(stack.db, 'v2');
      await waitFor('v2', since);

      const refused = await post(url, '/v1/admin/promote', { checkpoint: dirs.bad });
      expect(refused.status).toBe(422);

      const sessions = await load.stop();
      expect(sessions.filter((s) => s.outcome !== 'end')).toEqual([]);
      expect(
        sessions.filter((s) => !followsTimeline(s.versions, ['v1', 'v2', 'v3', 'v2'])).map((s) => s.versions),
      ).toEqual([]);
      expect((await (await fetch(`${url}/v1/policy`)).json()).version).toBe('v2');
    },
    LONG_TEST_MS,
  );
});
