import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { getLivePolicyVersion, getPolicyVersion } from '../../src/db/policy-versions.ts';
import { createSession } from '../../src/db/sessions.ts';
import { roundDue, runTrainerRound } from '../../src/trainer/background-trainer.ts';
import { ProgressReporter } from '../../src/trainer/progress.ts';
import type { RolloutPrompt } from '../../src/trainer/rollouts.ts';
import { useBackend } from '../policy/helpers.ts';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { openTestDatabase } from '../support/database.ts';

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
