/**
 * The trainer is killed while writing a checkpoint. A real `corgi trainer --once` process trains a
 * tiny model from the live version on a database of its own and is SIGKILLed inside the real
 * checkpoint writer: a preload (test/support/checkpoint-fault.mjs) stops it at a chosen point of
 * `saveCheckpoint`, so the kill lands there on every run:
 *
 * - `mid-file`: half of model.safetensors written and fsynced, no checksums.sha256 yet;
 * - `before-rename`: every file and checksums.sha256 written and fsynced, the rename into place not done.
 *
 * A server in this process serves the live version throughout (with its promotion follower, as
 * `corgi serve` runs it). After each kill: it still serves the live version and never swapped; the
 * trainer registered no version (it registers only a checkpoint in place) and its lock is free;
 * promoting the leftover directory is refused by `corgi promote` and by `POST /v1/admin/promote`, the
 * live version unchanged. The half-written one, copied under an ordinary name, registered, and sent
 * to the gate and to promotion, cannot be loaded, and its row ends `refused`, never live.
 */

import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/logger.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { getLivePolicyVersion, listPolicyVersions } from '../../src/db/policy-versions.ts';
import { CheckpointError, verifyChecksums } from '../../src/model/checkpoint.ts';
import { PolicyRegistry } from '../../src/policy/policy-registry.ts';
import { followPromotions, type PolicyFollower } from '../../src/promotion/follower.ts';
import { loadLivePolicy, promote } from '../../src/promotion/promote.ts';
import { loadLocalPolicy, registerCheckpoint } from '../../src/promotion/versions.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { withTrainerLock } from '../../src/training/background/trainer-lock.ts';
import { useBackend } from '../policy/helpers.ts';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { useDataDir } from '../support/data-dir.ts';
import {
  corgiEnv,
  createScratchDatabase,
  killHard,
  type ScratchDatabase,
  spawnCorgi,
} from '../support/processes.ts';
import { runCorgi } from '../support/run-corgi.ts';

const FAULT_PRELOAD = fileURLToPath(new URL('../support/checkpoint-fault.mjs', import.meta.url));

/** One CORGI step on the tiniest settings: the run reaches its final checkpoint write quickly. */
const TINY_ROUND = [
  ['--budget', 'steps'],
  ['--steps', '1'],
  ['--prompts-per-step', '1'],
  ['--group-size', '2'],
  ['--attempts', '1'],
  ['--max-tokens', '4'],
  ['--pool-size', '4'],
  ['--lora-r', '2'],
  ['--gate-cases', '2'],
].flat();

const root = mkdtempSync(join(tmpdir(), 'corgi-trainer-killed-'));
const checkpointDir = join(root, 'checkpoints');
// The in-process server converts checkpoints to GGUF into the data directory the children use.
useDataDir(join(root, 'data'));
let scratch: ScratchDatabase;
let db: Database;
let registry: PolicyRegistry;
let follower: PolicyFollower;
let server: RunningServer;
let watcher: Socket;
const swaps: string[] = [];
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  await useBackend('wasm');
  scratch = await createScratchDatabase('corgi_trainer_killed');
  const model = tinyModel(11);
  const v1 = await saveTinyCheckpoint(model, root, 'tiny-v1');
  model.dispose();
  env = corgiEnv(join(root, 'data'), { DATABASE_URL: scratch.url, CORGI_BACKEND: 'wasm' });
  // The server, wired as `corgi serve` wires it: tiny-v1 becomes the first live version.
  db = await openDatabase({ url: scratch.url });
  const { policy } = await loadLivePolicy(db, {
    fallback: () => loadLocalPolicy(v1, 'tiny-v1'),
    fallbackDir: v1,
  });
  registry = new PolicyRegistry(policy);
  follower = await followPromotions({ db, registry, logger: silentLogger });
  server = await startServer({ db, policy: registry, port: 0, host: '127.0.0.1', promotions: follower });
  registry.onSwap((version) => swaps.push(version));
  // A client connected throughout: it must never be told of a swap.
  watcher = await openSocket(server.url);
  watcher.on('policy:swap', ({ version }: { version: string }) => swaps.push(`told:${version}`));
}, 120_000);

afterAll(async () => {
  watcher?.close();
  await server?.close();
  await follower?.close();
  await registry?.close();
  await db?.close();
  await scratch?.drop();
  rmSync(root, { recursive: true, force: true });
});

