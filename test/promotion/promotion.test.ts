/**
 * Policy versions, promotion, rollback, the eval gate and the trainer lock against the real
 * PostgreSQL (and the lock and in-process signal against the embedded PGlite), with tiny real
 * checkpoints so loading and checksum verification are the product's own.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/logger.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import {
  getLivePolicyVersion,
  getPolicyVersion,
  listPolicyVersions,
  markRefused,
  PolicyVersionError,
} from '../../src/db/policy-versions.ts';
import { selectBackend } from '../../src/model/tfjs/backend.ts';
import { PolicyRegistry } from '../../src/policy/policy-registry.ts';
import { gateCandidate, judgeCandidate, validationCases } from '../../src/promotion/eval-gate.ts';
import { followPromotions } from '../../src/promotion/follower.ts';
import { loadLivePolicy, promote, rollback } from '../../src/promotion/promote.ts';
import { loadLocalPolicy, policyChannel, registerCheckpoint } from '../../src/promotion/versions.ts';
import { TrainerLockedError, withTrainerLock } from '../../src/training/background/trainer-lock.ts';
import type { EvalReport } from '../../src/training/eval/eval.ts';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { useDataDir } from '../support/data-dir.ts';
import { openTestDatabase, TEST_DATABASE_URL } from '../support/database.ts';
import { linesLogger } from '../support/logger-lines.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const root = mkdtempSync(join(tmpdir(), 'corgi-promotion-'));
/** Checkpoint directories by name, each a distinct tiny model. */
const dirs: Record<string, string> = {};
useDataDir(join(root, 'data'));

async function checkpoint(name: string, seed: number): Promise<string> {
  const model = tinyModel(seed);
  dirs[name] = await saveTinyCheckpoint(model, root, name);
  model.dispose();
  return dirs[name];
}

/** Flips one byte in the middle of a checkpoint's weights: the file keeps its size, not its sha256. */
function corrupt(dir: string): void {
  const path = join(dir, 'model.safetensors');
  const bytes = readFileSync(path);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(path, bytes);
}

/** Expects `work` to fail with a PolicyVersionError of `code` whose message matches `message`. */
async function expectRefusal(
  work: Promise<unknown>,
  code: string,
  message: RegExp,
): Promise<PolicyVersionError> {
  const error = await work.then(
    () => null,
    (e: unknown) => e,
  );
  expect(PolicyVersionError.isInstance(error), `expected a PolicyVersionError, got ${error}`).toBe(true);
  const refusal = error as PolicyVersionError;
  expect(refusal.code).toBe(code);
  expect(refusal.message).toMatch(message);
  return refusal;
}

