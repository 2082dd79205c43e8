import { describe, expect, it } from 'vitest';
import { gapsBetween, percentile, summarize } from '../../bench/stats.ts';

describe('percentile', () => {
  it('interpolates between the closest ranks as NumPy does', () => {
    expect(percentile([4, 1, 3, 2], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4], 0)).toBe(1);
    expect(percentile([1, 2, 3, 4], 100)).toBe(4);
    // numpy.percentile(range(1, 101), 99) == 99.01
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 99)).toBeCloseTo(99.01, 10);
  });

  it('does not reorder the caller’s array', () => {
    const values = [3, 1, 2];
    percentile(values, 50);
    expect(values).toEqual([3, 1, 2]);
  });

  it('returns NaN for no values and refuses p outside 0..100', () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 101)).toThrow(/0\.\.100, got 101/);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe('summarize', () => {
  it('gives n, percentiles, max and mean, rounded', () => {
    expect(summarize([10, 20, 30, 40], 1)).toEqual({ n: 4, p50: 25, p90: 37, p99: 39.7, max: 40, mean: 25 });
  });

  it('is null for no values', () => {
    expect(summarize([])).toBeNull();
  });
});

describe('gapsBetween', () => {
  it('gives the differences of consecutive timestamps', () => {
    expect(gapsBetween([5, 7, 12])).toEqual([2, 5]);
    expect(gapsBetween([5])).toEqual([]);
  });
});
