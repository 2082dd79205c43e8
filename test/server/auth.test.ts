/**
 * API keys, tenant isolation, the admin scope, headers, CORS, body limits and rate limits, against
 * a real server (real HTTP, real socket.io client) on the real PostgreSQL with a scripted policy.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, listApiKeys, revokeApiKey } from '../../src/db/api-keys.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { Authenticator } from '../../src/server/auth.ts';
import { type RunningServer, type ServerOptions, startServer } from '../../src/server/server.ts';
import { openTestDatabase } from '../support/database.ts';
import { runCorgi } from '../support/run-corgi.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const CONSTRAINTS = [{ id: 'punctuation:no_comma' }];
const SESSION = { prompt: 'Describe a pet.', constraints: CONSTRAINTS, maxAttempts: 1 };

let db: Database;
const servers: RunningServer[] = [];

beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => {
  for (const server of servers) await server.close();
  await db?.close();
});

async function serve(options: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const server = await startServer({
    db,
    policy: fixedPolicy(new ScriptedPolicy(['A dog asleep in the sun.'], 'scripted-auth', 1)),
    port: 0,
    ...options,
  });
  servers.push(server);
  return server;
}

/** fetch against `base` with an optional key and JSON body. */
function call(
  base: string,
  path: string,
  init: { method?: string; key?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...init.headers };
  if (init.key) headers.authorization = `Bearer ${init.key}`;
  return fetch(`${base}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    body:
      init.body === undefined
        ? undefined
        : typeof init.body === 'string'
          ? init.body
          : JSON.stringify(init.body),
  });
}

/** A raw HTTP request, for headers fetch will not let us set (Host). */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function openSocket(url: string, options: Record<string, unknown> = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(url, { transports: ['websocket'], reconnection: false, ...options });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
}

/** Starts a session over the socket and resolves with its ack and final event. */
function socketSession(socket: Socket, payload: unknown = SESSION) {
  return new Promise<{
    ack: Record<string, unknown>;
    last: { event: string; data: Record<string, unknown> };
  }>((resolve) => {
    let ack: Record<string, unknown> = {};
    const finish = (event: string) => (data: Record<string, unknown>) => {
      socket.off('session:end');
      socket.off('session:error');
      resolve({ ack, last: { event, data } });
    };
    socket.on('session:end', finish('session:end'));
    socket.on('session:error', finish('session:error'));
    socket.emit('session:start', payload, (response: Record<string, unknown>) => {
      ack = response;
    });
  });
}

describe('a server bound beyond loopback', () => {
  let server: RunningServer;
  let base: string;
  let alice: { id: string; key: string };
  let bob: { id: string; key: string };
  let admin: { id: string; key: string };

  beforeAll(async () => {
    // 0.0.0.0 is beyond loopback: keys are required with no flag at all. The tests reach it on 127.0.0.1.
    server = await serve({ host: '0.0.0.0', security: { authCacheTtlMs: 300 } });
    base = `http://127.0.0.1:${server.port}`;
    alice = await createApiKey(db.pool, { name: 'alice' });
    bob = await createApiKey(db.pool, { name: 'bob' });
    admin = await createApiKey(db.pool, { name: 'ops', admin: true });
  });

  it.each([
    ['POST', '/v1/check', { response: 'x', constraints: CONSTRAINTS }],
    ['GET', '/v1/checkers', undefined],
    ['GET', '/v1/policy', undefined],
    ['GET', '/v1/sessions', undefined],
    ['POST', '/v1/sessions', SESSION],
    ['GET', '/v1/stats', undefined],
    ['GET', '/metrics', undefined],
  ])(
    'refuses %s %s without a key (401, WWW-Authenticate) and serves it with one',
    async (method, path, body) => {
      const without = await call(base, path, { method, body });
      expect(without.status).toBe(401);
      expect(without.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await without.json()).error).toEqual({
        code: 'unauthorized',
        message: expect.stringMatching(/^authorization: an API key is required/),
      });
      const withKey = await call(base, path, { method, body, key: alice.key });
      expect(withKey.status).toBe(200);
    },
  );

  it('refuses unknown keys and malformed Authorization headers, naming the header', async () => {
    for (const headers of [
      { authorization: 'Bearer corgi_not-a-real-key' },
      { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      { authorization: 'Bearer' },
    ]) {
      const response = await call(base, '/v1/policy', { headers });
      expect(response.status).toBe(401);
      expect((await response.json()).error.message).toMatch(/^authorization: /);
    }
  });

  it('keeps /healthz and the front end open (load balancers and browsers fetch them without keys)', async () => {
    expect((await call(base, '/healthz')).status).toBe(200);
    expect((await call(base, '/')).status).toBe(200);
  });

  it('shows sessions, turns and ratings only to the key that made them', async () => {
    const made = await call(base, '/v1/sessions', { body: SESSION, key: alice.key });
    const { sessionId } = await made.json();
    expect((await call(base, `/v1/sessions/${sessionId}`, { key: alice.key })).status).toBe(200);

    const peek = await call(base, `/v1/sessions/${sessionId}`, { key: bob.key });
    expect(peek.status).toBe(404);
    expect((await peek.json()).error.message).toBe(`id: no session ${sessionId}`);
    // Even the admin scope does not read other keys' sessions.
    expect((await call(base, `/v1/sessions/${sessionId}`, { key: admin.key })).status).toBe(404);
    const rate = await call(base, `/v1/sessions/${sessionId}/rating`, { body: { rating: 1 }, key: bob.key });
    expect(rate.status).toBe(404);
    const mine = await (await call(base, '/v1/sessions', { key: alice.key })).json();
    const theirs = await (await call(base, '/v1/sessions', { key: bob.key })).json();
    expect(mine.sessions.map((s: { id: string }) => s.id)).toContain(sessionId);
    expect(theirs.sessions.map((s: { id: string }) => s.id)).not.toContain(sessionId);

    expect(
      (await call(base, `/v1/sessions/${sessionId}/rating`, { body: { rating: 5 }, key: alice.key })).status,
    ).toBe(201);
    const { rows } = await db.pool.query('SELECT api_key_id FROM ratings WHERE session_id = $1', [sessionId]);
    expect(rows).toEqual([{ api_key_id: alice.id }]);
    const stored = await db.pool.query('SELECT api_key_id FROM sessions WHERE id = $1', [sessionId]);
    expect(stored.rows[0].api_key_id).toBe(alice.id);
  });

  it('authenticates socket.io with auth.token, and a socket cannot cancel another key’s session', async () => {
    await expect(openSocket(base)).rejects.toMatchObject({
      message: expect.stringMatching(/^authorization: an API key is required/),
      data: { code: 'unauthorized' },
    });
    await expect(openSocket(base, { auth: { token: 'corgi_wrong' } })).rejects.toMatchObject({
      data: { code: 'unauthorized' },
    });
    await expect(openSocket(base, { auth: { token: 42 } })).rejects.toMatchObject({
      message: expect.stringMatching(/^auth\.token: /),
    });

    const slowServer = await serve({
      host: '0.0.0.0',
      policy: fixedPolicy(new ScriptedPolicy(['word '.repeat(100)], 'slow', 10)),
    });
    const slowBase = `http://127.0.0.1:${slowServer.port}`;
    const aliceSocket = await openSocket(slowBase, { auth: { token: alice.key } });
    const bobSocket = await openSocket(slowBase, { auth: { token: bob.key } });
    const sessionId = await new Promise<string>((resolve) =>
      aliceSocket.emit(
        'session:start',
        { ...SESSION, constraints: [{ id: 'keywords:existence', kwargs: { keywords: ['cat'] } }] },
        (ack: { sessionId: string }) => resolve(ack.sessionId),
      ),
    );
    const refused = new Promise((resolve) => bobSocket.once('session:error', resolve));
    bobSocket.emit('session:cancel', { sessionId });
    expect(await refused).toMatchObject({ sessionId, code: 'not_found' });
    // Alice's session was not cancelled by Bob: it runs to its end.
    const end = await new Promise<Record<string, unknown>>((resolve) =>
      aliceSocket.once('session:end', resolve),
    );
    expect(end).toMatchObject({ sessionId, attempts: 1 });
    const { rows } = await db.pool.query('SELECT status, api_key_id FROM sessions WHERE id = $1', [
      sessionId,
    ]);
    expect(rows[0]).toEqual({ status: 'completed', api_key_id: alice.id });
    aliceSocket.close();
    bobSocket.close();
  });

  it('keeps the admin routes for admin keys and stops a revoked key at once on this server', async () => {
    const forbidden = await call(base, '/v1/admin/keys', { key: alice.key });
    expect(forbidden.status).toBe(403);
    expect((await forbidden.json()).error).toMatchObject({
      code: 'forbidden',
      message: expect.stringMatching(/^authorization: .*admin/),
    });

    // The promotion routes (routes/admin.ts) sit behind the same scope.
    const promote = await call(base, '/v1/admin/promote', { body: { version: 'v2' }, key: alice.key });
    expect(promote.status).toBe(403);
    const promoted = await call(base, '/v1/admin/promote', { body: { version: 'v2' }, key: admin.key });
    // Past the gate: this test server has a fixed policy, so the route itself declines.
    expect((await promoted.json()).error.code).toBe('promotion_unavailable');

    const created = await call(base, '/v1/admin/keys', { body: { name: 'temp' }, key: admin.key });
    expect(created.status).toBe(201);
    const temp = await created.json();
    expect(temp.key).toMatch(/^corgi_[\w-]{43}$/);
    const listed = await (await call(base, '/v1/admin/keys', { key: admin.key })).json();
    const row = listed.keys.find((k: { id: string }) => k.id === temp.id);
    expect(row).toMatchObject({ name: 'temp', admin: false, revokedAt: null });
    expect(JSON.stringify(listed)).not.toContain(temp.key);
    // Only the hash is stored.
    const stored = await db.pool.query('SELECT key_hash FROM api_keys WHERE id = $1', [temp.id]);
    expect(stored.rows[0].key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(stored.rows[0].key_hash).not.toContain(temp.key);

    expect((await call(base, '/v1/policy', { key: temp.key })).status).toBe(200);
    expect((await call(base, `/v1/admin/keys/${temp.id}`, { method: 'DELETE', key: admin.key })).status).toBe(
      200,
    );
    expect((await call(base, '/v1/policy', { key: temp.key })).status).toBe(401);
    expect((await call(base, `/v1/admin/keys/${temp.id}`, { method: 'DELETE', key: admin.key })).status).toBe(
      404,
    );
    const badId = await call(base, '/v1/admin/keys/nope', { method: 'DELETE', key: admin.key });
    expect((await badId.json()).error.message).toMatch(/^id: /);
  });

  it('stops a key revoked by another process (the CLI) within the cache TTL, sockets included', async () => {
    const carol = await createApiKey(db.pool, { name: 'carol' });
    expect((await call(base, '/v1/policy', { key: carol.key })).status).toBe(200);
    const socket = await openSocket(base, { auth: { token: carol.key } });
    expect((await socketSession(socket)).last.event).toBe('session:end');

    expect(await revokeApiKey(db.pool, carol.id)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 400)); // the server's cache TTL is 300 ms
    expect((await call(base, '/v1/policy', { key: carol.key })).status).toBe(401);
    const disconnected = new Promise((resolve) => socket.once('disconnect', resolve));
    const { ack, last } = await socketSession(socket);
    expect(ack).toEqual({
      error: { code: 'unauthorized', message: 'authorization: unknown or revoked API key' },
    });
    expect(last.event).toBe('session:error');
    await disconnected;
    expect((await listApiKeys(db.pool)).find((k) => k.id === carol.id)?.revokedAt).not.toBeNull();
  });
});