beforeAll(async () => {
  await selectBackend({ preferred: 'cpu', log: () => {} });
  for (const [i, name] of ['v1', 'v2', 'v3', 'v4', 'bad', 'changed'].entries()) await checkpoint(name, i + 1);
  corrupt(dirs.bad);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('promotion on PostgreSQL', () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('registers a checkpoint as a candidate once, and refuses its name for another checkpoint', async () => {
    const row = await registerCheckpoint(db, { dir: dirs.v1, metrics: { reward: 0.5 } });
    expect(row).toMatchObject({
      version: 'v1',
      status: 'candidate',
      checkpointPath: dirs.v1,
      metrics: { reward: 0.5 },
      promotedAt: null,
    });
    expect(row.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await registerCheckpoint(db, { dir: dirs.v1 })).toEqual(row);
    await expectRefusal(
      registerCheckpoint(db, { dir: dirs.v2, version: 'v1' }),
      'version_conflict',
      /^version: "v1" is already registered for .*v1/,
    );
  });

  it('promotes a version: it goes live, the previous one retires, and NOTIFY carries the version', async () => {
    const listener = new pg.Client(db.pool.options);
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (message) => {
      if (message.channel === policyChannel(db.schema)) heard.push(message.payload ?? '');
    });
    await listener.query(`LISTEN ${pg.escapeIdentifier(policyChannel(db.schema))}`);
    try {
      const first = await promote(db, 'v1');
      expect(first).toMatchObject({ version: 'v1', previous: null, changed: true });
      expect(first.policy).toBeUndefined(); // verified, then disposed
      // A plain string that is no registered version but a directory: registered on the way.
      const second = await promote(db, dirs.v2);
      expect(second).toMatchObject({ version: 'v2', previous: 'v1', changed: true });
      expect(await promote(db, { version: 'v2' })).toMatchObject({ version: 'v2', changed: false });

      await expect.poll(() => heard, { timeout: 5_000 }).toEqual(['v1', 'v2']);
      expect(await getLivePolicyVersion(db.pool)).toMatchObject({ version: 'v2', status: 'promoted' });
      expect(await getPolicyVersion(db.pool, 'v1')).toMatchObject({ status: 'retired' });
      expect((await getPolicyVersion(db.pool, 'v1'))!.promotedAt).not.toBeNull();
    } finally {
      await listener.end();
    }
  });

  it('refuses a corrupt checkpoint with the reason, marks the candidate refused, and keeps the live version', async () => {
    await expectRefusal(
      promote(db, { checkpoint: dirs.bad }),
      'invalid_checkpoint',
      /^checkpoint: refused "bad": .*model\.safetensors is corrupt: sha256 .*; the live version is unchanged$/,
    );
    // Not registered: a directory that never loaded leaves no row behind.
    expect(await getPolicyVersion(db.pool, 'bad')).toBeNull();

    // A registered candidate that fails is marked refused, with the reason.
    await registerCheckpoint(db, { dir: dirs.bad, version: 'bad-candidate' });
    await expectRefusal(
      promote(db, 'bad-candidate'),
      'invalid_checkpoint',
      /^version: refused "bad-candidate"/,
    );
    const refused = await getPolicyVersion(db.pool, 'bad-candidate');
    expect(refused?.status).toBe('refused');
    expect(refused?.refusedReason).toMatch(/model\.safetensors is corrupt/);

    expect((await getLivePolicyVersion(db.pool))?.version).toBe('v2');
  });

  it('refuses a checkpoint whose files changed after it was registered', async () => {
    await registerCheckpoint(db, { dir: dirs.changed });
    // Rewritten in place with another model: still a valid checkpoint, but not the registered one.
    const other = tinyModel(99);
    rmSync(dirs.changed, { recursive: true });
    await saveTinyCheckpoint(other, root, 'changed');
    other.dispose();
    await expectRefusal(promote(db, 'changed'), 'invalid_checkpoint', /changed since it was registered/);
    expect((await getLivePolicyVersion(db.pool))?.version).toBe('v2');
  });

  it('names what it could not find', async () => {
    await expectRefusal(
      promote(db, 'nope'),
      'unknown_version',
      /^version: no policy version or checkpoint directory named "nope"/,
    );
    await expectRefusal(
      promote(db, { checkpoint: join(root, 'missing') }),
      'invalid_checkpoint',
      /^checkpoint: no checkpoint directory at .*missing$/,
    );
    await expectRefusal(
      promote(db, { checkpoint: dirs.v3, version: 'v1' }),
      'version_conflict',
      /^checkpoint: version "v1" is already registered/,
    );
    await expectRefusal(markRefused(db.pool, 'v2', 'no'), 'invalid_state', /"v2" is live/);
  });

  it('rolls back one version at a time and says when there is nothing left', async () => {
    await promote(db, dirs.v3); // v1 → v2 → v3
    const back = await rollback(db, { reason: 'worse in production' });
    expect(back).toMatchObject({ version: 'v2', previous: 'v3', changed: true });
    expect(await getPolicyVersion(db.pool, 'v3')).toMatchObject({
      status: 'refused',
      refusedReason: 'worse in production',
    });
    expect(await rollback(db)).toMatchObject({ version: 'v1', previous: 'v2' });
    expect((await getPolicyVersion(db.pool, 'v2'))?.refusedReason).toMatch(/^rolled back to v1 at /);
    await expectRefusal(rollback(db), 'nothing_to_roll_back', /"v1" is the only version that has been live/);
    expect((await getLivePolicyVersion(db.pool))?.version).toBe('v1');
    // An operator may still promote a refused version explicitly.
    expect(await promote(db, 'v3')).toMatchObject({ version: 'v3', previous: 'v1' });
  });

  it('lets concurrent promotions queue and always leaves exactly one live version', async () => {
    await registerCheckpoint(db, { dir: dirs.v4 });
    const results = await Promise.allSettled([promote(db, 'v4'), promote(db, 'v2'), promote(db, 'v1')]);
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    for (const r of results) {
      // A promotion that lost the race says so instead of undoing the winner's.
      if (r.status === 'rejected') expect((r.reason as PolicyVersionError).code).toBe('invalid_state');
    }
    const live = (await listPolicyVersions(db.pool)).filter((v) => v.status === 'promoted');
    expect(live).toHaveLength(1);
  });

  it('a follower swaps the registry when another connection promotes (NOTIFY, no polling)', async () => {
    const served = await loadLocalPolicy(dirs.v1, 'v1');
    const registry = new PolicyRegistry(served);
    await promote(db, 'v1');
    const lines: string[] = [];
    const follower = await followPromotions({ db, registry, pollMs: 0, logger: linesLogger(lines) });
    // Another process, as far as PostgreSQL can tell: a pool of its own on the same schema.
    const other = await openDatabase({
      url: TEST_DATABASE_URL,
      schema: db.schema,
      migrate: false,
      poolSize: 2,
    });
    try {
      await promote(other, 'v4');
      await expect.poll(() => registry.version, { timeout: 30_000 }).toBe('v4');
      expect(lines.join('\n')).toMatch(/now serving v4 \(was v1\)/);
      await rollback(other);
      await expect.poll(() => registry.version, { timeout: 30_000 }).toBe('v1');
    } finally {
      await other.close();
      await follower.close();
      await registry.close();
    }
  });
});

