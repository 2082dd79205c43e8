/**
 * The paired bootstrap: exact where the answer is known (no difference, a constant shift), the
 * textbook width where the spread is known, seeded, and pairing-aware (shared variation cancels).
 */
import { describe, expect, it } from 'vitest';
import { createRng } from '../../../src/common/random.ts';
import { pairedBootstrap, percentile } from '../../../src/training/eval/bootstrap.ts';

describe('pairedBootstrap', () => {
  it('gives a zero-width interval for identical outcomes and for a constant shift', () => {
    const a = [0, 1, 1, 0, 1, 0.5];
    expect(pairedBootstrap(a, a)).toEqual({ diff: 0, low: 0, high: 0 });
    const shifted = pairedBootstrap(
      a.map((x) => x + 0.25),
      a,
    );
    expect(shifted.diff).toBeCloseTo(0.25, 12);
    expect(shifted.low).toBeCloseTo(0.25, 12);
    expect(shifted.high).toBeCloseTo(0.25, 12);
  });

  it('matches the normal-theory width when the per-case differences are ±1 coin flips', () => {
    // d_i = a_i − b_i is +1 or −1 with equal odds: sd(d) = 1, so the 95% interval of the mean
    // at n = 400 is about ±1.96 / 20 = ±0.098 around the observed difference.
    const rng = createRng(3, 'coin');
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < 400; i++) {
      const heads = rng.next() < 0.5;
      a.push(heads ? 1 : 0);
      b.push(heads ? 0 : 1);
    }
    const { diff, low, high } = pairedBootstrap(a, b, { resamples: 4000, seed: 1 });
    const sd = Math.sqrt(a.reduce((s, x, i) => s + (x - b[i] - diff) ** 2, 0) / 400);
    const half = (1.96 * sd) / 20;
    expect(high - diff).toBeCloseTo(half, 1.5);
    expect(diff - low).toBeCloseTo(half, 1.5);
    expect(low).toBeLessThan(diff);
    expect(high).toBeGreaterThan(diff);
  });

  it('uses the pairing: a difference shared by every case is certain even when the cases vary', () => {
    // Scores vary a lot between cases, but a is always b + 0.1 on the same case.
    const rng = createRng(9, 'scores');
    const b = Array.from({ length: 50 }, () => rng.next() * 0.9);
    const a = b.map((x) => x + 0.1);
    const { low, high } = pairedBootstrap(a, b);
    expect(low).toBeCloseTo(0.1, 10);
    expect(high).toBeCloseTo(0.1, 10);
  });

  it('is seeded: same seed and stream, same interval; another stream, another draw', () => {
    const rng = createRng(1, 'x');
    // Continuous scores: success rates of 60 cases take few values, so two streams could tie.
    const a = Array.from({ length: 60 }, () => rng.next());
    const b = Array.from({ length: 60 }, () => rng.next());
    expect(pairedBootstrap(a, b, { seed: 7 })).toEqual(pairedBootstrap(a, b, { seed: 7 }));
    expect(pairedBootstrap(a, b, { seed: 7, stream: 'other' })).not.toEqual(
      pairedBootstrap(a, b, { seed: 7 }),
    );
  });

  it('refuses lists that do not pair up, no cases, and options out of range, naming them', () => {
    expect(() => pairedBootstrap([1, 0], [1])).toThrow(/2 and 1 values/);
    expect(() => pairedBootstrap([], [])).toThrow(/no cases/);
    expect(() => pairedBootstrap([1], [0], { resamples: 0 })).toThrow(/resamples/);
    expect(() => pairedBootstrap([1], [0], { confidence: 1 })).toThrow(/confidence/);
  });

  it('percentile interpolates between ranks as NumPy does', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([10, 0], 25)).toBe(2.5);
  });
});
