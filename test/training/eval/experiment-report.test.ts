/**
 * The experiment's results: scores and paired differences computed from per-case outcomes as
 * `corgi eval --out` writes them, cases paired by id, and the markdown table docs show.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildExperimentReport,
  type CaseOutcome,
  formatExperimentMarkdown,
  formatTrainingSeedsMarkdown,
  readCaseOutcomes,
  summarizeTrainingSeeds,
} from '../../../src/training/eval/experiment-report.ts';

const outcome = (
  key: string,
  solvedAt: number | null,
  bestScore: number,
  answers: Partial<Pick<CaseOutcome, 'firstWords' | 'retries' | 'unchangedRetries'>> = {},
): CaseOutcome => ({ key, solvedAt, bestScore, firstWords: 10, retries: 0, unchangedRetries: 0, ...answers });

// Four cases, K = 2. base solves one at attempt 1; corgi solves that one and one more at attempt 2.
const base = [outcome('a', 1, 1), outcome('b', null, 0.5), outcome('c', null, 0), outcome('d', null, 0.5)];
const corgi = [
  outcome('d', null, 0.5, { firstWords: 4, retries: 1, unchangedRetries: 1 }),
  outcome('c', null, 0.2, { firstWords: 6, retries: 1, unchangedRetries: 0 }),
  outcome('b', 2, 1, { firstWords: 8, retries: 1, unchangedRetries: 0 }),
  outcome('a', 1, 1, { firstWords: 6 }),
];

const tmp = mkdtempSync(join(tmpdir(), 'experiment-report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('buildExperimentReport', () => {
  const report = buildExperimentReport({
    sets: [{ name: 'target', label: 'target tasks', outcomes: { base, corgi } }],
    comparisons: [
      ['corgi', 'base'],
      ['corgi', 'single-turn'],
    ],
    attempts: 2,
    bootstrap: { resamples: 2000, seed: 0 },
  });
  const [set] = report.sets;

  it('scores each model: success@k within k attempts, mean best score', () => {
    expect(set.models.base).toEqual({
      n: 4,
      success_at: [0.25, 0.25],
      mean_best_score: 0.5,
      first_attempt_words: 10,
      retries_per_case: 0,
      unchanged_retries: null,
    });
    expect(set.models.corgi.success_at).toEqual([0.25, 0.5]);
    expect(set.models.corgi.mean_best_score).toBeCloseTo(0.675, 12);
  });

  it('says how each model answers: first-attempt words, retries, the share of retries left unchanged', () => {
    expect(set.models.corgi).toMatchObject({ first_attempt_words: 6, retries_per_case: 0.75 });
    expect(set.models.corgi.unchanged_retries).toBeCloseTo(1 / 3, 12);
    expect(set.models.base).toMatchObject({
      first_attempt_words: 10,
      retries_per_case: 0,
      unchanged_retries: null,
    });
  });

  it('pairs the cases by id whatever their order, and leaves out a comparison whose model is absent', () => {
    expect(set.comparisons).toHaveLength(1);
    const [c] = set.comparisons;
    expect(c).toMatchObject({ a: 'corgi', b: 'base', n: 4 });
    expect(c.success_at[0]).toEqual({ diff: 0, low: 0, high: 0 }); // the same case solved at attempt 1
    expect(c.success_at[1].diff).toBeCloseTo(0.25, 12);
    expect(c.success_at[1].low).toBe(0); // one case of four: the interval reaches no difference
    expect(c.success_at[1].high).toBeGreaterThan(0.25);
    expect(c.mean_best_score.diff).toBeCloseTo(0.175, 12);
  });

  it('refuses models evaluated on different cases, naming the set and the case', () => {
    const other = [...base.slice(0, 3), outcome('e', null, 0)];
    expect(() =>
      buildExperimentReport({
        sets: [{ name: 'source', label: 's', outcomes: { base: other, corgi } }],
        comparisons: [['corgi', 'base']],
        attempts: 2,
      }),
    ).toThrow(/source: case d was evaluated for corgi but not for base/);
    expect(() =>
      buildExperimentReport({
        sets: [{ name: 'source', label: 's', outcomes: { base: base.slice(1), corgi } }],
        comparisons: [['corgi', 'base']],
        attempts: 2,
      }),
    ).toThrow(/source: corgi has 4 cases and base 3/);
  });

  it('writes the markdown table: a row per model, a row per difference with its interval', () => {
    const markdown = formatExperimentMarkdown(report);
    const lines = markdown.split('\n');
    expect(lines[0]).toBe('| cases | model | n | success@1 | success@2 | mean best score |');
    expect(lines[1]).toBe('|---|---|---:|---:|---:|---:|');
    expect(lines[2]).toBe('| target tasks | base | 4 | 25.0% | 25.0% | 0.500 |');
    expect(lines[3]).toBe('| target tasks | corgi | 4 | 25.0% | 50.0% | 0.675 |');
    const c = report.sets[0].comparisons[0];
    const high = (100 * c.success_at[1].high).toFixed(1);
    expect(lines[4]).toMatch(
      new RegExp(
        `^\\| target tasks \\| corgi − base \\| 4 \\| \\+0\\.0 \\[\\+0\\.0, \\+0\\.0\\] \\| \\+25\\.0 \\[\\+0\\.0, \\+${high}\\] \\| \\+0\\.175 \\[`,
      ),
    );
    expect(markdown).toContain('95% paired bootstrap intervals over the cases (2000 resamples, seed 0)');
    expect(lines).toContain('| cases | model | words in attempt 1 | retries per case | retries unchanged |');
    expect(lines).toContain('| target tasks | base | 10.0 | 0.00 | — |');
    expect(lines).toContain('| target tasks | corgi | 6.0 | 0.75 | 33.3% |');
  });
});

describe('readCaseOutcomes', () => {
  it('reads `corgi eval --out` lines, keying a case without an id by its position', () => {
    const file = join(tmp, 'sessions.jsonl');
    const lines = [
      {
        index: 0,
        id: 'ifeval/test/x-1',
        task: 'ifeval',
        ok: true,
        solved_at: 2,
        best_score: 1,
        attempts: [
          { attempt: 1, text: ' A dog ran, fast. ', score: 0.5, ok: false, feedback: 'No commas.' },
          { attempt: 2, text: 'A dog ran fast.', score: 1, ok: true, feedback: null },
        ],
      },
      {
        index: 1,
        task: 'corgi:concepts',
        ok: false,
        solved_at: null,
        best_score: 0.4,
        attempts: [1, 2, 3].map((attempt) => ({
          attempt,
          text: 'The sea.',
          score: 0.4,
          ok: false,
          feedback: 'Use "boat".',
        })),
      },
      {
        index: 2,
        task: 'corgi:concepts',
        ok: false,
        solved_at: null,
        best_score: 0,
        attempts: [],
        error: 'x',
      },
    ];
    writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    expect(readCaseOutcomes(file)).toEqual([
      outcome('ifeval/test/x-1', 2, 1, { firstWords: 4, retries: 1, unchangedRetries: 0 }),
      outcome('#1', null, 0.4, { firstWords: 2, retries: 2, unchangedRetries: 2 }),
      outcome('#2', null, 0, { firstWords: 0, retries: 0, unchangedRetries: 0 }),
    ]);
  });
});

describe('summarizeTrainingSeeds', () => {
  // The same four cases; the base is the same in both runs, the trained model is not.
  const single = [outcome('a', 1, 1), outcome('b', 2, 1), outcome('c', null, 0), outcome('d', null, 0)];
  const runAt = (seed: number, corgiOutcomes: CaseOutcome[], extraSet = false) => ({
    seed,
    report: buildExperimentReport({
      sets: [
        {
          name: 'target',
          label: 'target tasks',
          outcomes: { base, 'single-turn': single, corgi: corgiOutcomes },
        },
        ...(extraSet ? [{ name: 'story', label: 'story', outcomes: { base, corgi: corgiOutcomes } }] : []),
      ],
      comparisons: [
        ['corgi', 'base'],
        ['corgi', 'single-turn'],
      ],
      attempts: 2,
      bootstrap: { resamples: 500, seed: 0 },
    }),
  });
  // Seed 0: corgi solves a and b (50%); seed 1: corgi solves a, b and c (75%).
  const seed1 = [outcome('a', 1, 1), outcome('b', 1, 1), outcome('c', 2, 1), outcome('d', null, 0)];
  const summary = summarizeTrainingSeeds([runAt(0, corgi, true), runAt(1, seed1)]);

  it('gives each seed its success@K and differences, then the mean over seeds and the range', () => {
    expect(summary.seeds).toEqual([0, 1]);
    expect(summary.sets.map((s) => s.name)).toEqual(['target']); // story is in one run only
    const [set] = summary.sets;
    expect(set.models).toEqual(['base', 'single-turn', 'corgi']);
    expect(set.comparisons).toEqual(['corgi − base', 'corgi − single-turn']);
    expect(set.runs.map((r) => r.success.corgi)).toEqual([0.5, 0.75]);
    expect(set.runs.map((r) => r.success.base)).toEqual([0.25, 0.25]);
    expect(set.runs[1].differences['corgi − base'].diff).toBeCloseTo(0.5, 12);
    expect(set.runs[0].differences['corgi − single-turn'].diff).toBeCloseTo(0, 12);
    expect(set.mean.success.corgi).toBeCloseTo(0.625, 12);
    expect(set.range.success.corgi).toEqual([0.5, 0.75]);
    expect(set.mean.differences['corgi − base']).toBeCloseTo(0.375, 12);
    expect(set.range.differences['corgi − single-turn'][0]).toBeCloseTo(0, 12);
    expect(set.range.differences['corgi − single-turn'][1]).toBeCloseTo(0.25, 12);
  });

  it('writes a row per seed and the mean row with the range', () => {
    const lines = formatTrainingSeedsMarkdown(summary).split('\n');
    expect(lines[0]).toBe(
      '| target tasks | training seed | base | single-turn | corgi | corgi − base | corgi − single-turn |',
    );
    expect(lines[2]).toMatch(/^\| \| 0 \| 25\.0% \| 50\.0% \| 50\.0% \| \+25\.0 \[/);
    expect(lines[4]).toMatch(
      /^\| \| mean of 2 \| 25\.0% \(25\.0% to 25\.0%\) \| 50\.0% \(50\.0% to 50\.0%\) \| 62\.5% \(50\.0% to 75\.0%\) \| \+37\.5 \(\+25\.0 to \+50\.0\) \| \+12\.5 \(\+0\.0 to \+25\.0\) \|$/,
    );
  });

  it('refuses runs evaluated with different K, and no runs at all', () => {
    const k4 = { seed: 2, report: { ...runAt(2, corgi).report, attempts: 4 } };
    expect(() => summarizeTrainingSeeds([runAt(0, corgi), k4])).toThrow(/seed 2 has K = 4, not 2/);
    expect(() => summarizeTrainingSeeds([])).toThrow(/no runs/);
  });
});