describe('the eval gate', () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
    await registerCheckpoint(db, { dir: dirs.v1, version: 'worse' });
    await registerCheckpoint(db, { dir: dirs.v2, version: 'as-good' });
  });
  afterAll(async () => {
    await db?.close();
  });

  const cases = [
    { id: 'no_comma/validation/a', constraints: [{ id: 'punctuation:no_comma' }], prompt: 'Say something.' },
    { id: 'no_comma/validation/b', constraints: [{ id: 'punctuation:no_comma' }], prompt: 'Say more.' },
  ];
  // The live policy satisfies every case at once; a comma fails `punctuation:no_comma`.
  const live = new ScriptedPolicy(['A dog runs home.'], 'live-v0');

  it('refuses a regression beyond the tolerance and records why', async () => {
    const candidate = new ScriptedPolicy(['A dog, running.'], 'worse');
    const verdict = await gateCandidate({ db, candidate, live, cases, attempts: 2, tolerance: 0.05 });
    expect(verdict.passed).toBe(false);
    expect(verdict.reason).toMatch(
      /^regression on 2 validation cases \(2 attempts\) against live live-v0: success@2 0\.000 vs 1\.000 \(-1\.000\), mean_best_score 0\.000 vs 1\.000 \(-1\.000\), beyond the tolerance of 0\.05$/,
    );
    const row = await getPolicyVersion(db.pool, 'worse');
    expect(row?.status).toBe('refused');
    expect(row?.refusedReason).toBe(verdict.reason);
    expect(row?.eval).toMatchObject({
      passed: false,
      liveVersion: 'live-v0',
      candidate: { policy: 'worse', n: 2 },
    });
  });

  it('passes a candidate that does as well, recording the verdict but not refusing it', async () => {
    const candidate = new ScriptedPolicy(['A cat sleeps.'], 'as-good');
    const verdict = await gateCandidate({ db, candidate, live, cases, attempts: 2 });
    expect(verdict).toMatchObject({ passed: true, reason: null });
    const row = await getPolicyVersion(db.pool, 'as-good');
    expect(row?.status).toBe('candidate');
    expect(row?.eval).toMatchObject({ passed: true, comparisons: [{ metric: 'success@2', delta: 0 }, {}] });
  });

  it('refuses to evaluate an unregistered candidate before spending any time on it', async () => {
    const candidate = new ScriptedPolicy(['x'], 'never-registered');
    await expectRefusal(
      gateCandidate({ db, candidate, live, cases }),
      'unknown_version',
      /registerCheckpoint/,
    );
    expect(candidate.calls).toHaveLength(0);
  });

  it('judges at the tolerance boundary: a drop equal to it passes, a larger one does not', () => {
    const report = (success: number, score: number): EvalReport => ({
      policy: 'p',
      attempts: 4,
      n: 100,
      success_at: [0.1, 0.2, 0.3, success],
      mean_best_score: score,
      by_task: {},
    });
    expect(judgeCandidate(report(0.48, 0.7), report(0.5, 0.7), 0.02).passed).toBe(true);
    expect(judgeCandidate(report(0.47, 0.7), report(0.5, 0.7), 0.02).passed).toBe(false);
    expect(judgeCandidate(report(0.5, 0.6), report(0.5, 0.7), 0.02).reason).toMatch(
      /mean_best_score 0\.600 vs 0\.700/,
    );
    expect(judgeCandidate(report(0, 0), null, 0.02)).toMatchObject({ passed: true, liveVersion: null });
  });

  it('builds its cases from the validation split', () => {
    const cases = validationCases({ tasks: ['num_planning', 'concepts'], size: 6, seed: 3 });
    expect(cases).toHaveLength(6);
    for (const c of cases) expect(c.id).toMatch(/^(num_planning|concepts)\/validation\//);
    expect(validationCases({ tasks: ['num_planning', 'concepts'], size: 6, seed: 3 })).toEqual(cases);
  });
});

