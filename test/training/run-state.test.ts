/** The work-checkpoint scheme both trainers resume from: the recorded config and what may change. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCorgiConfig } from '../../src/training/rl/corgi-config.ts';
import {
  ResumeConfigError,
  RUN_STATE_FILE,
  resumedConfig,
  WorkCheckpoint,
} from '../../src/training/run-state.ts';
import { runCorgi } from '../support/run-corgi.ts';

describe('resumedConfig', () => {
  const recorded = { seed: 1, learning_rate: 0.001, tasks: ['concepts'], steps: 10, out: 'a' };
  const mayChange = new Set(['out', 'steps']);

  it('keeps the record, takes the fields that may change, and accepts a repeated equal value', () => {
    expect(resumedConfig(recorded, { out: 'b', steps: 20, seed: 1, tasks: ['concepts'] }, mayChange)).toEqual(
      {
        ...recorded,
        out: 'b',
        steps: 20,
      },
    );
    expect(resumedConfig(recorded, {}, mayChange)).toEqual(recorded);
  });

  it('refuses every other change, naming each field with both values', () => {
    const resume = () =>
      resumedConfig(recorded, { learning_rate: 0.01, tasks: ['keywords'], out: 'b' }, mayChange);
    expect(resume).toThrow(
      'learning_rate: the run being resumed was started with another config: learning_rate (recorded 0.001, given 0.01), ' +
        'tasks (recorded ["concepts"], given ["keywords"]);',
    );
    try {
      resume();
    } catch (error) {
      expect(ResumeConfigError.isInstance(error)).toBe(true);
      expect((error as ResumeConfigError).changes.map((c) => c.field)).toEqual(['learning_rate', 'tasks']);
    }
  });
});

describe('a saved work checkpoint', () => {
  const root = mkdtempSync(join(tmpdir(), 'corgi-run-state-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A run_state.json as `corgi train` writes it (the weights are not read before the config is checked). */
  function savedCorgiRun(out: string, trainer = 'corgi'): void {
    const dir = join(`${out}.work`, 'checkpoint');
    mkdirSync(dir, { recursive: true });
    const config = parseCorgiConfig({ out, policy: join(root, 'nowhere'), learning_rate: 0.001 });
    const record = { format: 1, trainer, config, logBytes: 0, state: { step: 2 } };
    writeFileSync(join(dir, RUN_STATE_FILE), JSON.stringify(record));
  }

  it('is refused by another trainer', async () => {
    const out = join(root, 'pretrained');
    savedCorgiRun(out, 'pretrain');
    await expect(new WorkCheckpoint(`${out}.work`, 'corgi').read()).rejects.toThrow(
      /a pretrain run \(format 1\), not a corgi run/,
    );
  });

  it('makes `corgi train --resume` refuse a changed flag: exit 2, naming the field', async () => {
    const out = join(root, 'run');
    savedCorgiRun(out);
    const refused = await runCorgi([
      'train',
      '--out',
      out,
      '--resume',
      '--learning-rate',
      '0.01',
      '--steps',
      '50',
    ]);
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout)).toEqual({
      field: 'learning_rate',
      error: expect.stringContaining('learning_rate (recorded 0.001, given 0.01)'),
    });
    expect(refused.stdout).not.toContain('steps'); // the budget may change on resume
  }, 60_000);
});
