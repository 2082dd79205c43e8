/**
 * The CORGI experiment on a real model: from SmolLM2-135M-Instruct, CORGI (K = 4) and the
 * single-attempt baseline (K = 1) trained on the source tasks with the same prompts, seed and
 * policy-gradient token budget, then base, single-turn and CORGI evaluated on the source test
 * split, the held-out target test split and the paper's test sets, with paired bootstrap intervals
 * on the differences and the training curves as a PNG. Only `corgi tasks`, `corgi train` and
 * `corgi eval` do the work; each stage skips what exists, so a rerun after an interruption goes on
 * where it stopped (training resumes from its work checkpoint with --resume).
 *
 *   node bin/run-ts.js scripts/experiments/smollm2-corgi.ts [--dir runs/smollm2-corgi]
 *       [--base smollm2-135m-instruct] [--models-out models] [--seed 0] [--train-seed S]
 *       [--pg-tokens 5000] [--train-args="<corgi train flags>"] [--eval-n N] [--paper-n 50]
 *       [--sets source,target,...] [--models base,single-turn,corgi]
 *       [--stage cases|train|eval|report|curves|all] [--parallel-train]
 *
 * The defaults are the shipped experiment's: `--seed` seeds the case files, the evals' samples and
 * the bootstrap, and the training runs too unless `--train-seed` gives them another, so runs at
 * several training seeds are judged on the same cases.
 *
 * Outputs in --dir: cases/*.jsonl, eval/<model>.<set>.{json,sessions.jsonl}, results.json,
 * results.md, curves.svg and curves.png; the adapters in <models-out>/<prefix>-corgi and
 * <prefix>-single-turn (docs/training.md, "The SmolLM2 experiment").
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import type { EvalReport } from '../../src/training/eval/eval.ts';
import {
  buildExperimentReport,
  type ExperimentSetInput,
  formatExperimentMarkdown,
  readCaseOutcomes,
} from '../../src/training/eval/experiment-report.ts';
import { type CurveRun, readTrainLog, trainingCurvesSvg } from '../../src/training/rl/training-curves.ts';
import { corgiTrainArgs, runCorgi } from '../run-corgi.ts';

/** The `corgi train` flags of the shipped adapters (besides base, out, attempts, seed and budget). */
const SHIPPED_TRAIN_ARGS =
  '--prompts-per-step 4 --group-size 4 --epochs 1 --minibatch-size 8 --learning-rate 5e-4 ' +
  '--temperature 0.7 --max-tokens 48 --skip-zero-advantage --save-steps 2';

const { values: o } = parseArgs({
  options: {
    dir: { type: 'string', default: 'runs/smollm2-corgi' },
    base: { type: 'string', default: 'smollm2-135m-instruct' },
    'models-out': { type: 'string', default: 'models' },
    prefix: { type: 'string', default: 'smollm2' },
    seed: { type: 'string', default: '0' },
    'train-seed': { type: 'string' },
    'pg-tokens': { type: 'string', default: '5000' },
    'train-args': { type: 'string', default: SHIPPED_TRAIN_ARGS },
    'source-size': { type: 'string', default: '200' },
    'target-size': { type: 'string', default: '300' },
    'paper-n': { type: 'string', default: '50' },
    'eval-n': { type: 'string' },
    'eval-args': { type: 'string', default: '' },
    attempts: { type: 'string', default: '4' },
    shared: { type: 'string', default: '../shared/data/corgi' },
    resamples: { type: 'string', default: '10000' },
    stage: { type: 'string', default: 'all' },
    sets: { type: 'string', default: 'all' },
    models: { type: 'string', default: 'all' },
    'parallel-train': { type: 'boolean', default: false },
  },
});

const STAGES = ['cases', 'train', 'eval', 'report', 'curves'] as const;
const stages = o.stage === 'all' ? [...STAGES] : [o.stage];
for (const stage of stages)
  if (!(STAGES as readonly string[]).includes(stage))
    throw new Error(`--stage must be ${STAGES.join(', ')} or all; got ${stage}`);

