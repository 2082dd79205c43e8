/**
 * Small statistics for the benchmarks: percentiles and a one-line latency summary. Kept apart
 * from the bench scripts so they can be unit-tested (test/bench/stats.test.ts).
 */
import { percentile } from '../src/training/eval/bootstrap.ts';

export { percentile };

export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** `x` rounded to `digits` decimals. */
export const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/** n, p50, p90, p99, max and mean of `values`, rounded to `digits` decimals (null fields when empty). */
export function summarize(values: readonly number[], digits = 1): LatencySummary | null {
  if (values.length === 0) return null;
  const roundTo = (x: number) => round(x, digits);
  let max = -Infinity;
  let sum = 0;
  for (const value of values) {
    if (value > max) max = value;
    sum += value;
  }
  return {
    n: values.length,
    p50: roundTo(percentile(values, 50)),
    p90: roundTo(percentile(values, 90)),
    p99: roundTo(percentile(values, 99)),
    max: roundTo(max),
    mean: roundTo(sum / values.length),
  };
}

/** The gaps between consecutive timestamps (ms): one fewer than the timestamps. */
export function gapsBetween(timestamps: readonly number[]): number[] {
  const gaps: number[] = [];
  for (let i = 1; i < timestamps.length; i++) gaps.push(timestamps[i] - timestamps[i - 1]);
  return gaps;
}
