import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTaskList } from '../../src/cli/tasks-command.ts';
import { readCasesJsonl } from '../../src/tasks/cases.ts';
import { buildTaskPool } from '../../src/tasks/pools.ts';
import { SOURCE_TASKS, TARGET_TASKS } from '../../src/tasks/types.ts';
import { runCorgi } from '../support/run-corgi.ts';

const dir = mkdtempSync(join(tmpdir(), 'corgi-tasks-command-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('corgi tasks', () => {
  it('writes a seeded pool as eval cases, the same file as buildTaskPool', async () => {
    const out = join(dir, 'target.jsonl');
    const { code, stderr } = await runCorgi([
      'tasks',
      '--tasks',
      'target',
      '--split',
      'test',
      '--size',
      '6',
      '--seed',
      '3',
      '--out',
      out,
    ]);
    expect(code, stderr).toBe(0);
    const cases = readCasesJsonl(out);
    const pool = buildTaskPool({ tasks: [...TARGET_TASKS], split: 'test', size: 6, seed: 3 });
    expect(cases.map((c) => c.id)).toEqual(pool.map((p) => p.id));
    expect(readFileSync(out, 'utf8')).not.toContain('reference');
  });

  it('refuses an unknown task and --out without --split, naming the option', async () => {
    const unknown = await runCorgi(['tasks', '--tasks', 'concepts,nope']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/--tasks.*unknown task "nope"/s);
    const noSplit = await runCorgi(['tasks', '--size', '3', '--out', join(dir, 'x.jsonl')]);
    expect(noSplit.code).not.toBe(0);
    expect(noSplit.stderr).toContain('--split: required with --out');
  });

  it('parses task lists', () => {
    expect(parseTaskList('source')).toEqual([...SOURCE_TASKS]);
    expect(parseTaskList('concepts, keywords')).toEqual(['concepts', 'keywords']);
  });
});