const dir = resolve(o.dir);
const trainSeed = o['train-seed'] ?? o.seed;
const words = (text: string) => text.split(/\s+/).filter(Boolean);
/** The items a comma-separated flag names (`all`: every one), refusing a name not among them. */
function pickByName<T extends { name: string }>(flag: string, noun: string, value: string, items: T[]): T[] {
  if (value === 'all') return items;
  const names = value.split(',');
  for (const name of names)
    if (!items.some((item) => item.name === name))
      throw new Error(
        `${flag}: unknown ${noun} "${name}"; known: ${items.map((item) => item.name).join(', ')}`,
      );
  return items.filter((item) => names.includes(item.name));
}
const run = (args: string[], stdoutFile?: string) => runCorgi('smollm2-corgi', args, stdoutFile);

/** The base and the two trained runs; `attempts` marks the ones this script trains. */
const MODELS: { name: string; policy: string; attempts?: number }[] = [
  { name: 'base', policy: o.base },
  { name: 'single-turn', policy: resolve(o['models-out'], `${o.prefix}-single-turn`), attempts: 1 },
  { name: 'corgi', policy: resolve(o['models-out'], `${o.prefix}-corgi`), attempts: 4 },
];
const TRAINED = MODELS.filter((m) => m.attempts !== undefined);
/** The models the eval stage runs (`--models`): two drivers side by side each take their own. */
const EVALUATED = pickByName('--models', 'model', o.models, MODELS);

interface CaseSet {
  name: string;
  label: string;
  file: string;
  /** Evaluate a seeded sample of this many cases (the paper's files are large). */
  sample?: number;
  /** The paper's panagram file has a line our checker refuses ("-" as a letter): skip such lines. */
  skipInvalid?: boolean;
}

const paper = (name: string, file: string, label: string): CaseSet => ({
  name,
  label: `paper: ${label}`,
  file: join(o.shared, file),
  sample: Number(o['paper-n']),
  skipInvalid: true,
});

const ALL_CASE_SETS: CaseSet[] = [
  { name: 'source', label: 'source tasks, test split', file: join(dir, 'cases/source-test.jsonl') },
  {
    name: 'target',
    label: 'target tasks (held out), test split',
    file: join(dir, 'cases/target-test.jsonl'),
  },
  paper('num_planning', 'num_planning.test.jsonl', 'numerical planning'),
  paper('common_gen', 'common_gen.test.jsonl', 'CommonGen'),
  paper('cmg_hard', 'cmg_hard.test.jsonl', 'CommonGen-Hard'),
  paper('panagram', 'panagram.test.jsonl', 'panagram'),
  paper('story', 'story_generation.test.jsonl', 'story, no repeated 4-grams'),
];
const CASE_SETS = pickByName('--sets', 'set', o.sets, ALL_CASE_SETS);

async function cases(): Promise<void> {
  mkdirSync(join(dir, 'cases'), { recursive: true });
  for (const [tasks, size] of [
    ['source', o['source-size']],
    ['target', o['target-size']],
  ] as const) {
    const out = join(dir, `cases/${tasks}-test.jsonl`);
    if (existsSync(out)) continue;
    await run(['tasks', '--tasks', tasks, '--split', 'test', '--size', size, '--seed', o.seed, '--out', out]);
  }
  if (!existsSync(o.shared))
    console.error(`smollm2-corgi: ${resolve(o.shared)} is absent, so the paper's test sets are skipped`);
}

/**
 * One after the other by default. The TensorFlow.js update runs on one wasm thread, so with
 * --parallel-train the two runs go side by side, each with one llama.cpp thread and its progress in
 * <dir>/train-<name>.log: both cores busy, and the two runs see the same machine.
 */
async function train(): Promise<void> {
  const pending = TRAINED.filter((m) => {
    const trained = existsSync(join(m.policy, 'corgi.json'));
    if (trained) console.error(`smollm2-corgi: ${m.policy} is trained; skipped`);
    return !trained;
  });
  if (o['parallel-train']) await Promise.all(pending.map((m) => trainOne(m, true)));
  else for (const m of pending) await trainOne(m, false);
}

