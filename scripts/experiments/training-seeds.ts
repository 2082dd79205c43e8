/**
 * How far the SmolLM2 experiment moves from one training seed to the next: reads the results.json
 * of several `smollm2-corgi.ts` runs judged on the same cases (`--seed` alike, `--train-seed`
 * apart) and prints success@K per seed, the differences with their intervals over cases, and the
 * mean over seeds with the range.
 *
 *   node bin/run-ts.js scripts/experiments/training-seeds.ts --runs runs/s0,runs/s1[,...] [--json]
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type ExperimentReport,
  formatTrainingSeedsMarkdown,
  summarizeTrainingSeeds,
} from '../../src/training/eval/experiment-report.ts';

const { values: o } = parseArgs({
  options: { runs: { type: 'string' }, json: { type: 'boolean', default: false } },
});
if (!o.runs) throw new Error('--runs: give the run directories, comma-separated');

const runs = o.runs.split(',').map((dir) => {
  const file = join(dir, 'results.json');
  if (!existsSync(file))
    throw new Error(`--runs: ${file} is absent; run smollm2-corgi.ts --stage report in ${dir} first`);
  const results = JSON.parse(readFileSync(file, 'utf8')) as ExperimentReport & {
    train_seed?: number;
    seed: number;
  };
  return { seed: results.train_seed ?? results.seed, report: results };
});
const summary = summarizeTrainingSeeds(runs);
console.log(o.json ? JSON.stringify(summary, null, 2) : formatTrainingSeedsMarkdown(summary));
