/**
 * The eval harness: success@k of a policy on a set of constrained cases (`corgi eval`).
 *
 * Every case is one session through `runSession` (the same loop the server and the trainer's
 * rollouts use) with up to K attempts, decoded greedily by default. Greedy decoding makes attempt j
 * of a K-attempt session identical to attempt j of a k-attempt session for any k ≥ j, so one run
 * with K attempts gives every success@k at once: a case counts for success@k when its first
 * satisfied attempt is attempt k or earlier. The session reward of the paper, the best score over
 * the attempts, is averaged as `mean_best_score`.
 *
 * With a temperature above 0 the attempts are sampled the way the server samples a user's session,
 * and the same argument holds: case i's attempt j draws with the seed
 * `samplingSeed + i·MAX_ATTEMPTS_LIMIT + j − 1` whatever K is, so a rerun redraws the same sessions.
 * A greedy model that repeats its last attempt after feedback gains nothing from retries; sampling
 * measures what retries are worth when they differ.
 *
 * Cases run concurrently (`concurrency` sessions in flight): llama.cpp decodes the concurrent
 * `generate` calls' sequences as one batch per step, so this is what makes eval fast.
 *
 * Report fields (the `corgi eval --json` contract):
 * | field             | meaning                                                                   |
 * |-------------------|---------------------------------------------------------------------------|
 * | `policy`          | the policy's version (a checkpoint's directory name)                      |
 * | `attempts`        | K, the attempts each session was allowed                                  |
 * | `n`               | cases evaluated                                                           |
 * | `success_at`      | `success_at[k-1]`: fraction of cases fully satisfied within k attempts    |
 * | `mean_best_score` | mean over cases of the best checker score reached in the K attempts       |
 * | `by_task`         | `{task: {n, success_at, mean_best_score}}`, tasks in alphabetical order    |
 */
import type { CheckResult } from '../../checkers/registry.ts';
import { parseConstraints } from '../../checkers/registry.ts';
import type { ConstraintSpec, ParsedConstraint } from '../../checkers/types.ts';
import { runConcurrently } from '../../common/concurrency.ts';
import { createRng } from '../../common/random.ts';
import type { ChatPolicy, FinishReason, SamplingOptions } from '../../policy/types.ts';
import { fixedPolicy } from '../../policy/types.ts';
import { MAX_ATTEMPTS_LIMIT, runSession } from '../../session/session-runner.ts';
import type { EvalCase } from '../../tasks/cases.ts';
import { taskOfCaseId } from '../../tasks/cases.ts';
import { formatDuration } from '../progress.ts';

/** The paper's setting: one answer and three retries. */
export const DEFAULT_EVAL_ATTEMPTS = 4;
/** Sessions in flight: enough to fill the scheduler's batch, well under its 64-row default. */
export const DEFAULT_EVAL_CONCURRENCY = 32;
/** Room for a sentence or a short paragraph; the paper's tasks need one sentence or one word. */
export const DEFAULT_EVAL_MAX_TOKENS = 64;

/** success@k and mean best score over a group of cases. */
export interface EvalScores {
  n: number;
  /** `success_at[k-1]`: fraction of the cases fully satisfied within k attempts. */
  success_at: number[];
  mean_best_score: number;
}

/** What `corgi eval --json` prints (contract: names and shapes are fixed). */
export interface EvalReport extends EvalScores {
  policy: string;
  attempts: number;
  by_task: Record<string, EvalScores>;
  /** Present only when the attempts were sampled (`--temperature` > 0). */
  temperature?: number;
}

/** One attempt of a case's session, as `--out` writes it. */
export interface EvalAttempt {
  attempt: number;
  text: string;
  score: number;
  ok: boolean;
  /** The checker's feedback (null when satisfied); the next user turn is built from it. */
  feedback: string | null;
  finish_reason: FinishReason;
}

/** One case's session, as `onCase` receives it and `--out` writes it. */
export interface EvalCaseResult {
  /** Position in the evaluated list. */
  index: number;
  id?: string;
  task: string;
  /** The first user turn the model saw. */
  instruction: string;
  constraints: ConstraintSpec[];
  ok: boolean;
  /** The first satisfied attempt (1-based), or null. */
  solved_at: number | null;
  best_score: number;
  attempts: EvalAttempt[];
  /** Set when generation failed (a prompt longer than the context, say): the case counts as unsolved. */
  error?: string;
}

/** Reported after each finished case. */
export interface EvalProgress {
  done: number;
  total: number;
  /** success@1..K over the cases done so far. */
  success_at: number[];
  mean_best_score: number;
  /** Cases whose generation failed so far. */
  errors: number;
  elapsedSeconds: number;
  /** Seconds left at the rate so far. */
  etaSeconds: number;
}