function openSocket(url: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(url, { transports: ['websocket'], reconnection: false });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/** The policy version of a fresh one-attempt session's attempt, once the session has ended. */
async function servedVersion(): Promise<string> {
  const socket = await openSocket(server.url);
  try {
    return await new Promise<string>((resolve, reject) => {
      let version = '';
      socket.on('attempt:start', (event: { policyVersion: string }) => {
        version = event.policyVersion;
      });
      socket.on('session:end', () => resolve(version));
      socket.on('session:error', (error: unknown) => reject(new Error(JSON.stringify(error))));
      socket.emit('session:start', {
        prompt: 'A dog.',
        constraints: [{ id: 'punctuation:no_comma' }],
        maxAttempts: 1,
        sampling: { maxTokens: 4, seed: 1 },
      });
    });
  } finally {
    socket.close();
  }
}

const post = (path: string, body: unknown) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe.each(['mid-file', 'before-rename'] as const)('the trainer is killed %s', (stage) => {
  let leftover: string;
  /** policy_versions before the trainer ran: version → status. */
  let before: Record<string, string>;
  const versionStatuses = async () =>
    Object.fromEntries((await listPolicyVersions(db.pool, { limit: 50 })).map((v) => [v.version, v.status]));

  it('dies inside the checkpoint write, leaving only its temporary directory', async () => {
    before = await versionStatuses();
    const trainer = spawnCorgi(
      [
        'trainer',
        '--once',
        '--policy',
        join(root, 'tiny-v1'),
        '--checkpoint-dir',
        checkpointDir,
        ...TINY_ROUND,
      ],
      {
        env: { ...env, CORGI_FAULT_CHECKPOINT_STAGE: stage, CORGI_FAULT_CHECKPOINT_MATCH: '^corgi-' },
        nodeArgs: ['--import', FAULT_PRELOAD],
      },
    );
    const [, dir] = await trainer.waitFor(/\[fault\] \S+: (\S+)\n/, 300_000);
    await killHard(trainer);
    expect((await trainer.exited).signal).toBe('SIGKILL');
    leftover = dir;

    // Nothing was renamed into place: the only checkpoint-like entry is the temporary directory
    // (beside the run's work directory, `<version>.work`).
    const entries = readdirSync(checkpointDir);
    expect(entries.filter((name) => !name.startsWith('.') && !name.endsWith('.work'))).toEqual([]);
    expect(entries).toContain(basename(dir));
    if (stage === 'mid-file') {
      expect(readdirSync(dir)).not.toContain('checksums.sha256');
    } else {
      // Complete to the last byte: only its name says it was never finished.
      expect(readdirSync(dir)).toContain('checksums.sha256');
      await expect(verifyChecksums(dir)).resolves.toBeUndefined();
    }
  }, 360_000);

  it('leaves the live version serving, no version registered, and the trainer lock free', async () => {
    expect(await servedVersion()).toBe('tiny-v1');
    // It registers a version only once the checkpoint is in place: nothing new, tiny-v1 still live.
    expect(await versionStatuses()).toEqual(before);
    expect(before['tiny-v1']).toBe('promoted');
    // The killed trainer's lock lived on its connection, which PostgreSQL dropped with the process.
    await expect
      .poll(() => withTrainerLock(db, async () => 'acquired').catch((error: Error) => error.message), {
        timeout: 30_000,
        interval: 250,
      })
      .toBe('acquired');
  }, 60_000);

  it('refuses to promote the leftover directory, by `corgi promote` and by the HTTP route', async () => {
    const cli = await runCorgi(['promote', leftover, '--json'], { env });
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/unfinished checkpoint/);
    expect(cli.stderr).toMatch(/the live version is unchanged/);

    const http = await post('/v1/admin/promote', { checkpoint: leftover, version: `leftover-${stage}` });
    expect(http.status).toBe(422);
    expect(await http.json()).toMatchObject({
      error: { code: 'invalid_checkpoint', message: expect.stringMatching(/unfinished checkpoint/) },
    });

    expect((await getLivePolicyVersion(db.pool))?.version).toBe('tiny-v1');
    expect(await versionStatuses()).toEqual(before);
    // Loading it directly (what `corgi serve --policy` and the gate do) is refused too: the
    // half-written one lacks files (tokenizer.json comes after the weights), the complete one by name.
    const load = loadLocalPolicy(leftover, `leftover-${stage}`);
    await expect(load).rejects.toBeInstanceOf(CheckpointError);
    if (stage === 'before-rename') await expect(load).rejects.toThrow(/unfinished checkpoint/);
  }, 120_000);

  it.runIf(stage === 'mid-file')(
    'refuses the half-written checkpoint even under an ordinary name: the gate cannot load it, its row ends refused',
    async () => {
      const copy = join(root, 'renamed-by-hand');
      cpSync(leftover, copy, { recursive: true });
      // Registered as a candidate (registration only records the directory and its digest)…
      const row = await registerCheckpoint(db, {
        dir: copy,
        version: 'renamed-by-hand',
        parentVersion: 'tiny-v1',
      });
      expect(row.status).toBe('candidate');
      // …the trainer's gate evaluates a loaded candidate, and it does not load…
      await expect(loadLocalPolicy(copy, 'renamed-by-hand')).rejects.toBeInstanceOf(CheckpointError);
      // …and promoting it, by version or by directory, is refused; the row is marked refused.
      await expect(promote(db, { version: 'renamed-by-hand' })).rejects.toThrow(/live version is unchanged/);
      const http = await post('/v1/admin/promote', { checkpoint: copy, version: 'renamed-by-hand' });
      expect(http.status).toBe(422);
      expect(await versionStatuses()).toEqual({ ...before, 'renamed-by-hand': 'refused' });
      expect((await getLivePolicyVersion(db.pool))?.version).toBe('tiny-v1');
      expect(existsSync(copy)).toBe(true);
    },
    60_000,
  );

  it('still serves the live version, and never swapped', async () => {
    expect(await servedVersion()).toBe('tiny-v1');
    expect(await (await fetch(`${server.url}/v1/policy`)).json()).toMatchObject({ version: 'tiny-v1' });
    expect(registry.version).toBe('tiny-v1');
    expect(follower.version).toBe('tiny-v1');
    expect(swaps).toEqual([]);
  }, 60_000);
});
