/**
 * Training curves of `corgi train` runs as one SVG: reward, success@1 and success@K, and KL to
 * the reference, each against cumulative policy-gradient tokens (the budget K=4 and K=1 runs are
 * matched on, so the runs line up at equal compute). Plain SVG text, no dependencies: scripts
 * rasterize it with a browser.
 */
import { readFileSync } from 'node:fs';
import type { StepMetrics } from './corgi-trainer.ts';

/** The fields of a `train_log.jsonl` line the curves read. */
export type CurvePoint = Pick<StepMetrics, 'step' | 'reward' | 'success_at' | 'kl' | 'pg_tokens_total'>;

export interface CurveRun {
  name: string;
  steps: readonly CurvePoint[];
}

/** The steps of a `train_log.jsonl`, in order. */
export function readTrainLog(path: string): CurvePoint[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as CurvePoint);
}

interface Panel {
  title: string;
  /** Series of one run: a label suffix and the value at each step. */
  series: (run: CurveRun) => { suffix: string; dashed: boolean; value: (p: CurvePoint) => number }[];
}

const PANELS: Panel[] = [
  {
    title: 'reward (best attempt score)',
    series: () => [{ suffix: '', dashed: false, value: (p) => p.reward }],
  },
  {
    title: 'success@1 (solid) and success@K (dashed)',
    series: (run) => {
      const k = Math.max(1, ...run.steps.map((p) => p.success_at.length));
      const first = { suffix: ' @1', dashed: false, value: (p: CurvePoint) => p.success_at[0] ?? 0 };
      return k === 1
        ? [first]
        : [first, { suffix: ` @${k}`, dashed: true, value: (p) => p.success_at.at(-1) ?? 0 }];
    },
  },
  {
    title: 'KL to the reference (per token)',
    series: () => [{ suffix: '', dashed: false, value: (p) => p.kl }],
  },
];

const COLORS = ['#d6604d', '#4393c3', '#1b7837', '#762a83'];
const WIDTH = 960;
const PANEL_HEIGHT = 220;
const MARGIN = { left: 64, right: 170, top: 36, bottom: 40 };

const escapeXml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Round tick values covering [lo, hi]: 1, 2 or 5 times a power of ten apart. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const tickLabel = (x: number) =>
  Math.abs(x) >= 1000 ? `${Number((x / 1000).toPrecision(3))}k` : String(Number(x.toPrecision(3)));

/**
 * The runs' curves as an SVG document: one panel per metric stacked vertically, one color per run,
 * x = cumulative policy-gradient tokens. A run without steps still gets its legend entry.
 */
export function trainingCurvesSvg(runs: readonly CurveRun[], title = 'CORGI training curves'): string {
  const height = MARGIN.top + PANELS.length * (PANEL_HEIGHT + MARGIN.bottom) + 10;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL_HEIGHT - 30;
  const allPoints = runs.flatMap((run) => run.steps);
  const xMax = Math.max(1, ...allPoints.map((p) => p.pg_tokens_total));
  const xTicks = niceTicks(0, xMax);
  const x = (tokens: number) => MARGIN.left + (tokens / xMax) * plotWidth;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="16">${escapeXml(title)}</text>`,
  ];
  PANELS.forEach((panel, index) => {
    const top = MARGIN.top + index * (PANEL_HEIGHT + MARGIN.bottom) + 24;
    const values = runs.flatMap((run) => panel.series(run).flatMap((s) => run.steps.map(s.value)));
    const finite = values.filter(Number.isFinite);
    const lo = Math.min(0, ...finite);
    const hi = Math.max(lo + 1e-9, ...finite) * 1.05;
    const yTicks = niceTicks(lo, hi, 4);
    const yTop = Math.max(hi, yTicks.at(-1) ?? hi);
    const y = (v: number) => top + plotHeight - ((v - lo) / (yTop - lo)) * plotHeight;
    parts.push(`<text x="${MARGIN.left}" y="${top - 8}" font-size="13">${escapeXml(panel.title)}</text>`);
    parts.push(
      `<rect x="${MARGIN.left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`,
    );
    for (const t of yTicks) {
      parts.push(
        `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/>`,
        `<text x="${MARGIN.left - 6}" y="${y(t) + 4}" text-anchor="end">${tickLabel(t)}</text>`,
      );
    }
    for (const t of xTicks) {
      parts.push(
        `<text x="${x(t)}" y="${top + plotHeight + 16}" text-anchor="middle">${tickLabel(t)}</text>`,
      );
    }
    parts.push(
      `<text x="${MARGIN.left + plotWidth / 2}" y="${top + plotHeight + 32}" text-anchor="middle" fill="#555">policy-gradient tokens</text>`,
    );
    let legendY = top + 12;
    runs.forEach((run, r) => {
      const color = COLORS[r % COLORS.length];
      for (const series of panel.series(run)) {
        const points = run.steps
          .filter((p) => Number.isFinite(series.value(p)))
          .map((p) => `${x(p.pg_tokens_total).toFixed(1)},${y(series.value(p)).toFixed(1)}`);
        const dash = series.dashed ? ' stroke-dasharray="6 4"' : '';
        if (points.length > 0)
          parts.push(
            `<polyline points="${points.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`,
          );
        parts.push(
          `<line x1="${WIDTH - MARGIN.right + 12}" x2="${WIDTH - MARGIN.right + 36}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="${color}" stroke-width="2"${dash}/>`,
          `<text x="${WIDTH - MARGIN.right + 42}" y="${legendY}">${escapeXml(`${run.name}${series.suffix}`)}</text>`,
        );
        legendY += 18;
      }
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