describe('a server on loopback (the development default)', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await serve();
  });

  it('lets anonymous callers in, with the admin scope, but refuses a bad key instead of ignoring it', async () => {
    expect((await call(server.url, '/v1/policy')).status).toBe(200);
    expect((await call(server.url, '/v1/admin/keys')).status).toBe(200);
    const bad = await call(server.url, '/v1/policy', { key: 'corgi_typo' });
    expect(bad.status).toBe(401);
    const { key, id } = await createApiKey(db.pool, { name: 'dev' });
    const made = await (await call(server.url, '/v1/sessions', { body: SESSION, key })).json();
    // A keyed session is the key's, even on loopback: anonymous callers do not see it.
    expect((await call(server.url, `/v1/sessions/${made.sessionId}`)).status).toBe(404);
    expect((await call(server.url, `/v1/sessions/${made.sessionId}`, { key })).status).toBe(200);
    const userKey = await call(server.url, '/v1/admin/keys', { key });
    expect(userKey.status).toBe(403);
    await revokeApiKey(db.pool, id);
  });

  it('refuses anonymous calls whose Host is not loopback (DNS rebinding)', async () => {
    const rebound = await rawGet(`${server.url}/v1/policy`, { host: `attacker.example:${server.port}` });
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body).error).toMatchObject({
      code: 'forbidden',
      message: expect.stringMatching(/^host: /),
    });
    expect((await rawGet(`${server.url}/v1/policy`, { host: `localhost:${server.port}` })).status).toBe(200);
  });

  it('requires keys on loopback with --require-auth (behind a local reverse proxy)', async () => {
    const strict = await serve({ security: { auth: 'required' } });
    expect((await call(strict.url, '/v1/policy')).status).toBe(401);
  });
});

