/**
 * The dashboard: `GET /v1/stats` drawn as inline SVG (see chart.js), refreshed every 10 s while the
 * tab is visible. A failed refresh keeps the last charts and says so.
 */
import { api } from './api.js';
import { barChart, legend, lineChart } from './chart.js';

const REFRESH_MS = 10_000;
const CHART_HEIGHT = 220;

/** The last stats drawn, redrawn at the new width when the window is resized. */
let lastStats = null;

const $ = (id) => document.getElementById(id);

/** The pixel width available to a chart, so SVG text is drawn at its CSS size. */
const widthOf = (element) => Math.max(280, Math.floor(element.clientWidth));

function empty(message) {
  const p = document.createElement('p');
  p.className = 'chart-empty';
  p.textContent = message;
  return p;
}

const percent = (value) => `${Math.round(value * 100)}%`;
const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

function renderTiles(stats) {
  const counts = stats.sessionsPerMinute.map((m) => m.count);
  $('tile-sessions').textContent = String(counts.reduce((sum, n) => sum + n, 0));
  $('tile-peak').textContent = `${Math.max(0, ...counts)}/min`;
  const newest = stats.successAtK.at(-1);
  $('tile-success').textContent = newest ? percent(newest.successAt[0]) : '–';
  $('tile-success-label').textContent = newest
    ? `success@1, policy ${newest.policyVersion} (${newest.sessions} sessions)`
    : 'success@1, newest policy';
  $('tile-steps').textContent = String(stats.trainingSteps.length);
}

function renderSessions(stats) {
  const bars = stats.sessionsPerMinute.map((m) => ({
    label: clock(m.minute),
    value: m.count,
    title: `${clock(m.minute)}: ${m.count} session${m.count === 1 ? '' : 's'}`,
  }));
  const total = bars.reduce((sum, bar) => sum + bar.value, 0);
  const target = $('chart-sessions');
  target.replaceChildren(
    barChart({
      bars,
      width: widthOf(target),
      height: CHART_HEIGHT,
      labelEvery: 10,
      label: `Sessions per minute, last ${bars.length} minutes: ${total} in total`,
    }),
  );
}

function renderSuccess(stats) {
  const target = $('chart-success');
  if (stats.successAtK.length === 0) {
    target.replaceChildren(
      empty('No completed live sessions yet: success@k appears after the first one ends.'),
    );
    return;
  }
  const series = stats.successAtK.map((version) => ({
    name: `${version.policyVersion} (${version.sessions} session${version.sessions === 1 ? '' : 's'})`,
    points: version.successAt.map((rate, i) => ({ x: i + 1, y: rate })),
  }));
  target.replaceChildren(
    lineChart({
      series,
      width: widthOf(target),
      height: CHART_HEIGHT,
      yDomain: [0, 1],
      formatY: percent,
      formatX: (k) => `k=${k}`,
      label: `Success at k by policy version: ${series.map((s) => s.name).join(', ')}`,
    }),
    legend(series),
  );
}

/** One series per training run, x = step, for the metric `key` ('reward' or 'kl'). */
function renderTraining(stats, key, elementId, title) {
  const target = $(elementId);
  const steps = stats.trainingSteps.filter((step) => step[key] !== null);
  if (steps.length === 0) {
    target.replaceChildren(
      empty(
        stats.trainingSteps.length === 0
          ? 'No training steps yet: the trainer logs reward and KL here once it runs.'
          : `No training step logged ${title} yet.`,
      ),
    );
    return;
  }
  const runs = new Map();
  for (const step of stats.trainingSteps) {
    if (!runs.has(step.runId)) runs.set(step.runId, []);
    runs.get(step.runId).push({ x: step.step, y: step[key] });
  }
  const series = [...runs.entries()].map(([runId, points]) => ({
    name: `run ${runId}`,
    points: points.sort((a, b) => a.x - b.x),
  }));
  target.replaceChildren(
    lineChart({
      series,
      width: widthOf(target),
      height: CHART_HEIGHT,
      label: `${title} per training step for ${series.length} run(s)`,
    }),
    legend(series),
  );
}

function render(stats) {
  renderTiles(stats);
  renderSessions(stats);
  renderSuccess(stats);
  renderTraining(stats, 'reward', 'chart-reward', 'reward');
  renderTraining(stats, 'kl', 'chart-kl', 'KL');
}

async function refresh() {
  const status = $('updated');
  try {
    const stats = await api('/v1/stats');
    lastStats = stats;
    render(stats);
    $('stats-error').hidden = true;
    status.dataset.state = 'up';
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = 'true';
  } catch (error) {
    const box = $('stats-error');
    box.textContent = `Could not refresh: ${error.message}`;
    box.hidden = false;
    status.dataset.state = 'down';
    status.textContent = 'refresh failed';
  }
}

refresh();
setInterval(() => {
  if (document.visibilityState === 'visible') refresh();
}, REFRESH_MS);
let resizeTimer;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (lastStats) render(lastStats);
  }, 150);
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') refresh();
});
