/**
 * Several servers on one PostgreSQL: two real `corgi serve` processes on a database of their own,
 * a socket.io client on each, and a promotion made through one of them reaching both: each server
 * swaps and tells its own clients exactly once (socket.io's PostgreSQL adapter links the two
 * processes; a plain broadcast through it would reach every client once per server).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { TEST_DATABASE_URL } from '../support/database.ts';

const BIN = fileURLToPath(new URL('../../bin/corgi.js', import.meta.url));

interface ServerProcess {
  child: ChildProcess;
  url: string;
  stderr: () => string;
}

function startServe(policyDir: string, env: NodeJS.ProcessEnv): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--policy', policyDir], { env });
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${stderr}`)), 100_000);
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
      const match = /CORGI Live on (http:\/\/\S+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1], stderr: () => stderr });
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${stderr}`)));
  });
}

async function stop(server: ServerProcess | undefined): Promise<void> {
  if (!server || server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
}

describe('two server processes on one PostgreSQL database', () => {
  const root = mkdtempSync(join(tmpdir(), 'corgi-two-servers-'));
  // A database of its own: the servers use its public schema, as a deployment would.
  const database = `corgi_two_servers_${randomBytes(4).toString('hex')}`;
  const databaseUrl = new URL(TEST_DATABASE_URL);
  databaseUrl.pathname = `/${database}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  let v2Dir: string;
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    const v1 = tinyModel(3);
    const v1Dir = await saveTinyCheckpoint(v1, root, 'tiny-v1');
    v1.dispose();
    const v2 = tinyModel(4);
    v2Dir = await saveTinyCheckpoint(v2, root, 'tiny-v2');
    v2.dispose();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: databaseUrl.toString(),
      CORGI_DATA_DIR: join(root, 'data'),
      CORGI_BACKEND: 'wasm',
    };
    // One after the other: the first applies the migrations and registers v1 as the live version.
    a = await startServe(v1Dir, env);
    b = await startServe(v1Dir, env);
  }, 240_000);

  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all([stop(a), stop(b)]);
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    await admin.end();
    rmSync(root, { recursive: true, force: true });
  });

  function openSocket(url: string): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect(url, { transports: ['websocket'], reconnection: false });
      sockets.push(socket);
      socket.once('connect', () => resolve(socket));
      socket.once('connect_error', reject);
    });
  }

  /** The policy version a fresh session on `socket` starts its first attempt with. */
  function sessionVersion(socket: Socket): Promise<string> {
    return new Promise((resolve) => {
      socket.once('attempt:start', (event: { policyVersion: string }) => resolve(event.policyVersion));
      socket.emit('session:start', {
        prompt: 'A dog.',
        constraints: [{ id: 'punctuation:no_comma' }],
        maxAttempts: 1,
        sampling: { maxTokens: 4, seed: 1 },
      });
    });
  }

  it('links both processes through the adapter, and a promotion through one reaches the clients of both', async () => {
    // Each process holds a LISTEN on the adapter's channel of this database.
    await expect
      .poll(
        async () =>
          (
            await admin.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query = 'LISTEN "corgi_io#/"'`,
              [database],
            )
          ).rows[0].n,
        { timeout: 20_000, interval: 250 },
      )
      .toBe(2);

    const onA = await openSocket(a!.url);
    const onB = await openSocket(b!.url);
    const swaps = { a: [] as string[], b: [] as string[] };
    onA.on('policy:swap', ({ version }: { version: string }) => swaps.a.push(version));
    onB.on('policy:swap', ({ version }: { version: string }) => swaps.b.push(version));
    expect(await sessionVersion(onA)).toBe('tiny-v1');
    expect(await sessionVersion(onB)).toBe('tiny-v1');

    const promoted = await fetch(`${a!.url}/v1/admin/promote`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ checkpoint: v2Dir, version: 'tiny-v2' }),
    });
    expect(promoted.status).toBe(200);
    expect(await promoted.json()).toMatchObject({
      version: 'tiny-v2',
      previous: 'tiny-v1',
      serving: 'tiny-v2',
    });

    // B heard of it through PostgreSQL, loaded the checkpoint and swapped; each client was told once.
    await expect.poll(() => swaps.b, { timeout: 60_000, interval: 250 }).toEqual(['tiny-v2']);
    expect(swaps.a).toEqual(['tiny-v2']);
    for (const url of [a!.url, b!.url]) {
      expect(await (await fetch(`${url}/v1/policy`)).json()).toMatchObject({ version: 'tiny-v2' });
    }
    expect(await sessionVersion(onA)).toBe('tiny-v2');
    expect(await sessionVersion(onB)).toBe('tiny-v2');
    // No late duplicates arrive through the adapter.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(swaps).toEqual({ a: ['tiny-v2'], b: ['tiny-v2'] });
  }, 180_000);
});