describe('anonymous callers from another machine (--no-auth)', () => {
  it('are let in but never get the admin scope', async () => {
    const auth = new Authenticator({ pool: db.pool, mode: 'optional' });
    expect(
      await auth.resolve({ token: null, remoteAddress: '10.1.2.3', hostHeader: 'corgi.lan:3000' }),
    ).toEqual({
      apiKeyId: null,
      name: null,
      admin: false,
    });
    expect(
      await auth.resolve({ token: null, remoteAddress: '::ffff:127.0.0.1', hostHeader: '[::1]:3000' }),
    ).toMatchObject({ admin: true });
  });
});

describe('headers, origins and body size', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await serve({ security: { corsOrigins: ['https://app.example.com'] } });
  });

  it('sends security headers', async () => {
    const response = await call(server.url, '/');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(response.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(response.headers.get('content-security-policy')).not.toMatch(/upgrade-insecure-requests/);
    expect(response.headers.get('x-powered-by')).toBeNull();
  });

  it('answers CORS for allow-listed origins only, and refuses foreign browser origins', async () => {
    const preflight = await fetch(`${server.url}/v1/check`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization/);

    const allowed = await call(server.url, '/v1/policy', { headers: { origin: 'https://app.example.com' } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');

    const foreign = await call(server.url, '/v1/policy', { headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    expect((await foreign.json()).error).toMatchObject({
      code: 'forbidden_origin',
      message: expect.stringMatching(/^origin: https:\/\/evil\.example /),
    });
    // The page's own origin (the web UI) needs no allow-listing.
    expect((await call(server.url, '/v1/policy', { headers: { origin: server.url } })).status).toBe(200);

    await expect(
      openSocket(server.url, { extraHeaders: { origin: 'https://evil.example' } }),
    ).rejects.toMatchObject({ data: { code: 'forbidden_origin' } });
    const own = await openSocket(server.url, { extraHeaders: { origin: server.url } });
    own.close();
  });

  it('refuses an oversized body with 413 naming the body and the limit', async () => {
    const response = await call(server.url, '/v1/check', {
      body: JSON.stringify({ response: 'x'.repeat(300 * 1024), constraints: CONSTRAINTS }),
    });
    expect(response.status).toBe(413);
    expect((await response.json()).error).toEqual({
      code: 'payload_too_large',
      message: 'body: request body too large (the limit is 262144 bytes)',
    });
  });
});

describe('rate limits', () => {
  it('limits requests per key with 429 rate_limited and Retry-After; other keys are unaffected', async () => {
    const server = await serve({ host: '0.0.0.0', security: { rateLimits: { perKeyPerMinute: 3 } } });
    const base = `http://127.0.0.1:${server.port}`;
    const a = await createApiKey(db.pool, { name: 'greedy' });
    const b = await createApiKey(db.pool, { name: 'modest' });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(base, '/v1/policy', { key: a.key })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await call(base, '/v1/policy', { key: a.key });
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await limited.json()).error).toEqual({
      code: 'rate_limited',
      message: `rate limit: at most 3 requests per API key per minute; retry in ${retryAfter} s`,
    });
    expect((await call(base, '/v1/policy', { key: b.key })).status).toBe(200);
  });

  it('limits requests per client IP, before any key lookup', async () => {
    const server = await serve({ security: { rateLimits: { perIpPerMinute: 2 } } });
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await call(server.url, '/v1/policy', { key: `corgi_guess${i}` })).status);
    expect(statuses).toEqual([401, 401, 429]);
  });

  it('counts sessions across HTTP and socket.io together', async () => {
    const server = await serve({ security: { rateLimits: { sessionsPerMinute: 2 } } });
    expect((await call(server.url, '/v1/sessions', { body: SESSION })).status).toBe(200);
    const socket = await openSocket(server.url);
    expect((await socketSession(socket)).last.event).toBe('session:end');
    const { ack, last } = await socketSession(socket);
    expect(ack).toEqual({
      error: {
        code: 'rate_limited',
        message: expect.stringMatching(/^rate limit: at most 2 sessions started/),
      },
    });
    expect(last).toMatchObject({ event: 'session:error', data: { code: 'rate_limited' } });
    expect(socket.connected).toBe(true);
    const http = await call(server.url, '/v1/sessions', { body: SESSION });
    expect(http.status).toBe(429);
    expect(http.headers.get('retry-after')).toMatch(/^\d+$/);
    // Other calls are not sessions and go on.
    expect((await call(server.url, '/v1/policy')).status).toBe(200);
    socket.close();
  });
});

