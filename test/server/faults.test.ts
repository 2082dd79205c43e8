/**
 * Faults, each provoked for real against a running server:
 *
 * - The database goes away mid-session and comes back. The shared PostgreSQL cannot be stopped
 *   (other test files use it), so the server reaches it through a TCP proxy owned by this test;
 *   cutting the proxy closes its port and drops every open connection, which is what the pool sees
 *   when PostgreSQL stops (refused connects, terminated sockets). Restoring it reopens the port.
 * - A client disconnects mid-stream, over socket.io and over Server-Sent Events.
 */
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { CuttableProxy } from '../support/cuttable-proxy.ts';
import { openTestDatabase, TEST_DATABASE_URL } from '../support/database.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const FAILING = [{ id: 'keywords:existence', kwargs: { keywords: ['dog'] } }];
type Received = { event: string; data: Record<string, unknown> };
const EVENTS = ['attempt:start', 'token', 'attempt:end', 'feedback', 'session:end', 'session:error'];

function openSocket(url: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(url, { transports: ['websocket'], reconnection: false });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

const post = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('the database stops mid-session and comes back', () => {
  let direct: Database;
  let proxied: Database;
  let proxy: CuttableProxy;
  let server: RunningServer;
  let policy: ScriptedPolicy;

  beforeAll(async () => {
    // The schema is made and migrated directly; the server's pool goes through the proxy.
    direct = await openTestDatabase();
    const target = new URL(TEST_DATABASE_URL);
    proxy = new CuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.open();
    target.host = `127.0.0.1:${proxy.port}`;
    proxied = await openDatabase({
      url: target.toString(),
      schema: direct.schema,
      poolSize: 4,
      migrate: false,
    });
    // Never satisfies the constraint, 15 ms per word: every session runs all its attempts.
    policy = new ScriptedPolicy(['A cat sat on the warm mat all day long.'], 'scripted-fault', 15);
    server = await startServer({ db: proxied, policy: fixedPolicy(policy), port: 0 });
  });
  afterEach(async () => {
    await proxy.restore().catch(() => {}); // a failed test must not leave the store down for the next
  });
  afterAll(async () => {
    await server?.close();
    await proxied?.close();
    await proxy?.cut();
    await direct?.close();
  });

  it('keeps every acknowledged turn, refuses new sessions with 503 while down, and recovers with no restart', async () => {
    const socket = await openSocket(server.url);
    const events: Received[] = [];
    let cut: Promise<void> | undefined;
    const ended = new Promise<void>((resolve) => {
      for (const name of EVENTS) {
        socket.on(name, (data) => {
          events.push({ event: name, data });
          // The first attempt is acknowledged (stored before its event): now the database goes away.
          if (name === 'attempt:end' && !cut) cut = proxy.cut();
          if (name === 'session:end' || name === 'session:error') resolve();
        });
      }
    });
    const ack = await new Promise<{ sessionId: string }>((resolve) =>
      socket.emit(
        'session:start',
        { prompt: 'Describe a pet.', constraints: FAILING, maxAttempts: 4 },
        resolve,
      ),
    );
    await ended;
    await cut;
    const sessionId = ack.sessionId;

    // The client is told; it saw one attempt acknowledged, not four.
    expect(events.at(-1)).toEqual({
      event: 'session:error',
      data: { sessionId, code: 'storage_unavailable', message: expect.stringMatching(/unavailable/) },
    });
    const acknowledged = events.filter((e) => e.event === 'attempt:end');
    expect(acknowledged).toHaveLength(1);

    // While down: new sessions are refused with 503 storage_unavailable over HTTP and socket.io ...
    const refused = await post(`${server.url}/v1/sessions`, { prompt: 'x', constraints: FAILING });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect((await refused.json()).error.code).toBe('storage_unavailable');
    const refusedAck = await new Promise<{ error?: { code: string } }>((resolve) =>
      socket.emit('session:start', { prompt: 'x', constraints: FAILING }, resolve),
    );
    expect(refusedAck.error?.code).toBe('storage_unavailable');
    expect(socket.connected).toBe(true);
    // ... reads too, health says so, and checking (no database) goes on.
    expect((await fetch(`${server.url}/v1/sessions/${sessionId}`)).status).toBe(503);
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'degraded', database: 'unavailable' });
    const check = await post(`${server.url}/v1/check`, { response: 'a dog', constraints: FAILING });
    expect(check.status).toBe(200);

    // Back up: the same server process serves sessions again.
    await proxy.restore();
    const again = await post(`${server.url}/v1/sessions`, {
      prompt: 'x',
      constraints: FAILING,
      maxAttempts: 1,
    });
    expect(again.status).toBe(200);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    // Everything acknowledged is stored exactly; the row's end, refused while down, is written now.
    const turns = await direct.pool.query(
      'SELECT idx, role, kind, attempt, text FROM turns WHERE session_id = $1 ORDER BY idx',
      [sessionId],
    );
    expect(turns.rows).toEqual([
      expect.objectContaining({ idx: 0, role: 'user', kind: 'instruction' }),
      { idx: 1, role: 'assistant', kind: 'attempt', attempt: 1, text: acknowledged[0].data.text },
    ]);
    await expect
      .poll(
        async () =>
          (await direct.pool.query('SELECT status, error FROM sessions WHERE id = $1', [sessionId])).rows[0],
        { timeout: 15_000, interval: 250 },
      )
      .toEqual({ status: 'failed', error: expect.objectContaining({ code: 'storage_unavailable' }) });
    expect(server.sessions.deferredWrites.size).toBe(0);
    socket.close();
  });

  it('loses nothing when the database blinks between two writes: the session completes', async () => {
    const socket = await openSocket(server.url);
    const events: Received[] = [];
    let blink: Promise<void> | undefined;
    const ended = new Promise<void>((resolve) => {
      for (const name of EVENTS) {
        socket.on(name, (data) => {
          events.push({ event: name, data });
          // Attempt 2 is generating (no write in flight): every pooled connection dies, then the port reopens.
          if (name === 'attempt:start' && data.attempt === 2 && !blink) {
            blink = proxy.cut().then(() => proxy.restore());
          }
          if (name === 'session:end' || name === 'session:error') resolve();
        });
      }
    });
    const ack = await new Promise<{ sessionId: string }>((resolve) =>
      socket.emit(
        'session:start',
        { prompt: 'Describe a pet.', constraints: FAILING, maxAttempts: 3 },
        resolve,
      ),
    );
    await ended;
    await blink;
    socket.close();
    expect(blink).toBeDefined();
    expect(events.at(-1)).toMatchObject({ event: 'session:end', data: { attempts: 3, ok: false } });
    const { rows } = await direct.pool.query(
      `SELECT s.status, count(t.*)::int AS turns FROM sessions s JOIN turns t ON t.session_id = s.id
       WHERE s.id = $1 GROUP BY s.status`,
      [ack.sessionId],
    );
    expect(rows).toEqual([{ status: 'completed', turns: 6 }]);
  });
});

