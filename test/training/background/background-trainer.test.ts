import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureRuntime } from '../../../src/common/runtime-settings.ts';
import type { Database } from '../../../src/db/database.ts';
import { getLivePolicyVersion, getPolicyVersion } from '../../../src/db/policy-versions.ts';
import { createSession } from '../../../src/db/sessions.ts';
import { convertCheckpointToGguf } from '../../../src/model/gguf/checkpoint-to-gguf.ts';
import { importModel } from '../../../src/model/store/import-model.ts';
import { servingPolicyLoader } from '../../../src/policy/serving-loader.ts';
import {
  retryDelayMs,
  roundDue,
  runTrainerRound,
} from '../../../src/training/background/background-trainer.ts';
import {
  startServeTrainer,
  startTrainerWorker,
  type TrainerFlags,
  type WorkerRound,
} from '../../../src/training/background/trainer-worker.ts';
import { ProgressReporter } from '../../../src/training/progress.ts';
import type { RolloutPrompt } from '../../../src/training/rl/rollouts.ts';
import { useBackend } from '../../policy/helpers.ts';
import { saveTinyCheckpoint, tinyModel } from '../../policy/tiny-policy.ts';
import { openTestDatabase } from '../../support/database.ts';
import { linesLogger } from '../../support/logger-lines.ts';

const TOY: RolloutPrompt[] = ['dog', 'park'].map((word, i) => ({
  id: `toy/${i}`,
  task: 'toy',
  prompt: `Write about the ${word}.`,
  constraints: [{ id: 'length_constraints:number_words', kwargs: { relation: 'less than', num_words: 2 } }],
}));

let db: Database;
let root: string;
let base: string;
beforeAll(async () => {
  configureRuntime({ llamaThreads: 1 });
  await useBackend('wasm');
  db = await openTestDatabase();
  root = mkdtempSync(join(tmpdir(), 'corgi-background-trainer-'));
  const model = tinyModel(7);
  base = await saveTinyCheckpoint(model, root, 'tiny-base');
  model.dispose();
});
afterAll(async () => {
  await db.close();
  rmSync(root, { recursive: true, force: true });
});

describe('the background trainer', () => {
  it('is due once enough live sessions came in since the last version', async () => {
    expect(await roundDue(db, { minSessions: 2 })).toMatchObject({ due: false, newSessions: 0 });
    for (let i = 0; i < 2; i++)
      await createSession(db.pool, {
        source: 'live',
        prompt: 'Write about the dog.',
        constraints: TOY[0]!.constraints,
        maxAttempts: 2,
        sampling: {},
      });
    expect(await roundDue(db, { minSessions: 2 })).toMatchObject({ due: true, newSessions: 2 });
    expect(await roundDue(db, { minSessions: 3, periodMinutes: 0 })).toMatchObject({ due: true });
    // Fewer than minSessions, but no version was ever trained: the period has long passed.
    expect(await roundDue(db, { minSessions: 3 })).toMatchObject({ due: true, since: null });
  });

  it('trains from the live version, gates the candidate, promotes it and records every step', async () => {
    const round = await runTrainerRound({
      db,
      checkpointDir: join(root, 'checkpoints'),
      dataDir: root,
      fallbackPolicy: base,
      train: {
        budget: 'steps',
        steps: 2,
        prompts_per_step: 2,
        group_size: 4,
        attempts: 2,
        max_tokens: 8,
        lora_r: 2,
        production_fraction: 0.5,
      },
      prompts: TOY,
      gate: {
        cases: TOY.map(({ id, constraints, prompt }) => ({ id, constraints, prompt })),
        tolerance: 1,
        attempts: 2,
      },
      progress: new ProgressReporter(() => {}, false),
      now: () => new Date('2026-11-23T12:00:00Z'),
    });
    expect(round.version).toBe('corgi-20261123T120000');
    expect(round.parentVersion).toBeNull();
    expect(round.promoted).toBe(true);
    const live = await getLivePolicyVersion(db.pool);
    expect(live?.version).toBe(round.version);
    const row = await getPolicyVersion(db.pool, round.version);
    expect(row?.metrics).toMatchObject({ steps: 2 });
    expect(row?.eval).toMatchObject({ passed: true });
    const { rows } = await db.pool.query(
      'SELECT step, metrics FROM training_steps WHERE run_id = $1 ORDER BY step',
      [round.version],
    );
    expect(rows.map((r) => r.step)).toEqual([1, 2]);
    expect(rows[0].metrics).toHaveProperty('success_at');
    // The logged live sessions' prompts joined the pool (half of each step's prompts).
    expect(await roundDue(db, { minSessions: 1 })).toMatchObject({ due: false, newSessions: 0 });
  }, 180_000);
});

