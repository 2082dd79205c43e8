/**
 * A small SVG chart helper for the dashboard: bar charts and line charts as inline SVG with axes,
 * "nice" ticks, native tooltips (`<title>`) and an accessible name. No chart library: the
 * dashboard draws a handful of series, and a few dozen lines of geometry do it.
 */

const SVG = 'http://www.w3.org/2000/svg';

/** Distinct, colour-blind-friendly series colours (Okabe–Ito, reordered). */
export const PALETTE = ['#3558d4', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#6b6b6b'];

const MARGIN = { top: 12, right: 16, bottom: 30, left: 48 };

function s(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return element;
}

/** About `count` round tick values covering [min, max] (steps of 1, 2 or 5 × 10^k). */
export function niceTicks(min, max, count = 5) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min === max) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.5 : 1;
    return niceTicks(min - pad, max + pad, count);
  }
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step =
    [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw) ?? 10 * magnitude;
  const ticks = [];
  for (let value = Math.floor(min / step) * step; value <= max + step * 1e-9; value += step) {
    ticks.push(Number(value.toPrecision(12)));
  }
  if (ticks.at(-1) < max) ticks.push(Number((ticks.at(-1) + step).toPrecision(12)));
  return ticks;
}

const defaultFormat = (value) =>
  Math.abs(value) >= 1000 || value === 0 || Math.abs(value) >= 1
    ? String(Number(value.toFixed(2)))
    : String(Number(value.toPrecision(2)));

function frame({ width, height, label }) {
  return s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label,
    preserveAspectRatio: 'xMidYMid meet',
  });
}

/** The y axis with grid lines; returns the value → pixel scale. */
function drawYAxis(svg, { ticks, width, height, format }) {
  const [lo, hi] = [ticks[0], ticks.at(-1)];
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const y = (value) => MARGIN.top + plotHeight * (1 - (value - lo) / (hi - lo || 1));
  svg.append(
    s(
      'g',
      { class: 'grid' },
      ticks.map((tick) => s('line', { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(tick), y2: y(tick) })),
    ),
    s(
      'g',
      { class: 'axis y' },
      ticks.map((tick) =>
        s(
          'text',
          { x: MARGIN.left - 8, y: y(tick), 'text-anchor': 'end', 'dominant-baseline': 'middle' },
          format(tick),
        ),
      ),
    ),
  );
  return y;
}

/**
 * A bar chart: `bars` are `{label, value, title?}` in x order; `labelEvery` thins the x labels.
 * Give `width` as the container's pixel width so one SVG unit is one pixel and text keeps its size.
 * @returns {SVGSVGElement}
 */
export function barChart({ bars, label, width = 720, height = 220, labelEvery = 1, format = defaultFormat }) {
  const svg = frame({ width, height, label });
  const max = Math.max(1, ...bars.map((bar) => bar.value));
  // Counts: whole-number ticks only.
  const ticks = niceTicks(0, max, Math.min(4, max)).filter(Number.isInteger);
  const y = drawYAxis(svg, { ticks, width, height, format });
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const slot = plotWidth / Math.max(1, bars.length);
  const barWidth = Math.max(1, slot * 0.72);
  const baseline = y(0);
  svg.append(
    s('line', { class: 'baseline', x1: MARGIN.left, x2: width - MARGIN.right, y1: baseline, y2: baseline }),
    s(
      'g',
      { class: 'bars' },
      bars.map((bar, i) => {
        const x = MARGIN.left + i * slot + (slot - barWidth) / 2;
        const top = y(bar.value);
        return s(
          'rect',
          {
            class: 'bar',
            x,
            y: top,
            width: barWidth,
            height: Math.max(0, baseline - top),
            rx: Math.min(2, barWidth / 4),
            'data-value': bar.value,
          },
          s('title', {}, bar.title ?? `${bar.label}: ${format(bar.value)}`),
        );
      }),
    ),
    s(
      'g',
      { class: 'axis x' },
      bars.map((bar, i) =>
        // Every `labelEvery`-th label, and the last one unless it would crowd the one before.
        i % labelEvery === 0 || (i === bars.length - 1 && i % labelEvery >= labelEvery / 2)
          ? s(
              'text',
              { x: MARGIN.left + (i + 0.5) * slot, y: height - 8, 'text-anchor': 'middle' },
              bar.label,
            )
          : null,
      ),
    ),
  );
  return svg;
}

/**
 * A line chart of several series `{name, points: [{x, y}]}` (points sorted by x; null ys are gaps).
 * `xIntegers` puts ticks on whole numbers only; `yDomain` fixes the y range (e.g. [0, 1]).
 * @returns {SVGSVGElement}
 */
export function lineChart({
  series,
  label,
  width = 720,
  height = 240,
  xIntegers = true,
  yDomain,
  formatY = defaultFormat,
  formatX = (x) => String(x),
}) {
  const svg = frame({ width, height, label });
  const points = series.flatMap((line) => line.points.filter((p) => p.y !== null && p.y !== undefined));
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  const yTicks = yDomain
    ? niceTicks(yDomain[0], yDomain[1], 4)
    : niceTicks(Math.min(...ys), Math.max(...ys), 4);
  const y = drawYAxis(svg, { ticks: yTicks, width, height, format: formatY });
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const pad = xMin === xMax ? 0.5 : 0;
  const x = (value) => MARGIN.left + (plotWidth * (value - xMin + pad)) / (xMax - xMin + 2 * pad || 1);
  let xTicks = niceTicks(xMin, xMax, Math.min(8, Math.max(1, xMax - xMin))).filter(
    (t) => t >= xMin && t <= xMax,
  );
  if (xIntegers) xTicks = xTicks.filter(Number.isInteger);
  if (xTicks.length === 0) xTicks = [xMin];
  svg.append(
    s('line', {
      class: 'baseline',
      x1: MARGIN.left,
      x2: width - MARGIN.right,
      y1: height - MARGIN.bottom,
      y2: height - MARGIN.bottom,
    }),
    s(
      'g',
      { class: 'axis x' },
      xTicks.map((tick) => s('text', { x: x(tick), y: height - 8, 'text-anchor': 'middle' }, formatX(tick))),
    ),
  );
  series.forEach((line, index) => {
    const color = line.color ?? PALETTE[index % PALETTE.length];
    // Split at null values so a missing metric shows as a gap, not a fake segment.
    const segments = [[]];
    for (const point of line.points) {
      if (point.y === null || point.y === undefined) segments.push([]);
      else segments.at(-1).push(point);
    }
    const group = s('g', { class: 'series', 'data-series': line.name });
    for (const segment of segments.filter((part) => part.length > 1)) {
      group.append(
        s('path', {
          class: 'line',
          stroke: color,
          d: segment
            .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`)
            .join(''),
        }),
      );
    }
    const many = line.points.length > 60;
    for (const point of line.points) {
      if (point.y === null || point.y === undefined) continue;
      group.append(
        s(
          'circle',
          { class: 'point', cx: x(point.x), cy: y(point.y), r: many ? 1.5 : 3.5, fill: color },
          s('title', {}, `${line.name} · ${formatX(point.x)}: ${formatY(point.y)}`),
        ),
      );
    }
    svg.append(group);
  });
  return svg;
}

/** An HTML legend for `series` in the same colours as `lineChart`. */
export function legend(series) {
  const list = document.createElement('ul');
  list.className = 'legend';
  series.forEach((line, index) => {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = line.color ?? PALETTE[index % PALETTE.length];
    item.append(swatch, document.createTextNode(line.name));
    list.append(item);
  });
  return list;
}
