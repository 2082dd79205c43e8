/**
 * End to end: a real socket.io client and HTTP client against a real server, sessions stored
 * in the real PostgreSQL, the model replaced by a scripted policy.
 */
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { openTestDatabase } from '../support/database.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const CONSTRAINTS = [
  { id: 'punctuation:no_comma' },
  { id: 'keywords:existence', kwargs: { keywords: ['dog'] } },
];
/** Fails both constraints, then one, then passes. */
const ANSWERS = ['A cat, asleep.', 'A dog, asleep.', 'A dog asleep in the sun.'];

let db: Database;
let server: RunningServer;
let policy: ScriptedPolicy;

beforeAll(async () => {
  db = await openTestDatabase();
  policy = new ScriptedPolicy(ANSWERS, 'scripted-v1', 2);
  server = await startServer({ db, policy: fixedPolicy(policy), port: 0 });
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

function openSocket(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.url, { transports: ['websocket'], reconnection: false });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

type Received = { event: string; data: Record<string, unknown> };

/** Starts a session over a socket and collects every event until it ends. */
function runOverSocket(
  socket: Socket,
  payload: unknown,
): Promise<{ ack: Record<string, unknown>; events: Received[] }> {
  return new Promise((resolve) => {
    const events: Received[] = [];
    let ack: Record<string, unknown> = {};
    const record = (event: string) => (data: Record<string, unknown>) => {
      events.push({ event, data });
      if (event === 'session:end' || event === 'session:error') {
        socket.offAny();
        for (const name of [
          'attempt:start',
          'token',
          'attempt:end',
          'feedback',
          'session:end',
          'session:error',
        ]) {
          socket.off(name);
        }
        resolve({ ack, events });
      }
    };
    for (const name of [
      'attempt:start',
      'token',
      'attempt:end',
      'feedback',
      'session:end',
      'session:error',
    ]) {
      socket.on(name, record(name));
    }
    socket.emit('session:start', payload, (response: Record<string, unknown>) => {
      ack = response;
    });
  });
}

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${server.url}${path}`, {
    ...init,
    headers: { 'content-type': 'application/json', ...init.headers },
  });

describe('a session over socket.io', () => {
  it('streams tokens and verdicts through several attempts with feedback, and stores every turn', async () => {
    const socket = await openSocket();
    const { ack, events } = await runOverSocket(socket, {
      prompt: 'Describe a pet.',
      constraints: CONSTRAINTS,
    });
    socket.close();
    const sessionId = ack.sessionId as string;
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(events.every((e) => e.data.sessionId === sessionId)).toBe(true);

    const ends = events.filter((e) => e.event === 'attempt:end');
    expect(ends.map((e) => (e.data.check as { ok: boolean }).ok)).toEqual([false, false, true]);
    expect(events.filter((e) => e.event === 'attempt:start').map((e) => e.data.policyVersion)).toEqual([
      'scripted-v1',
      'scripted-v1',
      'scripted-v1',
    ]);
    for (const end of ends) {
      const tokens = events.filter((e) => e.event === 'token' && e.data.attempt === end.data.attempt);
      expect(tokens.length).toBeGreaterThan(1);
      expect(tokens.map((t) => t.data.text).join('')).toBe(end.data.text);
    }
    const feedback = events.filter((e) => e.event === 'feedback').map((e) => e.data.text as string);
    expect(feedback).toHaveLength(2);
    expect(feedback[0]).toMatch(/^Feedback: .*comma.* Please try again\.$/i);
    expect(events.at(-1)).toEqual({
      event: 'session:end',
      data: { sessionId, ok: true, bestScore: 1, attempts: 3 },
    });

    // Every turn is readable over HTTP ...
    const stored = await (await api(`/v1/sessions/${sessionId}`)).json();
    expect(stored).toMatchObject({
      id: sessionId,
      status: 'completed',
      ok: true,
      attempts: 3,
      prompt: 'Describe a pet.',
    });
    expect(stored.turns.map((t: { role: string; kind: string }) => `${t.role}:${t.kind}`)).toEqual([
      'user:instruction',
      'assistant:attempt',
      'user:feedback',
      'assistant:attempt',
      'user:feedback',
      'assistant:attempt',
    ]);
    expect(stored.turns[2].text).toBe(feedback[0]);
    // ... and in PostgreSQL itself.
    const { rows } = await db.pool.query(
      `SELECT attempt, text, policy_version, (check_result->>'ok')::boolean AS ok, array_length(token_ids, 1) AS n
       FROM turns WHERE session_id = $1 AND role = 'assistant' ORDER BY idx`,
      [sessionId],
    );
    expect(rows.map((r) => [r.attempt, r.text, r.policy_version, r.ok])).toEqual([
      [1, ANSWERS[0], 'scripted-v1', false],
      [2, ANSWERS[1], 'scripted-v1', false],
      [3, ANSWERS[2], 'scripted-v1', true],
    ]);
    expect(rows.every((r) => r.n > 0)).toBe(true);
  });

  it('answers a malformed payload with session:error and keeps the connection up', async () => {
    const socket = await openSocket();
    const bad = [
      'not an object',
      { prompt: 'x' },
      { prompt: 'x', constraints: [] },
      { prompt: 'x', constraints: [{ id: 'no:such' }] },
      { prompt: 'x', constraints: CONSTRAINTS, maxAttempts: 0 },
      { prompt: 'x', constraints: CONSTRAINTS, sampling: { temperature: 'hot' } },
    ];
    for (const payload of bad) {
      const { ack, events } = await runOverSocket(socket, payload);
      expect(events).toHaveLength(1);
      expect(events[0].event).toBe('session:error');
      expect((ack.error as { message: string }).message).toMatch(/^[\w.[\]]+: /);
    }
    const errors: unknown[] = [];
    socket.on('session:error', (e) => errors.push(e));
    socket.emit('session:cancel', { sessionId: 'nope' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(errors).toEqual([
      expect.objectContaining({ code: 'invalid_request', message: expect.stringMatching(/^sessionId: /) }),
    ]);
    expect(socket.connected).toBe(true);
    const { events } = await runOverSocket(socket, {
      prompt: 'ok',
      constraints: [{ id: 'punctuation:no_comma' }],
    });
    expect(events.at(-1)?.event).toBe('session:end');
    socket.close();
  });

  it('stops generating when the client disconnects and records the session as cancelled', async () => {
    const slow = new ScriptedPolicy(['word '.repeat(200)], 'slow', 5);
    const slowServer = await startServer({ db, policy: fixedPolicy(slow), port: 0 });
    try {
      const socket = connect(slowServer.url, { transports: ['websocket'], reconnection: false });
      const sessionId = await new Promise<string>((resolve) => {
        socket.on('token', () => socket.disconnect());
        socket.emit(
          'session:start',
          { prompt: 'x', constraints: CONSTRAINTS },
          (ack: { sessionId: string }) => resolve(ack.sessionId),
        );
      });
      await expect
        .poll(async () => (await api(`/v1/sessions/${sessionId}`).then((r) => r.json())).status, {
          timeout: 5000,
        })
        .toBe('cancelled');
      expect(slow.calls).toHaveLength(1);
    } finally {
      await slowServer.close();
    }
  });
});

describe('sessions over HTTP', () => {
  it('returns the whole session as JSON', async () => {
    const response = await api('/v1/sessions', {
      method: 'POST',
      body: JSON.stringify({ prompt: 'Describe a pet.', constraints: CONSTRAINTS, maxAttempts: 2 }),
    });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toMatchObject({ ok: false, attempts: 2, bestScore: 0.5 });
    expect(body.turns[0].feedback).toMatch(/^Feedback: /);
  });

  it('streams Server-Sent Events with the same events as the socket', async () => {
    const response = await api('/v1/sessions', {
      method: 'POST',
      headers: { accept: 'text/event-stream' },
      body: JSON.stringify({ prompt: 'Describe a pet.', constraints: CONSTRAINTS }),
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await response.text();
    const frames = text
      .trim()
      .split('\n\n')
      .map((frame) => {
        const [eventLine, dataLine] = frame.split('\n');
        return { event: eventLine.replace('event: ', ''), data: JSON.parse(dataLine.replace('data: ', '')) };
      });
    expect(frames[0].event).toBe('session:start');
    const sessionId = frames[0].data.sessionId;
    expect(frames.filter((f) => f.event === 'attempt:end')).toHaveLength(3);
    expect(frames.filter((f) => f.event === 'token').length).toBeGreaterThan(3);
    expect(frames.at(-1)).toEqual({
      event: 'session:end',
      data: { sessionId, ok: true, bestScore: 1, attempts: 3 },
    });
    const stored = await (await api(`/v1/sessions/${sessionId}`)).json();
    expect(stored.turns).toHaveLength(6);
  });

  it('runs a session from constraints alone: they render the instruction, the prompt is stored as none', async () => {
    const response = await api('/v1/sessions', {
      method: 'POST',
      body: JSON.stringify({ constraints: CONSTRAINTS, maxAttempts: 1 }),
    });
    expect(response.status).toBe(200);
    const { sessionId } = await response.json();
    const stored = await (await api(`/v1/sessions/${sessionId}`)).json();
    expect(stored.prompt).toBeNull();
    expect(stored.turns[0].kind).toBe('instruction');
    expect(stored.turns[0].text).toMatch(/comma/i);
    expect(stored.turns[0].text).toMatch(/dog/);
  });

  it.each([
    [
      '/v1/sessions',
      'text/plain',
      /^content-type: Content-Type must be application\/json, got "text\/plain"$/,
    ],
    [
      '/v1/check',
      'application/x-www-form-urlencoded',
      /^content-type: Content-Type must be application\/json/,
    ],
    ['/v1/check', undefined, /^content-type: Content-Type must be application\/json, got none$/],
  ])('POST %s with a body sent as %s → 415 naming the header', async (path, type, message) => {
    const body = new TextEncoder().encode(JSON.stringify({ response: 'x', constraints: CONSTRAINTS }));
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: type ? { 'content-type': type } : {},
      body,
    });
    expect(response.status).toBe(415);
    const { error } = await response.json();
    expect(error).toEqual({ code: 'unsupported_media_type', message: expect.stringMatching(message) });
  });

  it.each(['/v1/sessions', '/v1/check'])('POST %s without a body → 400 saying what to send', async (path) => {
    const response = await fetch(`${server.url}${path}`, { method: 'POST' });
    expect(response.status).toBe(400);
    const { error } = await response.json();
    expect(error.code).toBe('invalid_request');
    expect(error.message).toBe(
      'body: required: a JSON object (over HTTP, sent with "Content-Type: application/json")',
    );
  });

  it('takes a rating for a session', async () => {
    const { sessionId } = await (
      await api('/v1/sessions', {
        method: 'POST',
        body: JSON.stringify({ prompt: 'x', constraints: CONSTRAINTS }),
      })
    ).json();
    const response = await api(`/v1/sessions/${sessionId}/rating`, {
      method: 'POST',
      body: JSON.stringify({ rating: 4 }),
    });
    expect(response.status).toBe(201);
    const { rows } = await db.pool.query('SELECT rating FROM ratings WHERE session_id = $1', [sessionId]);
    expect(rows).toEqual([{ rating: 4 }]);
  });

  it.each([
    ['POST', '/v1/sessions', '{"prompt": ', 400, 'invalid_json', /^body: /],
    [
      'POST',
      '/v1/sessions',
      JSON.stringify({ prompt: 'x', constraints: CONSTRAINTS, extra: 1 }),
      400,
      'invalid_request',
      /^body: .*extra/,
    ],
    [
      'POST',
      '/v1/sessions',
      JSON.stringify({ prompt: 'x', constraints: CONSTRAINTS, maxAttempts: 11 }),
      400,
      'invalid_request',
      /^maxAttempts: /,
    ],
    [
      'POST',
      '/v1/sessions',
      JSON.stringify({ prompt: 'x', constraints: CONSTRAINTS, sampling: { topP: 0 } }),
      400,
      'invalid_request',
      /^sampling\.topP: /,
    ],
    [
      'POST',
      '/v1/sessions',
      JSON.stringify({ prompt: 'x'.repeat(9000), constraints: CONSTRAINTS }),
      400,
      'invalid_request',
      /^prompt: /,
    ],
    [
      'POST',
      '/v1/sessions',
      JSON.stringify({ prompt: 'x', constraints: [{ id: 'keywords:existence', kwargs: { keywords: 3 } }] }),
      400,
      'invalid_constraint',
      /^constraints\[0\]\.kwargs\.keywords: /,
    ],
    [
      'POST',
      '/v1/check',
      JSON.stringify({ response: 'x' }),
      400,
      'invalid_request',
      /^constraints: required/,
    ],
    [
      'POST',
      '/v1/check',
      JSON.stringify({ constraints: CONSTRAINTS }),
      400,
      'invalid_request',
      /^response: /,
    ],
    [
      'POST',
      '/v1/check',
      JSON.stringify({ response: 'x', constraints: CONSTRAINTS, extra: 1 }),
      400,
      'invalid_request',
      /^extra: unknown field/,
    ],
    ['POST', '/v1/check', '[1]', 400, 'invalid_request', /^request: expected a JSON object/],
    [
      'POST',
      '/v1/check',
      JSON.stringify({ response: 'x', constraints: [{ id: 'no:such' }] }),
      400,
      'invalid_constraint',
      /^constraints\[0\]\.id: /,
    ],
    ['GET', '/v1/sessions/not-a-uuid', undefined, 400, 'invalid_request', /^id: /],
    ['GET', '/v1/sessions/00000000-0000-4000-8000-000000000000', undefined, 404, 'not_found', /^id: /],
    [
      'POST',
      '/v1/sessions/00000000-0000-4000-8000-000000000000/rating',
      JSON.stringify({ rating: 9 }),
      400,
      'invalid_request',
      /^rating: /,
    ],
    ['GET', '/v1/nothing-here', undefined, 404, 'not_found', /^path: /],
  ])('%s %s %s → %i %s', async (method, path, body, status, code, message) => {
    const response = await api(path, { method, body });
    expect(response.status).toBe(status);
    const { error } = await response.json();
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it('checks, lists checkers, reports health, the live policy and metrics', async () => {
    const check = await (
      await api('/v1/check', {
        method: 'POST',
        body: JSON.stringify({ response: 'a, b', constraints: [{ id: 'punctuation:no_comma' }] }),
      })
    ).json();
    expect(check).toMatchObject({ ok: false, score: 0 });
    const { checkers } = await (await api('/v1/checkers')).json();
    expect(checkers).toHaveLength(30);
    expect(checkers[0]).toEqual(
      expect.objectContaining({
        id: 'keywords:existence',
        kwargsSchema: expect.objectContaining({ type: 'object' }),
      }),
    );
    expect(await (await api('/healthz')).json()).toEqual({
      status: 'ok',
      database: 'ok',
      policy: 'scripted-v1',
    });
    expect(await (await api('/v1/policy')).json()).toEqual({ version: 'scripted-v1' });
    const metrics = await (await api('/metrics')).text();
    for (const name of [
      'corgi_sessions_started_total',
      'corgi_attempts_total',
      'corgi_time_to_first_token_seconds_bucket',
      'corgi_check_latency_seconds_bucket',
      'corgi_db_write_latency_seconds_bucket',
      'corgi_attempt_tokens_per_second_bucket',
      'corgi_policy_info{version="scripted-v1"} 1',
      'corgi_process_resident_memory_bytes',
      'corgi_nodejs_heap_size_used_bytes',
    ]) {
      expect(metrics).toContain(name);
    }
    // prom-client's default names already start with process_ / nodejs_: no prefix doubles them.
    expect(metrics).not.toMatch(/corgi_process_(process|nodejs)_/);
  });
});