describe('the background trainer on a GGUF store model', () => {
  it('trains an adapter checkpoint naming its base, which a server loads, and trains it further next round', async () => {
    const dataDir = join(root, 'store-data');
    const gguf = join(root, 'tiny.gguf');
    await convertCheckpointToGguf(base, gguf, { type: 'f32' });
    const { path: storeGguf, sha256 } = await importModel(gguf, { name: 'tiny-gguf', dataDir });
    await db.pool.query('TRUNCATE policy_versions, training_steps CASCADE');
    const round = (now: string) =>
      runTrainerRound({
        db,
        dataDir,
        checkpointDir: join(root, 'gguf-checkpoints'),
        fallbackPolicy: dirname(storeGguf), // the store directory, as `corgi serve` passes it
        train: {
          budget: 'steps',
          steps: 1,
          prompts_per_step: 2,
          group_size: 4,
          attempts: 2,
          max_tokens: 8,
          lora_r: 2,
        },
        prompts: TOY,
        gate: {
          cases: TOY.map(({ id, constraints, prompt }) => ({ id, constraints, prompt })),
          tolerance: 1,
          attempts: 1,
        },
        progress: new ProgressReporter(() => {}, false),
        now: () => new Date(now),
      });
    const first = await round('2026-12-01T00:00:00Z');
    expect(first.promoted).toBe(true);
    const dir = join(root, 'gguf-checkpoints', first.version);
    // The adapter alone: PEFT files, llama.cpp's adapter GGUF and the base by store name and sha256.
    for (const file of ['adapter_model.safetensors', 'adapter_config.json', 'adapter.gguf'])
      expect(existsSync(join(dir, file))).toBe(true);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    expect(JSON.parse(readFileSync(join(dir, 'base_model.json'), 'utf8'))).toMatchObject({
      name: 'tiny-gguf',
      sha256,
    });
    expect(first.summary.last?.mismatch_abs_logprob).toBeGreaterThan(0);

    // What a server does on promotion: the adapter in a context on the base from the store.
    const policy = await servingPolicyLoader({ cacheDir: join(dataDir, 'cache', 'gguf'), dataDir })(
      dir,
      first.version,
    );
    try {
      expect(policy.modelPath).toBe(storeGguf);
      expect(policy.adapters.map((a) => a.path)).toEqual([join(dir, 'adapter.gguf')]);
    } finally {
      await policy.dispose();
    }

    // The next round starts from the live adapter and trains it further (same rank, new values).
    const second = await round('2026-12-01T01:00:00Z');
    expect(second.parentVersion).toBe(first.version);
    const next = join(root, 'gguf-checkpoints', second.version);
    expect(JSON.parse(readFileSync(join(next, 'adapter_config.json'), 'utf8'))).toMatchObject({ r: 2 });
    expect(
      readFileSync(join(next, 'adapter_model.safetensors')).equals(
        readFileSync(join(dir, 'adapter_model.safetensors')),
      ),
    ).toBe(false);
  }, 180_000);
});

