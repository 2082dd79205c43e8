/**
 * Only one trainer trains at a time: `withTrainerLock` holds a PostgreSQL session-level advisory
 * lock while `fn` runs. Two trainers would otherwise both train from the same live version and
 * promote over each other.
 *
 * On a real PostgreSQL the lock is held on a connection of its own: if the trainer's process dies,
 * the server drops the connection and the lock with it. If that connection is lost while `fn` runs,
 * `fn`'s signal aborts, because another trainer may now take the lock.
 *
 * The embedded database (PGlite behind pglite-socket) runs every connection in one backend
 * session, where advisory locks are re-entrant and survive a closed connection. So the lock is
 * taken only if `pg_locks` shows nobody holding it (one statement, and PGlite runs one statement at
 * a time), and released explicitly. A holder that dies without releasing it (a crashed worker
 * thread) keeps it until the server process restarts, which is also when the embedded database does.
 */
import pg from 'pg';
import { CorgiError } from '../../common/errors.ts';
import {
  type AdvisoryKey,
  advisoryLockHeld,
  advisoryUnlock,
  tryAdvisoryLock,
} from '../../db/advisory-locks.ts';
import type { Database } from '../../db/database.ts';

/** Another trainer holds the lock. */
export class TrainerLockedError extends CorgiError {
  constructor() {
    super(
      'trainer_locked',
      'trainer lock: another trainer is training on this database; wait for it to finish (or stop it)',
    );
  }
}

/** The advisory lock's first key: "corg" in ASCII, so the lock is recognisable in `pg_locks`. */
const LOCK_NAMESPACE = 0x636f7267;

/** The second key: the schema, hashed to a non-negative int4 (FNV-1a), so test schemas do not collide. */
function schemaKey(schema: string): number {
  let hash = 0x811c9dc5;
  for (const char of `trainer:${schema}`) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) & 0x7fffffff;
}

export interface TrainerLockOptions {
  /** Wait for the lock instead of failing with `TrainerLockedError`. @default false */
  wait?: boolean;
  /** How often a waiting caller tries again, in ms. @default 5000 */
  pollMs?: number;
  /** Aborting stops the wait (rejecting with the signal's reason) and is passed on to `fn`. */
  signal?: AbortSignal;
}

/** What `fn` gets: a signal that aborts if the lock is lost (its connection closed) or the caller aborts. */
export interface TrainerLock {
  signal: AbortSignal;
}

/**
 * Runs `fn` holding the trainer lock of `db`'s schema, and releases it however `fn` ends.
 * @throws TrainerLockedError when another trainer holds it and `wait` is false
 * @example await withTrainerLock(db, async ({ signal }) => trainCorgi({ ...config, signal }));
 */
export async function withTrainerLock<T>(
  db: Pick<Database, 'pool' | 'schema' | 'embedded'>,
  fn: (lock: TrainerLock) => Promise<T>,
  { wait = false, pollMs = 5_000, signal }: TrainerLockOptions = {},
): Promise<T> {
  const key: AdvisoryKey = [LOCK_NAMESPACE, schemaKey(db.schema)];
  const lost = new AbortController();
  let releasing = false;
  const onLost = (error?: Error) => {
    if (releasing || lost.signal.aborted) return;
    lost.abort(
      new Error(`trainer lock lost: its database connection closed${error ? ` (${error.message})` : ''}`),
    );
  };
  // PostgreSQL: a connection of its own, which the lock lives and dies with (and the pool is not
  // starved). Embedded: the pool, since every connection is the same session there anyway, and a
  // second connection is one more whose messages pglite-socket could interleave with the pool's.
  let client: pg.Client | null = null;
  if (!db.embedded) {
    client = new pg.Client(db.pool.options);
    client.on('error', onLost);
    client.on('end', () => onLost());
    await client.connect();
  }
  const session = client ?? db.pool;
  try {
    for (;;) {
      signal?.throwIfAborted();
      if (await tryAdvisoryLock(session, key)) break;
      if (!wait) throw new TrainerLockedError();
      await sleep(pollMs, signal);
    }
    try {
      const combined = signal ? AbortSignal.any([signal, lost.signal]) : lost.signal;
      return await fn({ signal: combined });
    } finally {
      releasing = true;
      if (!lost.signal.aborted) await advisoryUnlock(session, key).catch(() => {});
    }
  } finally {
    releasing = true;
    await client?.end().catch(() => {});
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', aborted, { once: true });
  });
}

/**
 * Releases the trainer lock of `db`'s schema whoever took it. Only for the embedded database, where
 * every connection is PGlite's one session (so this unlocks the lock another connection took) and
 * only the process that owns the database starts trainers: `corgi serve` calls it after its trainer
 * process exited without releasing it (killed, crashed), which would otherwise hold it until restart.
 * Resolves with whether a lock was held.
 */
export async function releaseEmbeddedTrainerLock(
  db: Pick<Database, 'pool' | 'schema' | 'embedded'>,
): Promise<boolean> {
  if (!db.embedded) throw new Error('releaseEmbeddedTrainerLock: only for the embedded database');
  const key: AdvisoryKey = [LOCK_NAMESPACE, schemaKey(db.schema)];
  if (!(await advisoryLockHeld(db.pool, key))) return false;
  await advisoryUnlock(db.pool, key);
  return true;
}
