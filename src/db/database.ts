/**
 * The database: PostgreSQL through `pg`, schema applied by node-pg-migrate from the SQL files in
 * `migrations/` at start-up. With a `DATABASE_URL` it is that server; without one it is the
 * embedded default: PGlite (PostgreSQL compiled to WebAssembly) with its data in
 * `$CORGI_DATA_DIR/pglite`, served on a loopback port by pglite-socket so the very same `pg` code
 * runs against both.
 */

import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { defaultLogger, type Logger } from '../common/logger.ts';
import { lockEmbeddedDatabase } from './embedded-lock.ts';
import { sequenceConnections } from './pglite-queue.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface DatabaseOptions {
  /** A PostgreSQL connection string; unset (or empty) means the embedded database. @default unset */
  url?: string;
  /** Where the embedded database keeps its files. @default './data/pglite' */
  dataDir?: string;
  /** Schema to use (tests isolate themselves in a schema of their own). @default 'public' */
  schema?: string;
  /** Connections in the pool. @default 8 for a server, 1 embedded (see below) */
  poolSize?: number;
  /** Apply pending migrations before returning. @default true */
  migrate?: boolean;
  /** Deadlines on every wait for the database (see `DatabaseTimeouts`). @default DATABASE_TIMEOUT_DEFAULTS */
  timeouts?: Partial<DatabaseTimeouts>;
  /** Where idle-connection errors are logged. @default defaultLogger (logger.ts) */
  logger?: Logger;
}

/**
 * Every wait on the database has a deadline, so a database that stops answering (a partition,
 * dropped packets) fails requests instead of hanging them. 0 turns one off.
 */
export interface DatabaseTimeouts {
  /** Opening a connection, and waiting for a free one in the pool. @default 3_000 */
  connectMs: number;
  /** The client's own deadline for an answer to a query. @default 10_000 */
  queryMs: number;
  /** PostgreSQL's `statement_timeout`. @default 8_000 */
  statementMs: number;
  /** PostgreSQL's `idle_in_transaction_session_timeout`. @default 15_000 */
  idleInTransactionMs: number;
}

export const DATABASE_TIMEOUT_DEFAULTS: Readonly<DatabaseTimeouts> = {
  connectMs: 3_000,
  queryMs: 10_000,
  statementMs: 8_000,
  idleInTransactionMs: 15_000,
};

/** The deadlines: `overrides`, else the defaults. */
export function resolveDatabaseTimeouts(overrides: Partial<DatabaseTimeouts> = {}): DatabaseTimeouts {
  const defined = Object.entries(overrides).filter(([, value]) => value !== undefined);
  return { ...DATABASE_TIMEOUT_DEFAULTS, ...Object.fromEntries(defined) };
}

export interface Database {
  pool: pg.Pool;
  /** True for the in-process PGlite database. Its NOTIFY does not cross connections. */
  embedded: boolean;
  /**
   * Where another process connects: the embedded database's loopback socket
   * (`postgres://postgres@127.0.0.1:<port>/postgres`, while this process keeps it open), or the URL.
   */
  url: string;
  schema: string;
  close(): Promise<void>;
}

/** Opens (and by default migrates) PostgreSQL at `url`, or the embedded database in `dataDir`. */
export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
  const url = options.url;
  const schema = options.schema ?? 'public';
  if (!/^[a-z_][a-z0-9_]*$/.test(schema))
    throw new Error(`schema must be a plain lower-case identifier, got "${schema}"`);
  // Embedded: one connection. pglite-socket interleaves the messages of concurrent connections
  // when the event loop stalls (a checkpoint load, a long decoding step): measured "bind message
  // supplies 2 parameters, but prepared statement requires 14". One connection queues instead.
  const poolSize = options.poolSize ?? (url ? 8 : 1);

  let embeddedServer: PGLiteSocketServer | undefined;
  let embeddedDb: PGlite | undefined;
  let releaseLock: (() => void) | undefined;
  let connection: pg.PoolConfig;
  let socketUrl = url ?? '';
  if (url) {
    connection = { connectionString: url };
  } else {
    const dataDir = options.dataDir ?? join('./data', 'pglite');
    mkdirSync(dataDir, { recursive: true });
    // PGlite has no lock of its own: a second process on these files would corrupt them.
    const release = lockEmbeddedDatabase(dataDir);
    releaseLock = release;
    embeddedDb = await PGlite.create(dataDir).catch((error: unknown) => {
      release();
      throw error;
    });
    const port = await freeLoopbackPort();
    embeddedServer = new PGLiteSocketServer({
      db: embeddedDb,
      host: '127.0.0.1',
      port,
      maxConnections: poolSize + 2,
    });
    // Each connection's queries run whole (another process, e.g. the background trainer, may connect).
    sequenceConnections(embeddedServer, embeddedDb);
    await embeddedServer.start();
    connection = { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' };
    socketUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  const timeouts = resolveDatabaseTimeouts(options.timeouts);
  const pool = new pg.Pool({
    ...connection,
    max: poolSize,
    // Every connection sees the chosen schema first.
    options: schema === 'public' ? undefined : `-c search_path=${schema}`,
    connectionTimeoutMillis: timeouts.connectMs,
    query_timeout: timeouts.queryMs || undefined,
    statement_timeout: timeouts.statementMs,
    idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
    // A peer that vanished without a FIN is noticed on idle connections too.
    keepAlive: true,
  });
  // An idle client losing its connection (server restart) must not crash the process.
  const log = (options.logger ?? defaultLogger).child('db');
  pool.on('error', (error) => log.error(`idle client error: ${error.message}`));

  const close = async () => {
    await pool.end();
    await embeddedServer?.stop();
    await embeddedDb?.close();
    releaseLock?.();
  };

  try {
    if (schema !== 'public') await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    if (options.migrate ?? true) await migrate(pool, schema);
  } catch (error) {
    await close();
    throw error;
  }
  return { pool, embedded: embeddedServer !== undefined, url: socketUrl, schema, close };
}

/**
 * Applies every pending migration in `migrations/`, holding node-pg-migrate's advisory lock. On a
 * connection of its own without query deadlines: waiting for another process's migration lock, or
 * a long migration, is expected here.
 */
export async function migrate(pool: pg.Pool, schema = 'public'): Promise<void> {
  const client = new pg.Client({
    ...(pool.options as pg.ClientConfig),
    query_timeout: undefined,
    statement_timeout: 0,
    idle_in_transaction_session_timeout: 0,
  });
  await client.connect();
  try {
    await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      migrationsTable: 'pgmigrations',
      schema,
      migrationsSchema: schema,
      checkOrder: true,
      // The lock is database-wide: a second process (or test file) migrating waits its turn.
      advisoryLockMode: 'wait',
      log: () => {},
    });
  } finally {
    await client.end();
  }
}

/** A port on 127.0.0.1 that nothing listens on right now. */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** `SELECT 1` on `pool`, given up by the driver after `timeoutMs` (a liveness probe). */
export async function pingDatabase(pool: pg.Pool, timeoutMs: number): Promise<void> {
  await pool.query({ text: 'SELECT 1', query_timeout: timeoutMs } as pg.QueryConfig);
}

/** Names `client`'s connection in `pg_stat_activity` (a connection string's own name would win over the option). */
export async function setApplicationName(client: pg.ClientBase, name: string): Promise<void> {
  await client.query('SELECT set_config($1, $2, false)', ['application_name', name]);
}