async function trainOne(m: (typeof TRAINED)[number], parallel: boolean): Promise<void> {
  const side = parallel
    ? {
        env: { CORGI_LLAMA_THREADS: '1', CORGI_CHECK_THREADS: '1' },
        stderrFile: join(dir, `train-${m.name}.log`),
      }
    : {};
  mkdirSync(dir, { recursive: true });
  await runCorgi(
    'smollm2-corgi',
    corgiTrainArgs({
      base: o.base,
      out: m.policy,
      attempts: m.attempts!,
      seed: trainSeed,
      pgTokens: o['pg-tokens'],
      extra: words(o['train-args']),
    }),
    undefined,
    side,
  );
}

const reportFile = (model: string, set: string) => join(dir, `eval/${model}.${set}.json`);
const sessionsFile = (model: string, set: string) => join(dir, `eval/${model}.${set}.sessions.jsonl`);

async function evaluate(): Promise<void> {
  mkdirSync(join(dir, 'eval'), { recursive: true });
  for (const set of CASE_SETS) {
    if (!existsSync(set.file)) {
      console.error(`smollm2-corgi: ${set.file} is absent; ${set.name} is skipped`);
      continue;
    }
    const n = o['eval-n'] ?? (set.sample ? String(set.sample) : undefined);
    for (const m of EVALUATED) {
      // The report is written only when eval finishes: its presence means the set is done.
      if (existsSync(reportFile(m.name, set.name))) continue;
      if (m.attempts !== undefined && !existsSync(join(m.policy, 'corgi.json'))) {
        console.error(`smollm2-corgi: ${m.policy} is not trained yet; its ${set.name} eval is skipped`);
        continue;
      }
      await run(
        [
          'eval',
          '--policy',
          m.policy,
          '--cases',
          set.file,
          '--attempts',
          o.attempts,
          '--seed',
          o.seed,
          ...(n ? ['--n', n] : []),
          ...(set.skipInvalid ? ['--skip-invalid'] : []),
          ...words(o['eval-args']),
          '--out',
          sessionsFile(m.name, set.name),
          '--json',
        ],
        reportFile(m.name, set.name),
      );
    }
  }
}

/** What each training run cost, from its training_summary.json. */
function compute(): Record<string, { steps: number; pg_tokens: number; minutes: number } | null> {
  return Object.fromEntries(
    TRAINED.map((m) => {
      const file = join(m.policy, 'training_summary.json');
      if (!existsSync(file)) return [m.name, null];
      const { steps, pg_tokens, minutes } = JSON.parse(readFileSync(file, 'utf8'));
      return [m.name, { steps, pg_tokens, minutes }];
    }),
  );
}

/**
 * success@1 / success@K and mean best score per task of the sets with more than one task (our source
 * and target splits), from each model's `corgi eval --json` report.
 */
function perTaskMarkdown(): string[] {
  const k = Number(o.attempts);
  const lines = [
    `| task | n | ${MODELS.map((m) => m.name).join(' | ')} |`,
    `|---|---:|${'---|'.repeat(MODELS.length)}`,
  ];
  for (const set of CASE_SETS) {
    const reports = MODELS.map((m) =>
      existsSync(reportFile(m.name, set.name))
        ? (JSON.parse(readFileSync(reportFile(m.name, set.name), 'utf8')) as EvalReport)
        : null,
    );
    const first = reports.find((r) => r !== null);
    if (!first || Object.keys(first.by_task).length < 2) continue;
    for (const [task, { n }] of Object.entries(first.by_task)) {
      const cells = reports.map((r) => {
        const scores = r?.by_task[task];
        if (!scores) return '—';
        const pct = (x: number) => (100 * x).toFixed(0);
        return `${pct(scores.success_at[0])} / ${pct(scores.success_at[k - 1])} (${scores.mean_best_score.toFixed(2)})`;
      });
      lines.push(`| ${task} (${set.name}) | ${n} | ${cells.join(' | ')} |`);
    }
  }
  return lines.length > 2
    ? ['', `Per task: success@1 / success@${k} in %, (mean best score).`, '', ...lines]
    : [];
}

