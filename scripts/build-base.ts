/**
 * The copying base `runs/sft-f` (docs/experiments/2026-11-24-teaching-the-base-to-copy.md): three `corgi pretrain` runs,
 * each continuing the last, skipping an output that exists and resuming one that was interrupted.
 *
 *   node bin/run-ts.js scripts/build-base.ts [--dir runs/base-build] [--out <dir>/sft2]
 *
 * 1. `lm`: pretraining from scratch on Brown with one copying step (a span of Brown text, 4–16
 *    tokens, copied once) after every pretraining step, no SFT (~26 min on 2 cores).
 * 2. `sft1`: SFT on it with interleaved copying steps, word-list repeats, and the concepts and
 *    keywords examples drawn from sentences of at most 12 words with the concepts listed in the
 *    order the reference uses them (~17 min, one core).
 * 3. the output: a second SFT pass like the first on new examples (seed 1), sentences of at most 10
 *    words (~20 min, one core).
 *
 * The token budget and seeds are fixed, so the same commands give the same weights.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runCorgi } from './run-corgi.ts';

const { values: o } = parseArgs({
  options: { dir: { type: 'string', default: 'runs/base-build' }, out: { type: 'string' } },
});
const dir = resolve(o.dir);
const copying = ['--copy-text', '--copy-length', '16'];
const sft = [
  ...copying,
  '--threads',
  '1',
  '--sft-examples',
  '8000',
  '--copy-during-sft',
  '--sft-word-copy-share',
  '0.1',
  '--sft-inclusion-in-order',
];
const STAGES: { out: string; args: string[] }[] = [
  {
    out: join(dir, 'lm'),
    args: [
      '--seed',
      '0',
      '--pretrain-tokens',
      '2398208',
      '--copy-during-pretrain',
      ...copying,
      '--sft-examples',
      '0',
    ],
  },
  {
    out: join(dir, 'sft1'),
    args: ['--init-from', join(dir, 'lm'), '--seed', '0', ...sft, '--sft-inclusion-max-words', '12'],
  },
  {
    out: resolve(o.out ?? join(dir, 'sft2')),
    args: ['--init-from', join(dir, 'sft1'), '--seed', '1', ...sft, '--sft-inclusion-max-words', '10'],
  },
];

for (const { out, args } of STAGES) {
  if (existsSync(join(out, 'training_summary.json'))) continue;
  const resume = existsSync(`${out}.work`) ? ['--resume'] : ['--overwrite'];
  await runCorgi('build-base', ['pretrain', ...args, '--out', out, ...resume]);
}