export interface EvaluatePolicyOptions {
  /** Evaluated as is; its `version` becomes the report's `policy`. */
  policy: ChatPolicy;
  cases: readonly EvalCase[];
  /** K, attempts per session, 1–10. @default 4 */
  attempts?: number;
  /** Sessions in flight at once. @default 32 */
  concurrency?: number;
  /** Upper bound on generated tokens per attempt. @default 64 */
  maxTokens?: number;
  /** Softmax temperature of every attempt; 0 decodes greedily. @default 0 */
  temperature?: number;
  /** Seeds the draws when `temperature` > 0 (see the module comment). @default 0 */
  samplingSeed?: number;
  /** Called after each finished case, in completion order. */
  onProgress?: (progress: EvalProgress) => void;
  /** Called with each finished case's session, in completion order (`index` gives its position). */
  onCase?: (result: EvalCaseResult) => void;
  /** Aborting stops the sessions in flight, starts no more, and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Milliseconds clock, for tests. @default performance.now */
  now?: () => number;
}

/**
 * Runs every case as a K-attempt session (greedy unless `temperature` > 0) and reports success@1..K,
 * overall and per task; a sampled run's report ends with its `temperature`. A case's task is
 * `taskOfCaseId(id)`, else its constraint ids joined with `+`.
 *
 * @throws RangeError for options out of range or no cases; ConstraintError naming
 *   `cases[i].constraints...` for an invalid case
 * @example
 * const report = await evaluatePolicy({ policy, cases: readCasesJsonl('cases.jsonl'), attempts: 4 });
 * report.success_at; // [0.31, 0.42, 0.47, 0.5]
 */
export async function evaluatePolicy({
  policy,
  cases,
  attempts = DEFAULT_EVAL_ATTEMPTS,
  concurrency = DEFAULT_EVAL_CONCURRENCY,
  maxTokens = DEFAULT_EVAL_MAX_TOKENS,
  temperature = 0,
  samplingSeed = 0,
  onProgress,
  onCase,
  signal,
  now = () => performance.now(),
}: EvaluatePolicyOptions): Promise<EvalReport> {
  checkInteger('attempts', attempts, 1, MAX_ATTEMPTS_LIMIT);
  checkInteger('concurrency', concurrency, 1);
  checkInteger('maxTokens', maxTokens, 1);
  if (!(Number.isFinite(temperature) && temperature >= 0))
    throw new RangeError(`temperature must be a number ≥ 0, got ${temperature}`);
  checkInteger('samplingSeed', samplingSeed, 0);
  if (cases.length === 0) throw new RangeError('cases: expected at least one case to evaluate');
  // Validate every case before the first generation, so a bad one fails fast, not hours in.
  const parsed = cases.map((item, i) => parseConstraints(item.constraints, `cases[${i}].constraints`));

  const results: EvalCaseResult[] = new Array(cases.length);
  const finished: EvalCaseResult[] = []; // in completion order, for the running numbers
  const started = now();
  await runConcurrently(
    cases.length,
    concurrency,
    async (index, taskSignal) => {
      const sampling: SamplingOptions =
        temperature > 0
          ? { temperature, maxTokens, seed: samplingSeed + index * MAX_ATTEMPTS_LIMIT }
          : { temperature: 0, maxTokens };
      const result = await evaluateCase(policy, cases[index], parsed[index], index, {
        attempts,
        sampling,
        signal: taskSignal,
      });
      if (taskSignal.aborted) return; // a cancelled session is not a result
      results[index] = result;
      finished.push(result);
      onCase?.(result);
      if (onProgress) {
        const done = finished.length;
        const { success_at, mean_best_score } = scoreGroup(finished, attempts);
        const elapsedSeconds = (now() - started) / 1000;
        onProgress({
          done,
          total: cases.length,
          success_at,
          mean_best_score,
          errors: finished.filter((r) => r.error !== undefined).length,
          elapsedSeconds,
          etaSeconds: (elapsedSeconds / done) * (cases.length - done),
        });
      }
    },
    signal,
  );
  signal?.throwIfAborted();
  const report = buildReport(policy.version, attempts, results);
  // Greedy reports keep the contract's exact fields; a sampled one says so.
  return temperature > 0 ? { ...report, temperature } : report;
}

/** Builds the report from finished cases (exported for callers that merge partial runs). */
export function buildReport(
  policy: string,
  attempts: number,
  results: readonly EvalCaseResult[],
): EvalReport {
  const groups = new Map<string, EvalCaseResult[]>();
  for (const result of results) {
    const group = groups.get(result.task) ?? [];
    group.push(result);
    groups.set(result.task, group);
  }
  const by_task: Record<string, EvalScores> = {};
  for (const task of [...groups.keys()].sort()) by_task[task] = scoreGroup(groups.get(task)!, attempts);
  // Key order follows the contract: policy, attempts, n, success_at, mean_best_score, by_task.
  return { policy, attempts, ...scoreGroup(results, attempts), by_task };
}

/** n, success@1..K and mean best score of a group of cases. */
function scoreGroup(results: readonly EvalCaseResult[], attempts: number): EvalScores {
  const n = results.length;
  const success_at = Array.from({ length: attempts }, (_, k) =>
    n === 0 ? 0 : results.filter((r) => r.solved_at !== null && r.solved_at <= k + 1).length / n,
  );
  const mean_best_score = n === 0 ? 0 : results.reduce((sum, r) => sum + r.best_score, 0) / n;
  return { n, success_at, mean_best_score };
}

