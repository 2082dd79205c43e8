/**
 * Task pools and eval case files: pools are deterministic and balanced, case files round-trip
 * in the `corgi eval` format, and the paper's five test sets in ../shared/data/corgi read.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkAll, parseConstraints } from '../../src/checkers/registry.ts';
import { storyPrompt } from '../../src/tasks/cases.ts';
import {
  ALL_TASKS,
  buildTaskPool,
  describeTaskPools,
  readCasesJsonl,
  SOURCE_TASKS,
  TARGET_TASKS,
  taskOfCaseId,
  writeCasesJsonl,
} from '../../src/tasks/pools.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const sharedDir = process.env.CORGI_SHARED_DIR ?? join(repoRoot, '..', 'shared');
const corgiDir = join(sharedDir, 'data', 'corgi');
const haveShared = existsSync(join(corgiDir, 'story_generation.test.jsonl'));

const scratch = mkdtempSync(join(tmpdir(), 'corgi-tasks-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('task constants', () => {
  it('splits the tasks into disjoint source and target sets', () => {
    expect(ALL_TASKS).toEqual([...SOURCE_TASKS, ...TARGET_TASKS]);
    expect(SOURCE_TASKS.filter((task) => (TARGET_TASKS as readonly string[]).includes(task))).toEqual([]);
  });
});

describe('buildTaskPool', () => {
  it('is deterministic: the same seed gives the same pool, byte for byte', () => {
    const options = { split: 'validation' as const, size: 140, seed: 42 };
    const first = JSON.stringify(buildTaskPool(options));
    expect(JSON.stringify(buildTaskPool(options))).toBe(first);
    expect(JSON.stringify(buildTaskPool({ ...options, seed: 43 }))).not.toBe(first);
  });

  it('shares the size evenly between tasks and mixes them', () => {
    const pool = buildTaskPool({ tasks: [...SOURCE_TASKS], split: 'train', size: 103, seed: 1 });
    expect(pool).toHaveLength(103);
    const counts = SOURCE_TASKS.map((task) => pool.filter((instance) => instance.task === task).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    // Mixed, not in task blocks: the first 25 instances hold more than one task.
    expect(new Set(pool.slice(0, 25).map((instance) => instance.task)).size).toBeGreaterThan(1);
    expect(new Set(pool.map((instance) => instance.id)).size).toBe(103);
  });

  it('keeps train and test pools on disjoint documents', () => {
    const train = buildTaskPool({ split: 'train', size: 140, seed: 3 });
    const test = buildTaskPool({ split: 'test', size: 140, seed: 3 });
    const trainDocs = new Set(train.map((instance) => instance.source.docId));
    expect(test.filter((instance) => trainDocs.has(instance.source.docId))).toEqual([]);
    for (const instance of test) expect(checkAll(instance.reference, instance.constraints).ok).toBe(true);
  });

  it('refuses a pool the split cannot fill, naming the task', () => {
    expect(() => buildTaskPool({ tasks: ['sentiment'], split: 'test', size: 5000, seed: 0 })).toThrow(
      /task "sentiment" has only \d+ instances in the test split/,
    );
  });

  it('validates its options', () => {
    expect(() =>
      buildTaskPool({ tasks: ['nope' as 'sentiment'], split: 'test', size: 1, seed: 0 }),
    ).toThrow();
    expect(() => buildTaskPool({ split: 'test', size: -1, seed: 0 })).toThrow();
    expect(buildTaskPool({ split: 'test', size: 0, seed: 0 })).toEqual([]);
  });
});

describe('describeTaskPools', () => {
  it('counts instances per task and split, exactly where every sentence was examined', () => {
    const rows = describeTaskPools({ splits: ['validation'], sampleSize: 200 });
    expect(rows.map((row) => row.task)).toEqual([...ALL_TASKS]);
    for (const row of rows) {
      expect(row.kind).toBe((SOURCE_TASKS as readonly string[]).includes(row.task) ? 'source' : 'target');
      expect(row.examined).toBe(200);
      expect(row.exact).toBe(false);
      expect(row.available).toBeGreaterThan(row.sentences / 10);
      expect(row.available).toBeLessThanOrEqual(row.sentences);
      expect(row.dropped).toBe(0);
    }
    const [exact] = describeTaskPools({
      splits: ['validation'],
      tasks: ['word_count'],
      sampleSize: Infinity,
    });
    expect(exact).toMatchObject({ exact: true, examined: exact.sentences });
  });
});

describe('eval case files', () => {
  it('round-trip through writeCasesJsonl and readCasesJsonl in the corgi eval format', () => {
    const pool = buildTaskPool({ split: 'test', size: 14, seed: 2 });
    const path = join(scratch, 'nested', 'cases.jsonl');
    expect(writeCasesJsonl(pool, path)).toBe(14);
    const lines = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    for (const [i, line] of lines.entries()) {
      expect(Object.keys(line)).toEqual(
        pool[i].prompt ? ['id', 'constraints', 'prompt'] : ['id', 'constraints'],
      );
    }
    expect(readCasesJsonl(path)).toEqual(
      pool.map(({ id, constraints, prompt }) => ({ id, constraints, ...(prompt ? { prompt } : {}) })),
    );
  });

  it('names the file, line and field of a bad case', () => {
    const path = join(scratch, 'bad.jsonl');
    writeFileSync(
      path,
      '{"constraints": [{"id": "corgi:concepts", "kwargs": {"concepts": ["dog"]}}]}\n\n{"id": "x"}\n',
    );
    expect(() => readCasesJsonl(path)).toThrow(`${path}:3: constraints: required`);
    writeFileSync(
      path,
      '{"constraints": [{"id": "length_constraints:number_words", "kwargs": {"num_words": "7"}}]}\n',
    );
    expect(() => readCasesJsonl(path)).toThrow(`${path}:1: constraints[0].kwargs.num_words`);
    writeFileSync(path, '{not json\n');
    expect(() => readCasesJsonl(path)).toThrow(`${path}:1: not valid JSON`);
  });

  it('tells the task of ours and the paper’s case ids', () => {
    expect(taskOfCaseId('concepts/test/cn03-41')).toBe('concepts');
    expect(taskOfCaseId('cmg_hard_test_3')).toBe('cmg_hard');
    expect(taskOfCaseId('story_generation_test_0')).toBe('story_generation');
    expect(taskOfCaseId(undefined)).toBeNull();
  });
});

describe.runIf(haveShared)(`the paper's test sets in ${corgiDir}`, () => {
  it.each([
    ['cmg_hard.test.jsonl', 200, 'corgi:concepts'],
    ['common_gen.test.jsonl', 400, 'corgi:concepts'],
    ['num_planning.test.jsonl', 1000, 'corgi:num_planning'],
    ['panagram.test.jsonl', 999, 'corgi:panagram'],
    ['story_generation.test.jsonl', 1000, 'corgi:no_repeat_ngram'],
  ])('reads %s: %i cases of %s', (file, count, id) => {
    const skipped: string[] = [];
    const cases = readCasesJsonl(join(corgiDir, file), {
      skipInvalid: true,
      onSkip: (error) => skipped.push(error.message),
    });
    expect(cases).toHaveLength(count);
    for (const item of cases) {
      expect(item.constraints.map((c) => c.id)).toEqual([id]);
      expect(() => parseConstraints(item.constraints)).not.toThrow();
    }
    // The one case the panagram checker refuses: "-" listed as a letter (for "e-book").
    expect(skipped).toEqual(
      file === 'panagram.test.jsonl'
        ? [expect.stringMatching(/panagram\.test\.jsonl:59: constraints\[0\]\.kwargs\.letters\[3\]/)]
        : [],
    );
  });

  it('throws on that case unless told to skip', () => {
    expect(() => readCasesJsonl(join(corgiDir, 'panagram.test.jsonl'))).toThrow(/:59: /);
  });

  it('maps a story prefix to a no-repeat-4-gram case prompted with the prefix', () => {
    const [first] = readCasesJsonl(join(corgiDir, 'story_generation.test.jsonl'));
    expect(first).toEqual({
      id: 'story_generation_test_0',
      constraints: [{ id: 'corgi:no_repeat_ngram', kwargs: { n: 4 } }],
      prompt: storyPrompt('Kate wanted to be a model.'),
    });
    expect(first.prompt).toBe('Continue the story: Kate wanted to be a model.');
  });

  it('keeps the paper’s reference answers', () => {
    const [first] = readCasesJsonl(join(corgiDir, 'num_planning.test.jsonl'));
    expect(first.reference).toMatch(/^He said, sounding/);
  });
});

describe.skipIf(haveShared)('the paper’s test sets', () => {
  it.skip(`skipped: no ${corgiDir}/story_generation.test.jsonl (set CORGI_SHARED_DIR to the shared directory)`, () => {});
});