function report(): void {
  const sets: ExperimentSetInput[] = [];
  for (const set of CASE_SETS) {
    const outcomes = Object.fromEntries(
      MODELS.filter((m) => existsSync(reportFile(m.name, set.name))).map((m) => [
        m.name,
        readCaseOutcomes(sessionsFile(m.name, set.name)),
      ]),
    );
    if (Object.keys(outcomes).length > 0) sets.push({ name: set.name, label: set.label, outcomes });
  }
  const result = buildExperimentReport({
    sets,
    comparisons: [
      ['corgi', 'base'],
      ['corgi', 'single-turn'],
    ],
    attempts: Number(o.attempts),
    bootstrap: { resamples: Number(o.resamples), seed: Number(o.seed) },
  });
  const skipped = CASE_SETS.filter((set) => !sets.some((s) => s.name === set.name)).map((set) => set.name);
  const costs = compute();
  writeFileSync(
    join(dir, 'results.json'),
    `${JSON.stringify({ base: o.base, seed: Number(o.seed), train_seed: Number(trainSeed), pg_tokens: Number(o['pg-tokens']), compute: costs, skipped_sets: skipped, ...result }, null, 2)}\n`,
  );
  const computeLines = Object.entries(costs).map(([name, c]) =>
    c
      ? `- ${name}: ${c.steps} steps, ${c.pg_tokens} policy-gradient tokens, ${c.minutes.toFixed(1)} min`
      : `- ${name}: not trained`,
  );
  const markdown = [
    formatExperimentMarkdown(result),
    ...perTaskMarkdown(),
    '',
    `Training from ${o.base}, seed ${trainSeed}, budget ${o['pg-tokens']} policy-gradient tokens each:`,
    ...computeLines,
    ...(skipped.length > 0 ? ['', `Not evaluated (cases absent): ${skipped.join(', ')}.`] : []),
  ].join('\n');
  writeFileSync(join(dir, 'results.md'), `${markdown}\n`);
  console.log(markdown);
}

async function curves(): Promise<void> {
  const runs: CurveRun[] = [];
  for (const m of TRAINED) {
    const log = [join(m.policy, 'train_log.jsonl'), join(`${m.policy}.work`, 'train_log.jsonl')].find(
      existsSync,
    );
    if (log) runs.push({ name: `${m.name} (K=${m.attempts})`, steps: readTrainLog(log) });
    else console.error(`smollm2-corgi: no train_log.jsonl for ${m.name}; left out of the curves`);
  }
  const svg = trainingCurvesSvg(runs, `CORGI vs single-turn from ${o.base}`);
  writeFileSync(join(dir, 'curves.svg'), svg);
  const png = join(dir, 'curves.png');
  await rasterize(svg, png);
  console.error(`smollm2-corgi: wrote ${png}`);
}

/** The SVG as a PNG, drawn by Chromium (Debian's, as the browser tests use it). */
async function rasterize(svg: string, path: string): Promise<void> {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(executablePath))
    throw new Error(
      `Chromium not found at ${executablePath}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
    );
  const browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage();
    await page.setContent(`<!doctype html><body style="margin:0">${svg}</body>`);
    await page.locator('svg').screenshot({ path });
  } finally {
    await browser.close();
  }
}

// Ctrl-C reaches the running `corgi` command too (same process group): training writes its work
// checkpoint and exits, and this script stops with it instead of leaving it behind.
process.on('SIGINT', () => console.error('smollm2-corgi: stopping once the running command has stopped'));

for (const stage of stages) {
  if (stage === 'cases') await cases();
  else if (stage === 'train') await train();
  else if (stage === 'eval') await evaluate();
  else if (stage === 'report') report();
  else await curves();
}
