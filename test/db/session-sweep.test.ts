/**
 * `sweepOrphanedSessions`: which `running` sessions a starting server ends as `interrupted`. The
 * end-to-end fault (a `corgi serve` SIGKILLed mid-session) is test/server/faults-server-killed.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { createSession, endSession, getSession, sweepOrphanedSessions } from '../../src/db/sessions.ts';
import { startPresence } from '../../src/server/presence.ts';
import { openTestDatabase } from '../support/database.ts';

const constraints = [{ id: 'punctuation:no_comma', kwargs: {} }];
const session = (db: Database, serverId: string | null) =>
  createSession(db.pool, { prompt: 'Hi.', constraints, maxAttempts: 2, serverId });

describe('on PostgreSQL', () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db.close();
  });

  it('ends the running sessions of servers with no presence connection, and only those', async () => {
    const alive = await startPresence(db);
    const me = await startPresence(db);
    try {
      const ofLiveServer = await session(db, alive.id);
      const ofDeadServer = await session(db, randomUUID());
      const ofNoServer = await session(db, null);
      const mine = await session(db, me.id);
      const endedOfDeadServer = await session(db, randomUUID());
      await endSession(db.pool, endedOfDeadServer, {
        status: 'completed',
        ok: true,
        bestScore: 1,
        attempts: 1,
      });

      expect(await sweepOrphanedSessions(db.pool, { serverId: me.id, embedded: false })).toEqual([
        ofDeadServer,
      ]);
      expect(await getSession(db.pool, ofDeadServer)).toMatchObject({
        status: 'interrupted',
        error: { code: 'server_gone' },
        endedAt: expect.any(String),
      });
      for (const id of [ofLiveServer, ofNoServer, mine])
        expect(await getSession(db.pool, id)).toMatchObject({ status: 'running' });
      expect(await getSession(db.pool, endedOfDeadServer)).toMatchObject({ status: 'completed' });

      // A server that shuts down is gone: its running sessions are swept next time.
      await alive.close();
      expect(await sweepOrphanedSessions(db.pool, { serverId: me.id, embedded: false })).toEqual([
        ofLiveServer,
      ]);
      // A session's real end still wins over the sweep (a server that was only cut off for a moment).
      await endSession(db.pool, ofLiveServer, {
        status: 'completed',
        ok: false,
        bestScore: 0.5,
        attempts: 2,
      });
      expect(await getSession(db.pool, ofLiveServer)).toMatchObject({ status: 'completed', error: null });
    } finally {
      await alive.close();
      await me.close();
    }
  });
});

describe('on the embedded database', () => {
  let db: Database;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'corgi-sweep-pglite-'));
    db = await openDatabase({ url: '', dataDir });
  }, 120_000);
  afterAll(async () => {
    await db?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("ends every running session but the starting server's own (the database is one process's)", async () => {
    const me = await startPresence(db);
    const ofOldServer = await session(db, randomUUID());
    const ofNoServer = await session(db, null);
    const mine = await session(db, me.id);
    const swept = await sweepOrphanedSessions(db.pool, { serverId: me.id, embedded: true });
    expect(swept.sort()).toEqual([ofOldServer, ofNoServer].sort());
    expect(await getSession(db.pool, mine)).toMatchObject({ status: 'running' });
    await me.close();
  });
});
