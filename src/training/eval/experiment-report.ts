/**
 * The results of a CORGI experiment: per case set, each model's success@1..K and mean best score
 * from its `corgi eval --out` sessions, and paired bootstrap intervals on the differences between
 * models (CORGI − base, CORGI − single-turn) over the same cases, and how each model answers (the
 * length of its first attempt, how often a retry repeats the attempt before it word for word: greedy
 * decoding makes an unchanged retry a sign the feedback was not used). `buildExperimentReport` makes
 * the JSON, `formatExperimentMarkdown` the tables docs show.
 */
import { readFileSync } from 'node:fs';
import { type BootstrapOptions, type PairedInterval, pairedBootstrap } from './bootstrap.ts';
import type { EvalCaseResult } from './eval.ts';

/** What one case contributes: when it was solved and its best score. */
export interface CaseOutcome {
  /** The case id, or `#index` for a case without one: pairs a case across models. */
  key: string;
  /** First satisfied attempt (1-based), or null. */
  solvedAt: number | null;
  bestScore: number;
  /** Words in the first attempt (0 when generation failed before it). */
  firstWords: number;
  /** Attempts after the first. */
  retries: number;
  /** Retries whose text is the attempt before it, word for word. */
  unchangedRetries: number;
}

/** A case set with every model's outcomes on it. */
export interface ExperimentSetInput {
  name: string;
  /** What the set is, for the table. */
  label: string;
  /** Model name → its outcomes, one per case. */
  outcomes: Record<string, readonly CaseOutcome[]>;
}

export interface ModelScores {
  n: number;
  success_at: number[];
  mean_best_score: number;
  /** Mean words in the first attempt. */
  first_attempt_words: number;
  /** Retries per case, on average. */
  retries_per_case: number;
  /** Share of the retries that repeat the attempt before them word for word; null without retries. */
  unchanged_retries: number | null;
}

/** `a` − `b` on one set, each metric with its interval. */
export interface ModelComparison {
  a: string;
  b: string;
  n: number;
  success_at: PairedInterval[];
  mean_best_score: PairedInterval;
}

export interface ExperimentSetReport {
  name: string;
  label: string;
  models: Record<string, ModelScores>;
  comparisons: ModelComparison[];
}

export interface ExperimentReport {
  /** K of the evals: success@1..K. */
  attempts: number;
  bootstrap: { resamples: number; seed: number; confidence: number };
  sets: ExperimentSetReport[];
}

const wordCount = (text: string) => text.split(/\s+/).filter(Boolean).length;

/** One case's outcome from a `corgi eval --out` line. */
export function caseOutcome(
  result: Pick<EvalCaseResult, 'id' | 'index' | 'solved_at' | 'best_score' | 'attempts'>,
): CaseOutcome {
  const texts = result.attempts.map((attempt) => attempt.text.trim());
  return {
    key: result.id ?? `#${result.index}`,
    solvedAt: result.solved_at,
    bestScore: result.best_score,
    firstWords: texts.length > 0 ? wordCount(texts[0]) : 0,
    retries: Math.max(0, texts.length - 1),
    unchangedRetries: texts.filter((text, i) => i > 0 && text === texts[i - 1]).length,
  };
}

/** Every case's outcome in a `corgi eval --out` file, in file order. */
export function readCaseOutcomes(path: string): CaseOutcome[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => caseOutcome(JSON.parse(line) as EvalCaseResult));
}

const solvedWithin = (k: number) => (o: CaseOutcome) => (o.solvedAt !== null && o.solvedAt <= k ? 1 : 0);
const sum = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0);
const mean = (xs: readonly number[]) => sum(xs) / xs.length;

function scoresOf(outcomes: readonly CaseOutcome[], attempts: number): ModelScores {
  const retries = sum(outcomes.map((o) => o.retries));
  return {
    n: outcomes.length,
    success_at: Array.from({ length: attempts }, (_, i) => mean(outcomes.map(solvedWithin(i + 1)))),
    mean_best_score: mean(outcomes.map((o) => o.bestScore)),
    first_attempt_words: mean(outcomes.map((o) => o.firstWords)),
    retries_per_case: retries / outcomes.length,
    unchanged_retries: retries > 0 ? sum(outcomes.map((o) => o.unchangedRetries)) / retries : null,
  };
}

/** `b`'s outcomes in the order of `a`'s keys; throws naming the set when the cases differ. */
function pairUp(
  set: string,
  a: string,
  outA: readonly CaseOutcome[],
  b: string,
  outB: readonly CaseOutcome[],
) {
  const byKey = new Map(outB.map((o) => [o.key, o]));
  if (byKey.size !== outB.length || outA.length !== outB.length)
    throw new Error(
      `${set}: ${a} has ${outA.length} cases and ${b} ${outB.length}; they must be the same cases`,
    );
  return outA.map((o) => {
    const other = byKey.get(o.key);
    if (!other) throw new Error(`${set}: case ${o.key} was evaluated for ${a} but not for ${b}`);
    return other;
  });
}

