/**
 * The eval gate: a candidate policy goes live only if it does not do worse than the live one on
 * the validation split. Both policies run the same cases through `evaluatePolicy` (greedy, K
 * attempts, the same session runner as everything else), and the candidate is refused when its
 * success@K or its mean best score falls more than `tolerance` below the live version's. The
 * verdict, with both reports, is stored on the candidate's `policy_versions` row (`eval`), and a
 * refusal marks it `refused` with the reason in words and numbers.
 *
 * The trainer's order: `registerCheckpoint` → `gateCandidate` → if it passed, `promote`.
 */
import type { Database } from '../db/database.ts';
import { getPolicyVersion, markRefused, PolicyVersionError, recordEval } from '../db/policy-versions.ts';
import type { ChatPolicy } from '../policy/types.ts';
import type { EvalCase } from '../tasks/cases.ts';
import { buildTaskPool } from '../tasks/pools.ts';
import { ALL_TASKS, type TaskName } from '../tasks/types.ts';
import {
  DEFAULT_EVAL_ATTEMPTS,
  type EvalReport,
  type EvaluatePolicyOptions,
  evaluatePolicy,
} from '../training/eval/eval.ts';

/** A drop smaller than this is noise on a few hundred greedy cases, not a regression. */
export const DEFAULT_GATE_TOLERANCE = 0.02;
/** Cases in the default validation set, shared evenly between the tasks. */
export const DEFAULT_GATE_CASES = 128;

export interface ValidationCasesOptions {
  /** @default ALL_TASKS (source and target tasks; the validation split holds none of the test sentences) */
  tasks?: TaskName[];
  /** @default 128 */
  size?: number;
  /** @default 0 */
  seed?: number;
}

/** The gate's cases: a deterministic pool from the validation split, as eval cases. */
export function validationCases({
  tasks = [...ALL_TASKS],
  size = DEFAULT_GATE_CASES,
  seed = 0,
}: ValidationCasesOptions = {}): EvalCase[] {
  return buildTaskPool({ tasks, split: 'validation', size, seed }).map(({ id, constraints, prompt }) => ({
    id,
    constraints,
    ...(prompt !== undefined ? { prompt } : {}),
  }));
}

/** One compared number: the candidate's, the live version's, and whether the drop is within tolerance. */
export interface GateComparison {
  metric: string;
  candidate: number;
  live: number;
  /** candidate − live */
  delta: number;
  ok: boolean;
}

/** What the gate stores in `policy_versions.eval` and returns. */
export interface GateRecord {
  passed: boolean;
  /** Why it was refused, or null. */
  reason: string | null;
  tolerance: number;
  /** The live version it was measured against, or null when nothing was live (then it passes). */
  liveVersion: string | null;
  comparisons: GateComparison[];
  candidate: EvalReport;
  live: EvalReport | null;
  evaluatedAt: string;
}

export interface GateCandidateOptions {
  db: Pick<Database, 'pool'>;
  /** The candidate, already registered under its `version` (`registerCheckpoint`). */
  candidate: ChatPolicy;
  /** The version serving now, or null when there is none. */
  live: ChatPolicy | null;
  /** Cases to compare on: `validationCases()` unless you have a reason. */
  cases: readonly EvalCase[];
  /** Largest drop (absolute, in [0, 1]) of success@K or mean best score still accepted. @default 0.02 */
  tolerance?: number;
  /** K. @default 4 */
  attempts?: number;
  /** Passed to both `evaluatePolicy` runs (concurrency, maxTokens, progress, abort). */
  evalOptions?: Omit<EvaluatePolicyOptions, 'policy' | 'cases' | 'attempts'>;
}

/**
 * Evaluates candidate and live policy on `cases`, compares them, records the verdict on the
 * candidate's row and, on a regression beyond `tolerance`, marks it `refused` with the reason.
 *
 * @throws PolicyVersionError `unknown_version` if the candidate is not registered (checked before
 *   any evaluation), RangeError for a tolerance outside [0, 1]
 * @example
 * const verdict = await gateCandidate({ db, candidate, live: registry.current(), cases: validationCases() });
 * if (verdict.passed) await promote(db, { version: candidate.version });
 */
export async function gateCandidate({
  db,
  candidate,
  live,
  cases,
  tolerance = DEFAULT_GATE_TOLERANCE,
  attempts = DEFAULT_EVAL_ATTEMPTS,
  evalOptions = {},
}: GateCandidateOptions): Promise<GateRecord> {
  if (!(tolerance >= 0 && tolerance <= 1))
    throw new RangeError(`tolerance must be in [0, 1], got ${tolerance}`);
  const row = await getPolicyVersion(db.pool, candidate.version);
  if (!row) {
    throw new PolicyVersionError(
      'unknown_version',
      `candidate: version "${candidate.version}" is not registered; call registerCheckpoint first`,
    );
  }
  const candidateReport = await evaluatePolicy({ ...evalOptions, policy: candidate, cases, attempts });
  const liveReport = live ? await evaluatePolicy({ ...evalOptions, policy: live, cases, attempts }) : null;
  const record = judgeCandidate(candidateReport, liveReport, tolerance);
  await recordEval(db.pool, candidate.version, record);
  // Only a candidate is refused: a version that has been live keeps its history (rollback target).
  if (!record.passed && row.status === 'candidate')
    await markRefused(db.pool, candidate.version, record.reason!);
  return record;
}

/**
 * The gate's decision on two reports of the same cases: refused if success@K or mean best score
 * drops by more than `tolerance` (a candidate with no live version to beat passes).
 */
export function judgeCandidate(
  candidate: EvalReport,
  live: EvalReport | null,
  tolerance: number,
): GateRecord {
  const base = { tolerance, candidate, live, evaluatedAt: new Date().toISOString() };
  if (!live) return { ...base, passed: true, reason: null, liveVersion: null, comparisons: [] };
  if (candidate.n !== live.n || candidate.attempts !== live.attempts) {
    throw new RangeError(
      `reports are not comparable: candidate ${candidate.n} cases × ${candidate.attempts} attempts, ` +
        `live ${live.n} × ${live.attempts}`,
    );
  }
  const k = candidate.attempts;
  const compare = (metric: string, c: number, l: number): GateComparison => ({
    metric,
    candidate: c,
    live: l,
    delta: c - l,
    // A hair of slack so a drop of exactly `tolerance` passes despite float rounding.
    ok: c - l >= -tolerance - 1e-9,
  });
  const comparisons = [
    compare(`success@${k}`, candidate.success_at[k - 1], live.success_at[k - 1]),
    compare('mean_best_score', candidate.mean_best_score, live.mean_best_score),
  ];
  const failed = comparisons.filter((c) => !c.ok);
  const reason =
    failed.length === 0
      ? null
      : `regression on ${candidate.n} validation cases (${k} attempts) against live ${live.policy}: ` +
        failed
          .map((c) => `${c.metric} ${c.candidate.toFixed(3)} vs ${c.live.toFixed(3)} (${c.delta.toFixed(3)})`)
          .join(', ') +
        `, beyond the tolerance of ${tolerance}`;
  return { ...base, passed: failed.length === 0, reason, liveVersion: live.policy, comparisons };
}
