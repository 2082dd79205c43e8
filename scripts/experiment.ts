/**
 * The CORGI experiment: CORGI (K = 4) against the single-attempt baseline (K = 1),
 * both trained from `models/base` on the same source tasks, prompts, seed and policy-gradient
 * token budget, then every model evaluated on the same case files. Only `corgi tasks`, `corgi train`
 * and `corgi eval` do the work; this script runs them in order, skips outputs that exist (rerun it
 * after an interruption: training resumes from its work checkpoint) and renders the results table.
 *
 *   node bin/run-ts.js scripts/experiment.ts [--dir runs/experiment] [--seed 0] [--pg-tokens 100000]
 *       [--learning-rate R] [--temperature T] [--stage cases|train|eval|table|all]
 *       [--shared ../shared/data/corgi] [--base models/base] [--models-out models]
 *
 * The two training runs go side by side (one core each). Evals use greedy decoding, so they are
 * reproducible; training is seeded (`--seed`) and resumes bit-identically.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { corgiTrainArgs, runCorgi } from './run-corgi.ts';

const { values: o } = parseArgs({
  options: {
    dir: { type: 'string', default: 'runs/experiment' },
    seed: { type: 'string', default: '0' },
    'pg-tokens': { type: 'string', default: '100000' },
    // Both runs, when given (otherwise the trainer's defaults, which the shipped table used).
    'learning-rate': { type: 'string' },
    temperature: { type: 'string' },
    stage: { type: 'string', default: 'all' },
    shared: { type: 'string', default: '../shared/data/corgi' },
    base: { type: 'string', default: 'models/base' },
    'models-out': { type: 'string', default: 'models' },
  },
});
const dir = resolve(o.dir);
const stages = o.stage === 'all' ? ['cases', 'train', 'eval', 'table'] : [o.stage];

/** Our own splits (written by `corgi tasks`, seeded) and the paper's sets our model can attempt. */
const CASE_SETS: { name: string; label: string; file: () => string; sample?: number }[] = [
  {
    name: 'source',
    label: 'source tasks, our test split (200)',
    file: () => join(dir, 'cases/source-test.jsonl'),
  },
  {
    name: 'target',
    label: 'held-out target tasks, our test split (100)',
    file: () => join(dir, 'cases/target-test.jsonl'),
  },
  {
    name: 'common_gen',
    label: 'paper: CommonGen (100 of 400)',
    file: () => join(o.shared, 'common_gen.test.jsonl'),
    sample: 100,
  },
  {
    name: 'num_planning',
    label: 'paper: numerical planning (100 of 1000)',
    file: () => join(o.shared, 'num_planning.test.jsonl'),
    sample: 100,
  },
  {
    name: 'story',
    label: 'paper: story generation, no repeated 3-grams (100 of 1000)',
    file: () => join(o.shared, 'story_generation.test.jsonl'),
    sample: 100,
  },
];
const MODELS = [
  { name: 'base', dir: () => resolve(o.base) },
  { name: 'single-turn', dir: () => resolve(o['models-out'], 'single-turn'), attempts: 1 },
  { name: 'corgi', dir: () => resolve(o['models-out'], 'corgi'), attempts: 4 },
];

const run = (args: string[], stdoutFile?: string) => runCorgi('experiment', args, stdoutFile);

async function cases(): Promise<void> {
  mkdirSync(join(dir, 'cases'), { recursive: true });
  const pools = [
    ['source', 200],
    ['target', 100],
  ] as const;
  for (const [tasks, size] of pools) {
    const out = join(dir, `cases/${tasks}-test.jsonl`);
    if (!existsSync(out))
      await run([
        'tasks',
        '--tasks',
        tasks,
        '--split',
        'test',
        '--size',
        String(size),
        '--seed',
        o.seed,
        '--out',
        out,
      ]);
  }
}

async function train(): Promise<void> {
  await Promise.all(
    MODELS.filter((m) => m.attempts).map(async (m) => {
      if (existsSync(join(m.dir(), 'corgi.json'))) return;
      await run(
        corgiTrainArgs({
          base: resolve(o.base),
          out: m.dir(),
          attempts: m.attempts!,
          seed: o.seed,
          pgTokens: o['pg-tokens'],
          extra: [
            ...(o['learning-rate'] ? ['--learning-rate', o['learning-rate']] : []),
            ...(o.temperature ? ['--temperature', o.temperature] : []),
          ],
        }),
      );
    }),
  );
}

async function evaluate(): Promise<void> {
  mkdirSync(join(dir, 'eval'), { recursive: true });
  for (const set of CASE_SETS) {
    if (!existsSync(set.file())) {
      console.error(`experiment: ${set.file()} is missing; ${set.name} is left out`);
      continue;
    }
    for (const m of MODELS) {
      const out = join(dir, `eval/${m.name}.${set.name}.json`);
      if (existsSync(out) || !existsSync(m.dir())) continue;
      const sample = set.sample ? ['--n', String(set.sample), '--seed', o.seed] : [];
      await run(
        ['eval', '--policy', m.dir(), '--cases', set.file(), '--attempts', '4', '--json', ...sample],
        out,
      );
    }
  }
}

interface Scores {
  n: number;
  success_at: number[];
  mean_best_score: number;
}
interface Report extends Scores {
  by_task: Record<string, Scores>;
}

function table(): string {
  const pct = (x: number) => (100 * x).toFixed(1);
  const lines = [
    '| cases | model | n | success@1 | success@2 | success@3 | success@4 | mean best score |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const set of CASE_SETS) {
    for (const m of MODELS) {
      const file = join(dir, `eval/${m.name}.${set.name}.json`);
      if (!existsSync(file)) continue;
      const report = JSON.parse(readFileSync(file, 'utf8')) as Report;
      lines.push(
        `| ${set.label} | ${m.name} | ${report.n} | ${report.success_at.map(pct).join(' | ')} | ${report.mean_best_score.toFixed(3)} |`,
      );
    }
  }
  lines.push(
    '',
    '| task | model | n | success@1 | success@4 | mean best score |',
    '|---|---|---:|---:|---:|---:|',
  );
  // Per task on our own splits, the models side by side.
  for (const set of CASE_SETS.slice(0, 2)) {
    const reports = MODELS.map((m) => ({ model: m.name, file: join(dir, `eval/${m.name}.${set.name}.json`) }))
      .filter(({ file }) => existsSync(file))
      .map(({ model, file }) => ({ model, report: JSON.parse(readFileSync(file, 'utf8')) as Report }));
    const tasks = [...new Set(reports.flatMap(({ report }) => Object.keys(report.by_task)))];
    for (const task of tasks) {
      for (const { model, report } of reports) {
        const s = report.by_task[task];
        if (!s) continue;
        lines.push(
          `| ${task} | ${model} | ${s.n} | ${pct(s.success_at[0]!)} | ${pct(s.success_at.at(-1)!)} | ${s.mean_best_score.toFixed(3)} |`,
        );
      }
    }
  }
  return lines.join('\n');
}

for (const stage of stages) {
  if (stage === 'cases') await cases();
  else if (stage === 'train') await train();
  else if (stage === 'eval') await evaluate();
  else if (stage === 'table') {
    const markdown = table();
    writeFileSync(join(dir, 'table.md'), `${markdown}\n`);
    console.log(markdown);
  } else throw new Error(`--stage must be cases, train, eval, table or all; got ${stage}`);
}