describe('corgi keys (the real bin, on the embedded database)', () => {
  const root = mkdtempSync(join(tmpdir(), 'corgi-keys-'));
  const env: NodeJS.ProcessEnv = { ...process.env, CORGI_DATA_DIR: root };
  delete env.DATABASE_URL;
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('creates (printing the key once), lists and revokes keys, which a server then honours', async () => {
    const created = await runCorgi(['keys', 'create', '--name', 'ci bot', '--admin', '--json'], { env });
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const { id, key } = JSON.parse(created.stdout);
    expect(Object.keys(JSON.parse(created.stdout))).toEqual(['id', 'key']);
    expect(key).toMatch(/^corgi_/);

    const listed = await runCorgi(['keys', 'list', '--json'], { env });
    expect(JSON.parse(listed.stdout)).toEqual([
      { id, name: 'ci bot', admin: true, createdAt: expect.any(String), revokedAt: null },
    ]);
    expect(listed.stdout).not.toContain(key);

    // The key works against a server on that database.
    const embedded = await openDatabase({ dataDir: join(root, 'pglite'), url: '' });
    try {
      const server = await startServer({
        db: embedded,
        policy: fixedPolicy(new ScriptedPolicy(['ok'])),
        port: 0,
        security: { auth: 'required' },
      });
      try {
        expect((await call(server.url, '/v1/admin/keys', { key })).status).toBe(200);
        // While the server holds the embedded database, a second process is refused (PGlite would
        // fork the data) and told to go through the server, which works with the admin key.
        const busy = await runCorgi(['keys', 'list'], { env });
        expect(busy.code).toBe(1);
        expect(busy.stderr).toContain(`is open in process ${process.pid}`);
        expect(busy.stderr).toContain('--server');
        const viaServer = await runCorgi(
          ['keys', 'create', '--name', 'ops', '--json', '--server', server.url],
          {
            env: { ...env, CORGI_API_KEY: key },
          },
        );
        expect(viaServer.code).toBe(0);
        const opsKey = JSON.parse(viaServer.stdout).key;
        expect((await call(server.url, '/v1/policy', { key: opsKey })).status).toBe(200);
        const noKey = await runCorgi(['keys', 'list', '--server', server.url], { env });
        expect(noKey.stderr).toMatch(/^corgi: authorization: an API key is required/);
      } finally {
        await server.close();
      }
    } finally {
      await embedded.close();
    }

    const revoked = await runCorgi(['keys', 'revoke', id, '--json'], { env });
    expect(JSON.parse(revoked.stdout)).toEqual({ id, revoked: true });
    const again = await runCorgi(['keys', 'revoke', id], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^corgi: id: no live key /);
    const bad = await runCorgi(['keys', 'create', '--name', ' '], { env });
    expect(bad.stderr).toMatch(/--name: must not be empty/);
  }, 180_000);
});