/** The task a case is grouped under: from its id, else its constraint ids (`corgi:concepts`). */
export function taskOfCase(item: Pick<EvalCase, 'id' | 'constraints'>): string {
  return taskOfCaseId(item.id) ?? [...new Set(item.constraints.map((c) => c.id))].join('+');
}

/** One case's session, collected from the runner's parts. */
async function evaluateCase(
  policy: ChatPolicy,
  item: EvalCase,
  constraints: ParsedConstraint[],
  index: number,
  { attempts, sampling, signal }: { attempts: number; sampling: SamplingOptions; signal?: AbortSignal },
): Promise<EvalCaseResult> {
  const result: EvalCaseResult = {
    index,
    ...(item.id !== undefined ? { id: item.id } : {}),
    task: taskOfCase(item),
    instruction: '',
    constraints: item.constraints,
    ok: false,
    solved_at: null,
    best_score: 0,
    attempts: [],
  };
  const session = runSession(
    { prompt: item.prompt, constraints, maxAttempts: attempts, sampling },
    { policy: fixedPolicy(policy), signal },
  );
  for await (const part of session) {
    if (part.type === 'user-turn' && part.kind === 'instruction') result.instruction = part.text;
    else if (part.type === 'attempt:end') {
      result.attempts.push(toAttempt(part.attempt, part.text, part.check, part.finishReason));
      result.best_score = Math.max(result.best_score, part.check.score);
      if (part.check.ok && result.solved_at === null) result.solved_at = part.attempt;
    } else if (part.type === 'session:end') result.ok = part.ok;
    else if (part.type === 'error') result.error = part.message;
  }
  return result;
}

function toAttempt(
  attempt: number,
  text: string,
  check: CheckResult,
  finishReason: FinishReason,
): EvalAttempt {
  return {
    attempt,
    text,
    score: check.score,
    ok: check.ok,
    feedback: check.feedback,
    finish_reason: finishReason,
  };
}

function checkInteger(name: string, value: number, min: number, max = Number.POSITIVE_INFINITY): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.POSITIVE_INFINITY ? `≥ ${min}` : `in ${min}..${max}`;
    throw new RangeError(`${name} must be an integer ${range}, got ${value}`);
  }
}

export interface SelectCasesOptions {
  /** How many cases; unset (or more than there are) keeps them all. */
  n?: number;
  /**
   * Unset: the first `n` cases, in file order. Set: a uniform random sample of `n` cases drawn
   * with this seed (same seed and file, same cases), kept in file order.
   */
  seed?: number;
}

/**
 * The cases `corgi eval --n N [--seed S]` evaluates. The first N is the default because case
 * files are either one task each (the paper's) or already shuffled (`buildTaskPool`); a seed asks
 * for a sample when the head of a file is not representative.
 */
export function selectCases<T>(cases: readonly T[], { n, seed }: SelectCasesOptions = {}): T[] {
  if (n === undefined || n >= cases.length) return [...cases];
  if (seed === undefined) return cases.slice(0, n);
  const picked = createRng(seed, 'eval-cases').sample(
    cases.map((_, i) => i),
    n,
  );
  return picked.sort((a, b) => a - b).map((i) => cases[i]);
}

/**
 * The report as a markdown table: one row for all cases, then one per task; columns
 * success@1..K, mean best score and n.
 */
export function formatEvalTable(report: EvalReport): string {
  const header = ['task', ...report.success_at.map((_, k) => `success@${k + 1}`), 'mean best score', 'n'];
  const row = (name: string, scores: EvalScores) => [
    name,
    ...scores.success_at.map((s) => s.toFixed(3)),
    scores.mean_best_score.toFixed(3),
    String(scores.n),
  ];
  const rows = [
    row('overall', report),
    ...Object.entries(report.by_task).map(([task, scores]) => row(task, scores)),
  ];
  const widths = header.map((cell, j) => Math.max(cell.length, ...rows.map((r) => r[j].length)));
  // Numbers right-aligned, as the separator row's `---:` tells markdown renderers too.
  const line = (cells: string[]) =>
    `| ${cells.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]) : cell.padStart(widths[j]))).join(' | ')} |`;
  const separator = `|${widths.map((w, j) => (j === 0 ? `${'-'.repeat(w + 2)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), separator, ...rows.map(line)].join('\n');
}

/** One progress line: `eval 120/400 | success@1..4 0.120 0.200 0.250 0.270 | best 0.613 | ...`. */
export function formatEvalProgress(p: EvalProgress): string {
  const k = p.success_at.length;
  const errors = p.errors > 0 ? ` | ${p.errors} failed` : '';
  return (
    `eval ${p.done}/${p.total} | success@${k === 1 ? '1' : `1..${k}`} ${p.success_at.map((s) => s.toFixed(3)).join(' ')}` +
    ` | best ${p.mean_best_score.toFixed(3)}${errors} | ${formatDuration(p.elapsedSeconds)} elapsed, ETA ${formatDuration(p.etaSeconds)}`
  );
}
