/**
 * `startServer`: the HTTP server with the express app and socket.io on one port. Used by
 * `corgi serve` (and so `npm start`), the tests and the benchmarks.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Server } from 'socket.io';
import type { Database } from '../db/database.ts';
import type { PolicySource } from '../policy/types.ts';
import { createApp } from './app.ts';
import { createMetrics } from './metrics.ts';
import { SessionService } from './session-service.ts';
import { attachSessionSockets, type CorgiIo } from './socket.ts';

/** The repository's `web/` directory: the front end `startServer` serves unless told otherwise. */
const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web', import.meta.url));

export interface ServerOptions {
  db: Database;
  policy: PolicySource;
  /** @default Number(process.env.PORT ?? 3000); 0 picks a free port */
  port?: number;
  /** @default process.env.HOST ?? '127.0.0.1' */
  host?: string;
  /** The static front end served at `/`. @default the repository's `web/` directory */
  webDir?: string;
}

export interface RunningServer {
  url: string;
  port: number;
  io: CorgiIo;
  sessions: SessionService;
  /** Cancels running sessions, closes sockets and the HTTP server (not the database). */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const metrics = createMetrics();
  const sessions = new SessionService({ pool: options.db.pool, policy: options.policy, metrics });
  const app = createApp({
    pool: options.db.pool,
    policy: options.policy,
    sessions,
    metrics,
    webDir: options.webDir ?? DEFAULT_WEB_DIR,
  });
  const http = createServer(app);
  const io: CorgiIo = new Server(http, { maxHttpBufferSize: 256 * 1024 });
  attachSessionSockets(io, sessions);

  const host = options.host ?? process.env.HOST ?? '127.0.0.1';
  const port = options.port ?? Number(process.env.PORT ?? 3000);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => resolve());
  });
  const bound = (http.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    io,
    sessions,
    close: async () => {
      sessions.cancelAll();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      http.closeAllConnections?.();
    },
  };
}
