/** The training-curves SVG: one line per run and series, on round ticks, valid XML. */
import { describe, expect, it } from 'vitest';
import { niceTicks, trainingCurvesSvg } from '../../../src/training/rl/training-curves.ts';

const step = (i: number, k: number) => ({
  step: i,
  reward: 0.2 + 0.05 * i,
  success_at: Array.from({ length: k }, (_, j) => 0.1 * i + 0.05 * j),
  kl: 0.001 * i,
  pg_tokens_total: 500 * i,
});

describe('trainingCurvesSvg', () => {
  it('draws reward, success@1 and @K, and KL for each run, with a legend entry each', () => {
    const svg = trainingCurvesSvg([
      { name: 'corgi (K=4)', steps: [1, 2, 3].map((i) => step(i, 4)) },
      { name: 'single-turn (K=1)', steps: [1, 2].map((i) => step(i, 1)) },
    ]);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    // reward 2 + success (2 for K=4, 1 for K=1) + KL 2
    expect(svg.match(/<polyline /g)).toHaveLength(7);
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2); // the @4 line and its legend
    for (const label of ['corgi (K=4) @1', 'corgi (K=4) @4', 'single-turn (K=1) @1', 'single-turn (K=1)'])
      expect(svg).toContain(`>${label}</text>`);
    expect(svg).toContain('policy-gradient tokens');
    // The last corgi point sits at the right edge of the plot (x = max tokens).
    expect(svg).toMatch(/points="[^"]*790\.0,[\d.]+"/);
  });

  it('escapes run names and draws a run without steps as a legend entry only', () => {
    const svg = trainingCurvesSvg([{ name: 'a<b & "c"', steps: [] }]);
    expect(svg).toContain('a&lt;b &amp; &quot;c&quot;');
    expect(svg).not.toContain('<polyline');
  });
});

describe('niceTicks', () => {
  it('steps by 1, 2 or 5 times a power of ten and covers the range', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 150_000)).toEqual([0, 50_000, 100_000, 150_000]);
    expect(niceTicks(0, 0.0031, 4)).toEqual([0, 0.001, 0.002, 0.003]);
    expect(niceTicks(2, 2)).toEqual([2]);
  });
});
