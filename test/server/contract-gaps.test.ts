/**
 * Two small contracts: `session:start` with no payload still gets its ack, and `/v1/stats` counts
 * only the caller's own sessions unless the caller is an admin.
 */
import { randomUUID } from 'node:crypto';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/db/api-keys.ts';
import type { Database } from '../../src/db/database.ts';
import type { StatsResponse } from '../../src/db/stats.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { checkInProcess } from '../../src/session/check-pool.ts';
import { openTestDatabase } from '../support/database.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

let db: Database;
let server: RunningServer;
let base: string;
let alice: { id: string; key: string };
let bob: { id: string; key: string };
let admin: { id: string; key: string };

beforeAll(async () => {
  db = await openTestDatabase();
  // Beyond loopback, so keys are required; reached on 127.0.0.1.
  server = await startServer({
    db,
    policy: fixedPolicy(new ScriptedPolicy(['A dog.'], 'scripted-gaps')),
    port: 0,
    host: '0.0.0.0',
    check: checkInProcess,
  });
  base = `http://127.0.0.1:${server.port}`;
  alice = await createApiKey(db.pool, { name: 'alice' });
  bob = await createApiKey(db.pool, { name: 'bob' });
  admin = await createApiKey(db.pool, { name: 'ops', admin: true });
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

function openSocket(token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(base, { transports: ['websocket'], reconnection: false, auth: { token } });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

describe('session:start with no payload', () => {
  it('acks {error: {code, message}} naming the payload, and keeps the connection', async () => {
    const socket = await openSocket(alice.key);
    const errorEvent = new Promise((resolve) => socket.once('session:error', resolve));
    const ack = await socket.timeout(10_000).emitWithAck('session:start');
    expect(ack).toEqual({ error: { code: expect.any(String), message: expect.stringMatching(/\S/) } });
    expect(ack.error.code).not.toBe('internal');
    expect(await errorEvent).toEqual(ack.error);
    expect(socket.connected).toBe(true);
    socket.close();
  });
});

describe('/v1/stats', () => {
  async function insertLiveSessions(apiKeyId: string, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      await db.pool.query(
        `INSERT INTO sessions (id, api_key_id, source, constraints, max_attempts, status, attempts)
         VALUES ($1, $2, 'live', '[]', 1, 'completed', 1)`,
        [randomUUID(), apiKeyId],
      );
    }
  }

  async function sessionsCounted(key: string): Promise<number> {
    const response = await fetch(`${base}/v1/stats?minutes=5`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(response.status).toBe(200);
    const stats = (await response.json()) as StatsResponse;
    return stats.sessionsPerMinute.reduce((sum, minute) => sum + minute.count, 0);
  }

  it("counts a key's own sessions only; an admin key counts every tenant's", async () => {
    await insertLiveSessions(alice.id, 3);
    await insertLiveSessions(bob.id, 2);
    expect(await sessionsCounted(alice.key)).toBe(3);
    expect(await sessionsCounted(bob.key)).toBe(2);
    expect(await sessionsCounted(admin.key)).toBe(5);
  });
});