export interface BuildExperimentReportOptions {
  sets: readonly ExperimentSetInput[];
  /** Pairs [a, b] to report a − b for, where both models have outcomes. */
  comparisons: readonly (readonly [string, string])[];
  /** K. */
  attempts: number;
  bootstrap?: BootstrapOptions;
}

/**
 * Scores and paired differences per set. A comparison is left out of a set that lacks one of its
 * models; each metric's interval resamples its own stream under `bootstrap.seed` (named by set,
 * models and metric), so adding a set or a metric leaves the others' intervals as they were.
 */
export function buildExperimentReport({
  sets,
  comparisons,
  attempts,
  bootstrap = {},
}: BuildExperimentReportOptions): ExperimentReport {
  const { resamples = 10_000, seed = 0, confidence = 0.95 } = bootstrap;
  const interval = (x: number[], y: number[], ...names: string[]) =>
    pairedBootstrap(x, y, { resamples, confidence, seed, stream: names.join('/') });
  return {
    attempts,
    bootstrap: { resamples, seed, confidence },
    sets: sets.map((set) => ({
      name: set.name,
      label: set.label,
      models: Object.fromEntries(
        Object.entries(set.outcomes).map(([model, outcomes]) => [model, scoresOf(outcomes, attempts)]),
      ),
      comparisons: comparisons
        .filter(([a, b]) => set.outcomes[a] && set.outcomes[b])
        .map(([a, b]) => {
          const outA = set.outcomes[a];
          const outB = pairUp(set.name, a, outA, b, set.outcomes[b]);
          return {
            a,
            b,
            n: outA.length,
            success_at: Array.from({ length: attempts }, (_, i) =>
              interval(
                outA.map(solvedWithin(i + 1)),
                outB.map(solvedWithin(i + 1)),
                set.name,
                a,
                b,
                `@${i + 1}`,
              ),
            ),
            mean_best_score: interval(
              outA.map((o) => o.bestScore),
              outB.map((o) => o.bestScore),
              set.name,
              a,
              b,
              'best',
            ),
          };
        }),
    })),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const points = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(1)}`;
const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;

/** `+12.0 [+5.0, +19.0]` in points (success rates) or `+0.050 [...]` (scores). */
function formatInterval({ diff, low, high }: PairedInterval, format: (x: number) => string): string {
  return `${format(diff)} [${format(low)}, ${format(high)}]`;
}

/**
 * Markdown: per set, one row per model (success@1..K, mean best score), then one row per
 * comparison with the differences and their intervals (success in percentage points); then how
 * each model answers, a row per set and model.
 */
export function formatExperimentMarkdown(report: ExperimentReport): string {
  const k = report.attempts;
  const head = Array.from({ length: k }, (_, i) => `success@${i + 1}`);
  const lines = [
    `| cases | model | n | ${head.join(' | ')} | mean best score |`,
    `|---|---|---:|${'---:|'.repeat(k)}---:|`,
  ];
  for (const set of report.sets) {
    for (const [model, s] of Object.entries(set.models)) {
      lines.push(
        `| ${set.label} | ${model} | ${s.n} | ${s.success_at.map(pct).join(' | ')} | ${s.mean_best_score.toFixed(3)} |`,
      );
    }
    for (const c of set.comparisons) {
      lines.push(
        `| ${set.label} | ${c.a} − ${c.b} | ${c.n} | ${c.success_at.map((d) => formatInterval(d, points)).join(' | ')} | ${formatInterval(c.mean_best_score, signed)} |`,
      );
    }
  }
  const { resamples, confidence, seed } = report.bootstrap;
  lines.push(
    '',
    `Differences: percentage points (scores: absolute) with ${Math.round(100 * confidence)}% paired bootstrap ` +
      `intervals over the cases (${resamples} resamples, seed ${seed}).`,
    '',
    '| cases | model | words in attempt 1 | retries per case | retries unchanged |',
    '|---|---|---:|---:|---:|',
  );
  for (const set of report.sets)
    for (const [model, s] of Object.entries(set.models))
      lines.push(
        `| ${set.label} | ${model} | ${s.first_attempt_words.toFixed(1)} | ${s.retries_per_case.toFixed(2)} | ${s.unchanged_retries === null ? '—' : pct(s.unchanged_retries)} |`,
      );
  lines.push(
    '',
    'A retry follows feedback on a missed constraint; "unchanged" means it repeats the attempt before it word for word.',
  );
  return lines.join('\n');
}

/** One training run's report: the same cases and evals, the runs trained at `seed`. */
export interface SeededReport {
  seed: number;
  report: ExperimentReport;
}

/** One set's success@K across training seeds. */
export interface SeedSpreadSet {
  name: string;
  label: string;
  /** Models in every run's report, in the first run's order. */
  models: string[];
  /** `a − b` of the comparisons in every run's report. */
  comparisons: string[];
  runs: {
    seed: number;
    /** Model → success@K. */
    success: Record<string, number>;
    /** `a − b` → its success@K difference with the interval over cases. */
    differences: Record<string, PairedInterval>;
  }[];
  /** Mean over the runs, and the lowest and highest run. */
  mean: { success: Record<string, number>; differences: Record<string, number> };
  range: { success: Record<string, [number, number]>; differences: Record<string, [number, number]> };
}

export interface SeedSpreadReport {
  attempts: number;
  seeds: number[];
  sets: SeedSpreadSet[];
}

const comparisonName = (c: ModelComparison) => `${c.a} − ${c.b}`;

/**
 * success@K of the same models on the same case sets, trained at several seeds: per run the scores and
 * the paired differences with their intervals over cases, then the mean over runs and the range. The
 * intervals over cases leave out how much a model moves from one training run to the next; the range
 * across seeds shows it. Sets, models and comparisons missing from any run are left out.
 */
export function summarizeTrainingSeeds(runs: readonly SeededReport[]): SeedSpreadReport {
  if (runs.length === 0) throw new Error('summarizeTrainingSeeds: no runs');
  const attempts = runs[0].report.attempts;
  for (const { seed, report } of runs)
    if (report.attempts !== attempts)
      throw new Error(`summarizeTrainingSeeds: seed ${seed} has K = ${report.attempts}, not ${attempts}`);
  const k = attempts - 1;
  const sets: SeedSpreadSet[] = [];
  for (const first of runs[0].report.sets) {
    const perRun = runs.map(({ report }) => report.sets.find((s) => s.name === first.name));
    if (perRun.some((s) => s === undefined)) continue;
    const present = perRun as ExperimentSetReport[];
    const models = Object.keys(first.models).filter((m) => present.every((s) => m in s.models));
    const comparisons = first.comparisons
      .map(comparisonName)
      .filter((name) => present.every((s) => s.comparisons.some((c) => comparisonName(c) === name)));
    const rows = present.map((set, i) => ({
      seed: runs[i].seed,
      success: Object.fromEntries(models.map((m) => [m, set.models[m].success_at[k]])),
      differences: Object.fromEntries(
        comparisons.map((name) => [
          name,
          set.comparisons.find((c) => comparisonName(c) === name)!.success_at[k],
        ]),
      ),
    }));
    const spread = (values: number[]) => ({
      mean: values.reduce((sum, v) => sum + v, 0) / values.length,
      range: [Math.min(...values), Math.max(...values)] as [number, number],
    });
    const success = models.map((m) => [m, spread(rows.map((r) => r.success[m]))] as const);
    const differences = comparisons.map(
      (name) => [name, spread(rows.map((r) => r.differences[name].diff))] as const,
    );
    sets.push({
      name: first.name,
      label: first.label,
      models,
      comparisons,
      runs: rows,
      mean: {
        success: Object.fromEntries(success.map(([m, s]) => [m, s.mean])),
        differences: Object.fromEntries(differences.map(([name, s]) => [name, s.mean])),
      },
      range: {
        success: Object.fromEntries(success.map(([m, s]) => [m, s.range])),
        differences: Object.fromEntries(differences.map(([name, s]) => [name, s.range])),
      },
    });
  }
  return { attempts, seeds: runs.map((r) => r.seed), sets };
}

/** Markdown: per set, a row per training seed, then the mean over seeds with the range. */
export function formatTrainingSeedsMarkdown(summary: SeedSpreadReport): string {
  const lines: string[] = [];
  for (const set of summary.sets) {
    lines.push(
      `| ${set.label} | training seed | ${[...set.models, ...set.comparisons].join(' | ')} |`,
      `|---|---:|${'---:|'.repeat(set.models.length + set.comparisons.length)}`,
    );
    for (const run of set.runs)
      lines.push(
        `| | ${run.seed} | ${[
          ...set.models.map((m) => pct(run.success[m])),
          ...set.comparisons.map((c) => formatInterval(run.differences[c], points)),
        ].join(' | ')} |`,
      );
    const ranged = (mean: number, [low, high]: [number, number], format: (x: number) => string) =>
      `${format(mean)} (${format(low)} to ${format(high)})`;
    lines.push(
      `| | mean of ${set.runs.length} | ${[
        ...set.models.map((m) => ranged(set.mean.success[m], set.range.success[m], pct)),
        ...set.comparisons.map((c) => ranged(set.mean.differences[c], set.range.differences[c], points)),
      ].join(' | ')} |`,
      '',
    );
  }
  lines.push(
    `success@${summary.attempts} per training seed; differences in percentage points with their 95% paired ` +
      'bootstrap intervals over the cases; the last row of a set is the mean over the seeds and, in ' +
      'parentheses, the lowest and the highest run.',
  );
  return lines.join('\n');
}
