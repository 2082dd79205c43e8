/**
 * Several connections to the embedded database (PGlite behind pglite-socket): each connection's
 * extended-protocol query runs whole, so a second process (the background trainer) can share it
 * with the server's pool. Without SequencedQueryQueue the first test fails with "bind message
 * supplies 2 parameters, but prepared statement "" requires 1" (and C silently gets no rows).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.ts';
import { sequenceConnections } from '../../src/db/pglite-queue.ts';

let db: PGlite;
let server: PGLiteSocketServer;
let port: number;
const clients: pg.Client[] = [];

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  c.on('error', () => {});
  await c.connect();
  clients.push(c);
  return c;
}

/** Resolves once `n` messages wait in the socket server's queue. */
async function queued(n: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (server.getStats().queuedQueries < n) {
    if (Date.now() > deadline) throw new Error(`never ${n} queued messages`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

beforeEach(async () => {
  db = await PGlite.create();
  server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 8 });
  sequenceConnections(server, db);
  await server.start();
  port = (server as unknown as { port: number }).port;
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.end().catch(() => {})));
  await server.stop();
  await db.close();
});

describe('the embedded database with several connections', () => {
  it("runs each connection's query whole when their messages wait in the queue together", async () => {
    const [a, b, c] = [await client(), await client(), await client()];
    await a.query('BEGIN');
    // B's and C's queries (Parse, Bind, Describe, Execute, Sync each) wait while A holds the backend.
    const fromB = b.query('SELECT $1::int + $2::int AS x', [1, 2]);
    await queued(1);
    const fromC = c.query('SELECT $1::text AS y', ['c']);
    await queued(2);
    await a.query('COMMIT');
    expect((await fromB).rows).toEqual([{ x: 3 }]);
    expect((await fromC).rows).toEqual([{ y: 'c' }]);
  });

  it('lets the others go on when a connection dies half-way through a query', async () => {
    const b = await client();
    // A raw connection: start-up, then a Parse with no Sync, then gone.
    const raw = createConnection({ host: '127.0.0.1', port });
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
    const params = Buffer.from('user\0postgres\0database\0postgres\0\0');
    const startup = Buffer.alloc(8 + params.length);
    startup.writeInt32BE(startup.length, 0);
    startup.writeInt32BE(196608, 4);
    params.copy(startup, 8);
    let received = Buffer.alloc(0);
    const ready = new Promise<void>((resolve) =>
      raw.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) resolve();
      }),
    );
    raw.write(startup);
    await ready;
    const sql = Buffer.from('SELECT 1\0');
    const parse = Buffer.alloc(1 + 4 + 1 + sql.length + 2);
    parse.write('P', 0);
    parse.writeInt32BE(parse.length - 1, 1);
    sql.copy(parse, 6);
    const parsed = new Promise<void>((resolve) =>
      raw.on('data', () => {
        if (received.includes(Buffer.from([0x31, 0, 0, 0, 4]))) resolve(); // ParseComplete
      }),
    );
    raw.write(parse);
    await parsed;
    // The raw connection is mid-query: B waits for it, until it goes away.
    const fromB = b.query('SELECT $1::int * 2 AS x', [21]);
    await queued(1);
    raw.destroy();
    expect((await fromB).rows).toEqual([{ x: 42 }]);
  });

  it('rolls back the transaction of a connection that dies inside it', async () => {
    const [a, b] = [await client(), await client()];
    await b.query('CREATE TABLE t (x int)');
    await a.query('BEGIN');
    await a.query('INSERT INTO t VALUES ($1)', [1]);
    const fromB = b.query('SELECT count(*)::int AS n FROM t WHERE x > $1', [0]);
    await queued(1);
    (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    expect((await fromB).rows).toEqual([{ n: 0 }]);
  });
});

describe('openDatabase (embedded)', () => {
  it('gives other processes a URL of its socket, usable beside its own pool', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corgi-pglite-queue-'));
    const embedded = await openDatabase({ dataDir: join(dir, 'pglite') });
    try {
      expect(embedded.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
      const other = new pg.Pool({ connectionString: embedded.url, max: 1 });
      try {
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            (i % 2 ? other : embedded.pool).query('SELECT $1::int AS i, $2::text AS s', [i, `s${i}`]),
          ),
        );
        expect(results.map((r) => r.rows[0])).toEqual(
          Array.from({ length: 40 }, (_, i) => ({ i, s: `s${i}` })),
        );
      } finally {
        await other.end();
      }
    } finally {
      await embedded.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