describe('a client disconnecting mid-stream', () => {
  let db: Database;
  let server: RunningServer;
  let policy: ScriptedPolicy;
  const WORDS = 200;

  beforeAll(async () => {
    db = await openTestDatabase();
    // 200 words at 10 ms each: two seconds of generation to interrupt.
    policy = new ScriptedPolicy(
      [Array.from({ length: WORDS }, (_, i) => `word${i}`).join(' ')],
      'scripted-long',
      10,
    );
    server = await startServer({ db, policy: fixedPolicy(policy), port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await db?.close();
  });

  /** Waits until the session is no longer running and returns its row and its assistant turns. */
  async function settled(sessionId: string) {
    await expect
      .poll(
        async () =>
          (await db.pool.query('SELECT status FROM sessions WHERE id = $1', [sessionId])).rows[0]?.status,
        { timeout: 10_000, interval: 100 },
      )
      .not.toBe('running');
    const session = (await db.pool.query('SELECT status, attempts FROM sessions WHERE id = $1', [sessionId]))
      .rows[0];
    const turns = await db.pool.query(
      `SELECT attempt, text, finish_reason, array_length(token_ids, 1) AS tokens FROM turns
       WHERE session_id = $1 AND role = 'assistant' ORDER BY idx`,
      [sessionId],
    );
    return { session, attempts: turns.rows };
  }

  it('over socket.io: generation stops and the partial attempt is stored as cancelled', async () => {
    const callsBefore = policy.calls.length;
    const socket = await openSocket(server.url);
    let tokens = 0;
    const sessionId = await new Promise<string>((resolve) => {
      socket.on('token', () => {
        if (++tokens === 5) socket.disconnect();
      });
      socket.emit(
        'session:start',
        { prompt: 'Count.', constraints: FAILING, maxAttempts: 4 },
        (ack: { sessionId: string }) => resolve(ack.sessionId),
      );
    });
    const { session, attempts } = await settled(sessionId);
    expect(session).toEqual({ status: 'cancelled', attempts: 1 });
    expect(attempts).toHaveLength(1);
    expect(attempts[0].finish_reason).toBe('cancelled');
    // Generation stopped soon after the disconnect, not at the end of the answer.
    expect(attempts[0].tokens).toBeGreaterThanOrEqual(5);
    expect(attempts[0].tokens).toBeLessThan(WORDS / 2);
    expect(`${attempts[0].text}`.startsWith('word0 word1 word2 word3 word4')).toBe(true);
    // No further attempt was started.
    expect(policy.calls.length - callsBefore).toBe(1);
    expect(server.sessions.activeCount).toBe(0);
  });

  it('over Server-Sent Events: the same', async () => {
    const callsBefore = policy.calls.length;
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ prompt: 'Count.', constraints: FAILING, maxAttempts: 4 }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while ((text.match(/event: token/g) ?? []).length < 5) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    controller.abort();
    await reader.cancel().catch(() => {});
    const sessionId = JSON.parse(/event: session:start\ndata: (.*)\n/.exec(text)![1]).sessionId as string;

    const { session, attempts } = await settled(sessionId);
    expect(session).toEqual({ status: 'cancelled', attempts: 1 });
    expect(attempts).toEqual([expect.objectContaining({ attempt: 1, finish_reason: 'cancelled' })]);
    expect(attempts[0].tokens).toBeLessThan(WORDS / 2);
    expect(policy.calls.length - callsBefore).toBe(1);
    // The server is fine afterwards.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
