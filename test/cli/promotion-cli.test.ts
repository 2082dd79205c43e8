/**
 * `corgi promote`, `corgi rollback` and `corgi versions` as an operator runs them: the real bin in
 * its own process, against a PostgreSQL database of its own (DATABASE_URL), with a follower in this
 * process that can only hear of the promotions through NOTIFY; and through `--server` against a
 * running server, the embedded mode's way.
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/logger.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { selectBackend } from '../../src/model/tfjs/backend.ts';
import { PolicyRegistry } from '../../src/policy/policy-registry.ts';
import { followPromotions, type PolicyFollower } from '../../src/promotion/follower.ts';
import { loadLivePolicy } from '../../src/promotion/promote.ts';
import { loadLocalPolicy } from '../../src/promotion/versions.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { useDataDir } from '../support/data-dir.ts';
import { TEST_DATABASE_URL } from '../support/database.ts';
import { runCorgi } from '../support/run-corgi.ts';

const root = mkdtempSync(join(tmpdir(), 'corgi-promote-cli-'));
useDataDir(join(root, 'data'));
const dirs: Record<string, string> = {};
/** A database of its own: the CLI migrates and writes the `public` schema, as in production. */
const DB_NAME = `corgi_cli_${randomBytes(5).toString('hex')}`;
const url = new URL(TEST_DATABASE_URL);
url.pathname = `/${DB_NAME}`;
const DATABASE_URL = url.toString();
/** Each CLI run starts tsx and TensorFlow.js (5–15 s on a busy two-core machine); a test runs up to four. */
const CLI_TEST_MS = 120_000;

/** The environment of a CLI run: the CPU backend (fast to start for a tiny model), DATABASE_URL as given. */
function env(databaseUrl: string | null): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {
    ...process.env,
    CORGI_BACKEND: 'cpu',
    CORGI_DATA_DIR: join(root, 'data'),
  };
  delete base.DATABASE_URL;
  return databaseUrl ? { ...base, DATABASE_URL: databaseUrl } : base;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await selectBackend({ preferred: 'cpu', log: () => {} });
  for (const [i, name] of ['v1', 'v2', 'bad'].entries()) {
    const model = tinyModel(i + 1);
    dirs[name] = await saveTinyCheckpoint(model, root, name);
    model.dispose();
  }
  const weights = join(dirs.bad, 'model.safetensors');
  const bytes = readFileSync(weights);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(weights, bytes);
  await admin(`CREATE DATABASE ${DB_NAME}`);
});
afterAll(async () => {
  await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
  rmSync(root, { recursive: true, force: true });
});

describe('corgi promote / rollback with DATABASE_URL', () => {
  let db: Database;
  let registry: PolicyRegistry;
  let follower: PolicyFollower;

  beforeAll(async () => {
    // Migrates the new database, as a server starting on it would; v1 becomes the first live version.
    db = await openDatabase({ url: DATABASE_URL, poolSize: 2 });
    const { policy } = await loadLivePolicy(db, {
      fallback: () => loadLocalPolicy(dirs.v1, 'v1'),
      fallbackDir: dirs.v1,
      logger: silentLogger,
    });
    registry = new PolicyRegistry(policy);
    follower = await followPromotions({ db, registry, pollMs: 0, logger: silentLogger });
  });
  afterAll(async () => {
    await follower?.close();
    await registry?.close();
    await db?.close();
  });

  it(
    'promotes a checkpoint directory and a server in another process swaps to it',
    async () => {
      const run = await runCorgi(['promote', dirs.v2, '--json'], { env: env(DATABASE_URL) });
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ version: 'v2', previous: 'v1', changed: true });
      await expect.poll(() => registry.version, { timeout: 30_000 }).toBe('v2');

      const again = await runCorgi(['promote', 'v2'], { env: env(DATABASE_URL) });
      expect(again.stdout).toBe('v2 is already the live version\n');
    },
    CLI_TEST_MS,
  );

  it(
    'refuses a corrupt checkpoint with the reason and a non-zero exit',
    async () => {
      const run = await runCorgi(['promote', dirs.bad], { env: env(DATABASE_URL) });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /^corgi: checkpoint: refused "bad": .*model\.safetensors is corrupt.*the live version is unchanged\n$/m,
      );
      expect(registry.version).toBe('v2');
    },
    CLI_TEST_MS,
  );

  it(
    'rolls back, and lists the versions',
    async () => {
      const run = await runCorgi(['rollback', '--reason', 'cli test'], { env: env(DATABASE_URL) });
      expect(run.code).toBe(0);
      expect(run.stdout).toBe('v1 is live (was v2); servers swap at their next attempt boundary\n');
      await expect.poll(() => registry.version, { timeout: 30_000 }).toBe('v1');

      const listed = await runCorgi(['versions', '--json'], { env: env(DATABASE_URL) });
      const versions = JSON.parse(listed.stdout) as {
        version: string;
        status: string;
        refusedReason: string | null;
      }[];
      expect(versions.map((v) => [v.version, v.status, v.refusedReason])).toEqual([
        ['v2', 'refused', 'cli test'],
        ['v1', 'promoted', null],
      ]);
    },
    CLI_TEST_MS,
  );
});

describe('without DATABASE_URL', () => {
  it(
    'explains that the embedded database lives in the server and how to promote through it',
    async () => {
      const run = await runCorgi(['promote', 'v2'], { env: env(null) });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        /DATABASE_URL is not set, and the embedded database lives inside the `corgi serve` process/,
      );
      expect(run.stderr).toMatch(/corgi promote <target> --server http:\/\/127\.0\.0\.1:3000/);
      expect(run.stderr).toMatch(/POST \/v1\/admin\/promote/);
    },
    CLI_TEST_MS,
  );

  describe('--server', () => {
    let db: Database;
    let registry: PolicyRegistry;
    let follower: PolicyFollower;
    let server: RunningServer;

    beforeAll(async () => {
      db = await openDatabase({ url: '', dataDir: join(root, 'pglite'), poolSize: 1 });
      const { policy } = await loadLivePolicy(db, {
        fallback: () => loadLocalPolicy(dirs.v1, 'v1'),
        fallbackDir: dirs.v1,
        logger: silentLogger,
      });
      registry = new PolicyRegistry(policy);
      follower = await followPromotions({ db, registry, logger: silentLogger });
      server = await startServer({ db, policy: registry, port: 0, promotions: follower });
    });
    afterAll(async () => {
      await server?.close();
      await follower?.close();
      await registry?.close();
      await db?.close();
    });

    it(
      'promotes and rolls back through the running server',
      async () => {
        const promoted = await runCorgi(['promote', dirs.v2, '--server', server.url, '--json'], {
          env: env(null),
        });
        expect(promoted.code).toBe(0);
        expect(JSON.parse(promoted.stdout)).toMatchObject({ version: 'v2', previous: 'v1', changed: true });
        expect(registry.version).toBe('v2');

        const refused = await runCorgi(['promote', dirs.bad, '--server', server.url], { env: env(null) });
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/^corgi: checkpoint: refused "bad": .*model\.safetensors is corrupt/);

        const back = await runCorgi(['rollback', '--server', server.url, '--json'], { env: env(null) });
        expect(JSON.parse(back.stdout)).toMatchObject({ version: 'v1', previous: 'v2' });
        expect(registry.version).toBe('v1');
      },
      CLI_TEST_MS,
    );
  });
});
