/**
 * Every checker's time grows at most linearly with its response, on adversarial shapes (one long
 * token, a base64 blob, many short tokens, deep punctuation, every Unicode class, long lines, many
 * paragraphs, ...). Growth, not absolute time: each case times the checker at n and at 4n
 * characters (median of 3 runs, each on a text no memo has seen) and asserts
 *   t(4n) ≤ GROWTH_BOUND · t(n) + SLACK_MS.
 * Linear work gives a ratio near 4, quadratic near 16; the slack absorbs a garbage collection on
 * a busy machine where times are a few milliseconds. A case over the bound is measured once more
 * with 5 runs before it fails, so one noisy neighbour does not fail the build.
 * (Before wink's pieces were bounded, `corgi:concepts` on one long token went 0.4 s → 6 s.)
 */
import { describe, expect, it } from 'vitest';
import { checkers, parseConstraint } from '../../src/checkers/registry.ts';
import { preloadTextModels } from '../../src/text/preload.ts';
import { ADVERSARIAL_SHAPES, GROWTH_KWARGS } from '../support/adversarial-texts.ts';

/** 16,000 → 64,000 characters: a quarter of the HTTP body limit at the top. */
const N = 16_000;
const GROWTH_BOUND = 8;
const SLACK_MS = 20;

let run = 0;

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

/** Median time of `runs` checks of fresh texts of `n` characters in `shape`. */
function timeCheck(id: string, shape: string, n: number, runs: number): number {
  const checker = checkers.get(id)!;
  const { kwargs } = parseConstraint({ id, kwargs: GROWTH_KWARGS[id] });
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    // A distinct first word per run, so no per-text memo answers for an earlier run.
    const text = `r${run++}q ${ADVERSARIAL_SHAPES[shape](n)}`;
    const started = performance.now();
    checker.check(text, kwargs as never);
    times.push(performance.now() - started);
  }
  return median(times);
}

function growth(id: string, shape: string, runs: number): { small: number; large: number } {
  timeCheck(id, shape, N, 1);
  return { small: timeCheck(id, shape, N, runs), large: timeCheck(id, shape, 4 * N, runs) };
}

describe('checker time growth on adversarial responses', () => {
  it('has typical kwargs for every registered checker', () => {
    expect(Object.keys(GROWTH_KWARGS).sort()).toEqual([...checkers.keys()].sort());
  });

  it.each([...checkers.keys()])(
    '%s grows at most linearly (t(4n) ≤ 8·t(n) + 20 ms)',
    (id) => {
      preloadTextModels();
      const over: string[] = [];
      for (const shape of Object.keys(ADVERSARIAL_SHAPES)) {
        let { small, large } = growth(id, shape, 3);
        if (large > GROWTH_BOUND * small + SLACK_MS) ({ small, large } = growth(id, shape, 5));
        if (large > GROWTH_BOUND * small + SLACK_MS) {
          over.push(`${shape}: ${small.toFixed(1)} ms at ${N} → ${large.toFixed(1)} ms at ${4 * N}`);
        }
      }
      expect(over).toEqual([]);
    },
    60_000,
  );
});
