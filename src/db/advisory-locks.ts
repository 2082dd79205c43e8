/**
 * PostgreSQL advisory locks under a two-int4 key (src/training/background/trainer-lock.ts holds the trainer's).
 * Taking one first checks `pg_locks`, in the same statement: on the embedded database every
 * connection is one backend session, where advisory locks are re-entrant, so only `pg_locks` tells
 * that another connection holds it.
 */
import type pg from 'pg';

/** A pool or a connection of its own (a session-level lock lives and dies with its connection). */
export type Queryable = pg.Pool | pg.ClientBase;

/** The lock's two keys (`classid`, `objid` in `pg_locks`). */
export type AdvisoryKey = readonly [number, number];

/** Takes the lock unless anyone holds it; resolves with whether it was taken. */
export async function tryAdvisoryLock(db: Queryable, key: AdvisoryKey): Promise<boolean> {
  const { rows } = await db.query<{ acquired: boolean }>(
    `SELECT CASE
       WHEN EXISTS (SELECT 1 FROM pg_locks
                    WHERE locktype = 'advisory' AND classid = $1::int::oid AND objid = $2::int::oid
                      AND objsubid = 2 AND granted)
       THEN false
       ELSE pg_try_advisory_lock($1, $2)
     END AS acquired`,
    [...key],
  );
  return rows[0]!.acquired;
}

/** Releases the lock as this session holds it. */
export async function advisoryUnlock(db: Queryable, key: AdvisoryKey): Promise<void> {
  await db.query('SELECT pg_advisory_unlock($1, $2)', [...key]);
}

/** Whether any session holds the lock. */
export async function advisoryLockHeld(db: Queryable, key: AdvisoryKey): Promise<boolean> {
  const { rows } = await db.query<{ held: number }>(
    `SELECT count(*)::int AS held FROM pg_locks
      WHERE locktype = 'advisory' AND classid = $1::int::oid AND objid = $2::int::oid AND objsubid = 2 AND granted`,
    [...key],
  );
  return rows[0]!.held > 0;
}
