/**
 * `startServer`: the HTTP server with the express app and socket.io on one port. Used by
 * `corgi serve` (and so `npm start`), the tests and the benchmarks.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createAdapter } from '@socket.io/postgres-adapter';
import pg from 'pg';
import { Server } from 'socket.io';
import { defaultLogger, type Logger } from '../common/logger.ts';
import type { Database } from '../db/database.ts';
import { sweepOrphanedSessions } from '../db/sessions.ts';
import type { PolicySource } from '../policy/types.ts';
import type { PolicyFollower } from '../promotion/follower.ts';
import {
  type CheckFunction,
  type CheckPool,
  type CheckPoolOptions,
  createCheckPool,
} from '../session/check-pool.ts';
import { createApp } from './app.ts';
import { defaultAuthMode } from './auth.ts';
import { createMetrics } from './metrics.ts';
import { startPresence } from './presence.ts';
import { createSecurity, type SecurityOptions } from './security.ts';
import { SessionService } from './session-service.ts';
import { attachSessionSockets, type CorgiIo } from './socket.ts';
import { StorageHealth } from './storage-health.ts';

/** The repository's `web/` directory: the front end `startServer` serves unless told otherwise. */
const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web', import.meta.url));

export interface ServerOptions {
  db: Database;
  policy: PolicySource;
  /** @default 3000; 0 picks a free port */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** The static front end served at `/`. @default the repository's `web/` directory */
  webDir?: string;
  /**
   * API keys, CORS, rate limits, proxies. `auth` defaults to `required` when `host` is beyond
   * loopback and `optional` on loopback (see auth.ts).
   */
  security?: SecurityOptions;
  /** Keeps `policy` on the promoted version (`followPromotions`); enables the admin promote/rollback routes. */
  promotions?: PolicyFollower;
  /**
   * Share socket.io broadcasts (`io.emit`, rooms, `fetchSockets`, `serverSideEmit`) with every
   * server process on the same PostgreSQL database and schema, through @socket.io/postgres-adapter.
   * Never with the embedded database, whose NOTIFY does not cross connections. It gets a pool of
   * its own (2 connections: its LISTEN, and NOTIFYs), so it never starves the sessions' pool.
   * @default true on PostgreSQL
   */
  clusterAdapter?: boolean;
  /** The check pool's threads and per-check budget (check-pool.ts). @default from the environment */
  checkPool?: CheckPoolOptions;
  /** Check with this instead of a pool of the server's own (tests). @default a new check pool */
  check?: CheckFunction;
  /** Where the server logs (database outages, swept sessions, adapter errors, unexpected errors). @default defaultLogger (logger.ts) */
  logger?: Logger;
}

export interface RunningServer {
  url: string;
  port: number;
  /** This process's id, recorded on the sessions it runs (presence.ts). */
  serverId: string;
  io: CorgiIo;
  sessions: SessionService;
  /** The server's check pool; undefined when `check` was given. */
  checkPool?: CheckPool;
  /** Cancels running sessions, closes sockets and the HTTP server (not the database). */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const security = createSecurity(options.db.pool, {
    ...options.security,
    // Never spread an explicit `auth: undefined` over the default: that would open a public bind.
    auth: options.security?.auth ?? defaultAuthMode(host),
  });
  const logger = options.logger ?? defaultLogger;
  const metrics = createMetrics();
  // Present before any session is recorded under our id; then end the sessions that servers which
  // died mid-session left `running` (never those of servers still alive on this database).
  const presence = await startPresence(options.db, { logger });
  await sweepOrphanedSessions(options.db.pool, { serverId: presence.id, embedded: options.db.embedded }).then(
    (swept) => {
      if (swept.length > 0)
        logger
          .child('sessions')
          .info(`${swept.length} session(s) left running by a stopped server marked interrupted`);
    },
    (error: Error) =>
      logger.child('sessions').error(`could not sweep sessions of stopped servers: ${error.message}`),
  );
  // One pool for every check of this process: /v1/check, socket and SSE sessions.
  const checkPool = options.check ? undefined : createCheckPool(options.checkPool);
  const check = options.check ?? checkPool!.check;
  const health = new StorageHealth(options.db.pool, { logger });
  const sessions = new SessionService({
    pool: options.db.pool,
    policy: options.policy,
    metrics,
    serverId: presence.id,
    check,
    health,
    logger,
  });
  const app = createApp({
    pool: options.db.pool,
    policy: options.policy,
    sessions,
    metrics,
    webDir: options.webDir ?? DEFAULT_WEB_DIR,
    security,
    promotions: options.promotions,
    check,
    health,
    logger,
  });
  const http = createServer(app);
  const io: CorgiIo = new Server(http, { maxHttpBufferSize: 256 * 1024, cors: security.socketCors });
  let adapterPool: pg.Pool | undefined;
  if (!options.db.embedded && (options.clusterAdapter ?? true)) {
    const { schema } = options.db;
    adapterPool = new pg.Pool({ ...options.db.pool.options, max: 2 });
    const adapterLog = logger.child('socket.io adapter');
    // An idle connection dropped by a database restart must not crash the process; the adapter reconnects.
    adapterPool.on('error', (error) => adapterLog.error(`idle client error: ${error.message}`));
    // The adapter keeps one client checked out for LISTEN and listens only for its "end": without
    // a listener of ours, that client's "error" when the database drops would be an uncaught
    // exception (measured: the database-outage fault test crashed on it). The adapter then forgets
    // the dead client without releasing it, which would leave `adapterPool.end()` waiting forever
    // at shutdown; handing it back with the error makes the pool discard it. The adapter
    // reconnects with a fresh client.
    adapterPool.on('connect', (client) =>
      client.on('error', (error) => {
        adapterLog.error(`client error: ${error.message}`);
        try {
          (client as pg.PoolClient).release(error);
        } catch {
          // Already released (the adapter closed it first): nothing to hand back.
        }
      }),
    );
    io.adapter(
      createAdapter(adapterPool, {
        // One channel per schema, like the policy channel: deployments (and test schemas) sharing a
        // database do not hear each other.
        channelPrefix: schema === 'public' ? 'corgi_io' : `corgi_io_${schema}`,
        errorHandler: (error) => adapterLog.error(error.message),
      }),
    );
  }
  security.installSockets(io);
  attachSessionSockets(io, sessions);

  // Loading the text models takes a worker 1–10 s; no check waits for that once the port is open.
  await checkPool?.ready().catch(async (error) => {
    await checkPool.close();
    await presence.close();
    throw error;
  });
  const port = options.port ?? 3000;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => resolve());
  }).catch(async (error) => {
    await checkPool?.close();
    await presence.close();
    throw error;
  });
  const bound = (http.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    serverId: presence.id,
    io,
    sessions,
    checkPool,
    close: async () => {
      sessions.cancelAll();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      http.closeAllConnections?.();
      security.close();
      await adapterPool?.end();
      await checkPool?.close();
      health.close();
      await presence.close();
    },
  };
}
