/**
 * Paired bootstrap intervals for comparing two policies on the same eval cases (Efron &
 * Tibshirani, "An Introduction to the Bootstrap", ch. 13: the percentile interval). The cases are
 * resampled with replacement, each resample keeping a case's two outcomes together, so the
 * interval reflects how much the difference depends on which cases were drawn; the variation the
 * two models share (hard cases fail for both) cancels, which makes it tighter than comparing two
 * separate intervals.
 */
import { createRng } from '../../common/random.ts';

/**
 * The p-th percentile (0–100) of `values`, linearly interpolated between the closest ranks
 * (NumPy's default method), so p50 of [1, 2, 3, 4] is 2.5 and p99 of a small sample sits
 * between its two largest values instead of jumping to the maximum.
 * @returns NaN for an empty list
 */
export function percentile(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in 0..100, got ${p}`);
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

export interface BootstrapOptions {
  /** Resamples drawn. @default 10000 */
  resamples?: number;
  /** Seeds the resampling: the same seed gives the same interval. @default 0 */
  seed?: number;
  /** Coverage of the interval. @default 0.95 */
  confidence?: number;
  /** Names an independent resampling stream under the same seed (one per metric, say). @default '' */
  stream?: string;
}

/** The observed difference of means and its percentile interval. */
export interface PairedInterval {
  /** mean(a) − mean(b) on the cases as given. */
  diff: number;
  low: number;
  high: number;
}

/**
 * The difference mean(a) − mean(b) of paired per-case values (a[i] and b[i] are the same case)
 * with its bootstrap percentile interval.
 *
 * @example pairedBootstrap(corgiSolved, baseSolved, { seed: 0 }) // { diff: 0.12, low: 0.05, high: 0.19 }
 * @throws RangeError when the lists differ in length or are empty, or an option is out of range
 */
export function pairedBootstrap(
  a: readonly number[],
  b: readonly number[],
  { resamples = 10_000, seed = 0, confidence = 0.95, stream = '' }: BootstrapOptions = {},
): PairedInterval {
  if (a.length !== b.length)
    throw new RangeError(
      `pairedBootstrap: the two lists must pair up, got ${a.length} and ${b.length} values`,
    );
  if (a.length === 0) throw new RangeError('pairedBootstrap: no cases');
  if (!Number.isInteger(resamples) || resamples < 1)
    throw new RangeError(`pairedBootstrap: resamples must be a whole number ≥ 1, got ${resamples}`);
  if (!(confidence > 0 && confidence < 1))
    throw new RangeError(`pairedBootstrap: confidence must be in (0, 1), got ${confidence}`);
  const n = a.length;
  const diffs = a.map((x, i) => x - b[i]);
  const rng = createRng(seed, 'paired-bootstrap', stream);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += diffs[Math.floor(rng.next() * n)];
    means[r] = sum / n;
  }
  const tail = (100 * (1 - confidence)) / 2;
  const sample = Array.from(means);
  return {
    diff: diffs.reduce((s, d) => s + d, 0) / n,
    low: percentile(sample, tail),
    high: percentile(sample, 100 - tail),
  };
}
