/**
 * Machinery for the fault tests and `npm run bench:faults`: a TCP proxy to PostgreSQL that can stop
 * forwarding (a hung database: connections stay open, nothing answers), socket.io clients that run
 * sessions back to back while recording every token's arrival and every acknowledged attempt, and
 * the count of acknowledged attempts found stored.
 */
import { createServer, type Server, type Socket as TcpSocket, connect as tcpConnect } from 'node:net';
import type pg from 'pg';
import { io as connect, type Socket } from 'socket.io-client';
import { storableText } from '../../src/db/sessions.ts';

/** A TCP proxy whose `pause()` stops forwarding bytes both ways (buffering them) until `resume()`. */
export class PausableProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<{ flush: () => void; close: () => void }>();
  private paused = false;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = tcpConnect(this.target.port, this.target.host);
      const held: [TcpSocket, Buffer][] = [];
      const forward = (from: TcpSocket, to: TcpSocket) =>
        from.on('data', (chunk: Buffer) => {
          if (this.paused) held.push([to, chunk]);
          else to.write(chunk);
        });
      const pair = {
        flush: () => {
          for (const [to, chunk] of held.splice(0)) to.write(chunk);
        },
        close: () => {
          client.destroy();
          upstream.destroy();
        },
      };
      this.pairs.add(pair);
      forward(client, upstream);
      forward(upstream, client);
      for (const socket of [client, upstream]) {
        socket.on('error', () => pair.close());
        socket.on('close', () => {
          pair.close();
          this.pairs.delete(pair);
        });
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** The database hangs: every byte either way is held back; new connections open and then hang. */
  pause(): void {
    this.paused = true;
  }

  /** The database answers again: held bytes go through in order. */
  resume(): void {
    this.paused = false;
    for (const pair of this.pairs) pair.flush();
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) pair.close();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** Resolves once `condition()` holds, polling every 100 ms; rejects after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** An attempt a client received (`attempt:end`): stored before it was sent, so it must be stored. */
export interface Acknowledged {
  sessionId: string;
  attempt: number;
  text: string;
}

export interface LoadOptions {
  clients: number;
  constraints: unknown[];
  maxAttempts: number;
  prompt?: string;
}

/** socket.io clients running sessions back to back until `stop()`. */
export class SessionLoad {
  readonly acknowledged: Acknowledged[] = [];
  /** Every gap between two tokens of one attempt, with when the second arrived (performance.now()). */
  readonly gaps: { at: number; ms: number }[] = [];
  readonly disconnects: string[] = [];
  readonly refusals: string[] = [];
  sessionsEnded = 0;
  private readonly sockets: Socket[] = [];
  private stopped = false;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly url: string,
    private readonly options: LoadOptions,
  ) {}

  async start(): Promise<void> {
    for (let i = 0; i < this.options.clients; i++) {
      const socket = await openSocket(this.url);
      socket.on('disconnect', (reason) => {
        if (!this.stopped) this.disconnects.push(reason);
      });
      const last = new Map<string, number>();
      socket.on('token', ({ sessionId, attempt }: { sessionId: string; attempt: number }) => {
        const key = `${sessionId}/${attempt}`;
        const now = performance.now();
        const previous = last.get(key);
        if (previous !== undefined) this.gaps.push({ at: now, ms: now - previous });
        last.set(key, now);
      });
      socket.on('attempt:end', ({ sessionId, attempt, text }: Acknowledged) => {
        this.acknowledged.push({ sessionId, attempt, text });
      });
      this.sockets.push(socket);
      this.loops.push(this.run(socket));
    }
  }

  private async run(socket: Socket): Promise<void> {
    while (!this.stopped && socket.connected) {
      const ended = new Promise<void>((resolve) => {
        const done = () => {
          socket.off('session:end', done);
          socket.off('session:error', done);
          socket.off('disconnect', done);
          resolve();
        };
        socket.on('session:end', done);
        socket.on('session:error', done);
        socket.on('disconnect', done);
      });
      const ack = await socket
        .timeout(30_000)
        .emitWithAck('session:start', {
          prompt: this.options.prompt ?? 'Write about a pet.',
          constraints: this.options.constraints,
          maxAttempts: this.options.maxAttempts,
        })
        .catch((error: Error) => ({ error: { code: 'ack_timeout', message: error.message } }));
      if (ack.error) {
        this.refusals.push(ack.error.code);
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      await ended;
      this.sessionsEnded++;
    }
  }

  /** The 99th percentile of token gaps that ended in [from, to] (ms), or null when there were none. */
  p99GapMs(from = 0, to = Number.POSITIVE_INFINITY): number | null {
    const within = this.gaps.filter((gap) => gap.at >= from && gap.at <= to).map((gap) => gap.ms);
    if (within.length === 0) return null;
    within.sort((a, b) => a - b);
    return within[Math.min(within.length - 1, Math.floor(within.length * 0.99))];
  }

  /** Tokens received in [from, to]. */
  tokensBetween(from: number, to: number): number {
    return this.gaps.filter((gap) => gap.at >= from && gap.at <= to).length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const socket of this.sockets) socket.close();
    await Promise.all(this.loops);
  }
}

export function openSocket(url: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/** How many acknowledged attempts are stored exactly as the client received them. */
export async function countStored(
  pool: pg.Pool,
  acknowledged: readonly Acknowledged[],
): Promise<{ acknowledged: number; stored: number; lost: Acknowledged[] }> {
  const lost: Acknowledged[] = [];
  for (const ack of acknowledged) {
    const { rows } = await pool.query(
      "SELECT text FROM turns WHERE session_id = $1 AND kind = 'attempt' AND attempt = $2",
      [ack.sessionId, ack.attempt],
    );
    if (rows[0]?.text !== storableText(ack.text)) lost.push(ack);
  }
  return { acknowledged: acknowledged.length, stored: acknowledged.length - lost.length, lost };
}