describe('failed rounds', () => {
  it('back off: a failed round is retried after backoff·2^(n−1), at most the period, not at every poll', async () => {
    expect([0, 1, 2, 3, 10].map((n) => retryDelayMs(n, { backoffSeconds: 60, periodMinutes: 60 }))).toEqual([
      0, 60_000, 120_000, 240_000, 3_600_000,
    ]);
    await createSession(db.pool, {
      source: 'live',
      prompt: 'Write about the park.',
      constraints: TOY[1]!.constraints,
      maxAttempts: 2,
    });
    const t0 = Date.parse('2026-11-24T10:00:00Z');
    const trigger = { minSessions: 1, backoffSeconds: 60 };
    expect(await roundDue(db, trigger)).toMatchObject({ due: true, retryAt: null });
    const failures = { count: 2, lastAt: t0 };
    expect(await roundDue(db, { ...trigger, failures, clock: () => t0 + 119_000 })).toMatchObject({
      due: false,
      newSessions: 1,
      retryAt: '2026-11-24T10:02:00.000Z',
    });
    expect(await roundDue(db, { ...trigger, failures, clock: () => t0 + 120_000 })).toMatchObject({
      due: true,
      retryAt: null,
    });
  });

  it('the trainer process of `corgi serve` that fails is not started again before its back-off', async () => {
    const rounds: WorkerRound[] = [];
    const lines: string[] = [];
    const worker = startTrainerWorker({
      db,
      policyDir: base,
      checkpointDir: join(root, 'worker-checkpoints'),
      minSessions: 1,
      pollSeconds: 0.1,
      backoffSeconds: 3600,
      args: ['--no-such-flag'],
      logger: linesLogger(lines),
      onRound: (round) => rounds.push(round),
    });
    try {
      const deadline = Date.now() + 120_000;
      while (rounds.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(rounds).toHaveLength(1);
      expect(rounds[0]).toMatchObject({ promoted: false, version: null });
      expect(rounds[0]!.error).toMatch(/exit code 1: .*no-such-flag/);
      expect(lines.join('\n')).toMatch(/round failed \(1 in a row\).*next try in 3600 s/);
      // Many polls later: still one round.
      await new Promise((r) => setTimeout(r, 2_000));
      expect(rounds).toHaveLength(1);
      expect(lines.filter((line) => /round started/.test(line))).toHaveLength(1);
    } finally {
      await worker.close();
    }
  }, 180_000);
});

describe("corgi serve's trainer switch", () => {
  const flags = (trainer?: boolean): TrainerFlags => ({
    ...(trainer === undefined ? {} : { trainer }),
    trainerMinSessions: 50,
    trainerPeriodMinutes: 60,
    trainerPollSeconds: 30,
    trainerNice: 19,
    trainerArgs: '',
  });
  const decide = async (options: { embedded: boolean; trainer?: boolean; env?: string; policy?: string }) => {
    const lines: string[] = [];
    const worker = startServeTrainer(
      { ...db, embedded: options.embedded },
      options.policy ?? base,
      flags(options.trainer),
      { logger: linesLogger(lines), trainerSetting: options.env, dataDir: root },
    );
    await worker?.close();
    return { on: worker !== null, log: lines.join('\n') };
  };

  it('is on by default with the embedded database, off with DATABASE_URL unless --trainer', async () => {
    expect(await decide({ embedded: true })).toMatchObject({ on: true, log: /background trainer on/ });
    expect(await decide({ embedded: false })).toMatchObject({ on: false });
    expect(await decide({ embedded: false, trainer: true })).toMatchObject({ on: true });
  });

  it('is off with --no-trainer or CORGI_TRAINER=off, and for a remote policy', async () => {
    expect(await decide({ embedded: true, trainer: false })).toMatchObject({ on: false, log: /off/ });
    expect(await decide({ embedded: true, env: 'off' })).toMatchObject({ on: false });
    expect(await decide({ embedded: false, env: 'on' })).toMatchObject({ on: true });
    expect(
      await decide({ embedded: true, trainer: true, policy: 'openai:http://127.0.0.1:1/v1#m' }),
    ).toMatchObject({
      on: false,
      log: /remote model/,
    });
  });
});