describe.each([
  ['PostgreSQL', () => openTestDatabase()],
  ['embedded PGlite', () => openDatabase({ url: '', dataDir: join(root, `pglite-lock-${Date.now()}`) })],
])('the trainer lock on %s', (_name, open) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('lets one trainer in at a time and releases the lock however the trainer ends', async () => {
    let release!: () => void;
    const holding = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const first = withTrainerLock(db, async () => {
      entered();
      await holding;
      return 'trained';
    });
    await inside;
    const second = await withTrainerLock(db, async () => 'also trained').catch((e: unknown) => e);
    expect(TrainerLockedError.isInstance(second)).toBe(true);
    expect((second as Error).message).toMatch(/another trainer is training/);

    // A waiting trainer gets in once the first one is done.
    const waiting = withTrainerLock(db, async () => 'after', { wait: true, pollMs: 50 });
    release();
    expect(await first).toBe('trained');
    expect(await waiting).toBe('after');

    // A trainer that throws releases the lock too.
    await expect(
      withTrainerLock(db, async () => {
        throw new Error('diverged');
      }),
    ).rejects.toThrow('diverged');
    expect(await withTrainerLock(db, async () => 'free again')).toBe('free again');
  });

  it('stops waiting when the caller aborts', async () => {
    const controller = new AbortController();
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let release!: () => void;
    const holder = withTrainerLock(db, async () => {
      entered();
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    });
    await inside;
    const waiting = withTrainerLock(db, async () => 'never', {
      wait: true,
      pollMs: 50,
      signal: controller.signal,
    });
    // Let it try (and be refused) a few times before the abort.
    await new Promise((resolve) => setTimeout(resolve, 250));
    controller.abort(new Error('shutting down'));
    await expect(waiting).rejects.toThrow('shutting down');
    release();
    await holder;
  });
});

describe('the embedded database', () => {
  let db: Database;
  beforeAll(async () => {
    db = await openDatabase({ url: '', dataDir: join(root, 'pglite-promote') });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('starts from the fallback, records it as live, and follows an in-process promotion', async () => {
    const { policy, source } = await loadLivePolicy(db, {
      fallback: () => loadLocalPolicy(dirs.v1, 'v1'),
      fallbackDir: dirs.v1,
    });
    expect(source).toBe('fallback');
    expect((await getLivePolicyVersion(db.pool))?.version).toBe('v1');
    const registry = new PolicyRegistry(policy);
    // No polling: only the in-process signal can deliver this promotion.
    const follower = await followPromotions({ db, registry, pollMs: 0, logger: silentLogger });
    try {
      await promote(db, dirs.v2);
      await expect.poll(() => registry.version, { timeout: 30_000 }).toBe('v2');

      // A restarted server serves the promoted version, not its fallback.
      const restarted = await loadLivePolicy(db, {
        fallback: () => loadLocalPolicy(dirs.v1, 'v1'),
        fallbackDir: dirs.v1,
      });
      expect(restarted.source).toBe('promoted');
      expect(restarted.policy.version).toBe('v2');
      await restarted.policy.dispose?.();
    } finally {
      await follower.close();
      await registry.close();
    }
  });
});
