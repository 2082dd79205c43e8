/**
 * `npm run bench:checkers`: how many `checkAll` calls per second one core sustains on typical
 * constraint sets for a 60-word answer. Prints JSON; progress goes to stderr.
 *
 * Each set is parsed once (as the server does per session) and checked against a pool of
 * distinct answers, so per-text caches cannot flatter the numbers.
 *   --seconds S   time per set (default 2)
 *   --seed N      seed for the answer pool (default 1)
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { checkAll, parseConstraints } from '../src/checkers/registry.ts';
import type { ConstraintSpec } from '../src/checkers/types.ts';
import { rngFromState } from '../src/common/random.ts';

const TARGET_CHECKS_PER_S = 20_000;

const BASE_ANSWER =
  'The old dog ran across the quiet park at dawn while a boy threw a red frisbee toward the trees. ' +
  'His mother watched from a wooden bench and smiled at the bright morning. Nobody expected the weather ' +
  'to change so quickly that day. By noon the clouds had gathered over the hills and the family ' +
  'walked home together under a light rain.';

const SETS: { name: string; constraints: ConstraintSpec[] }[] = [
  {
    name: 'ifeval: keywords + word count + no comma',
    constraints: [
      { id: 'keywords:existence', kwargs: { keywords: ['dog', 'park'] } },
      { id: 'length_constraints:number_words', kwargs: { relation: 'at least', num_words: 50 } },
      { id: 'punctuation:no_comma', kwargs: {} },
    ],
  },
  {
    name: 'ifeval: sentences + forbidden words + end phrase',
    constraints: [
      { id: 'length_constraints:number_sentences', kwargs: { relation: 'less than', num_sentences: 6 } },
      { id: 'keywords:forbidden_words', kwargs: { forbidden_words: ['cat', 'storm'] } },
      { id: 'startend:end_checker', kwargs: { end_phrase: 'Is there anything else I can help with?' } },
    ],
  },
  {
    name: 'paper: concepts + no repeated 4-gram + sentiment',
    constraints: [
      { id: 'corgi:concepts', kwargs: { concepts: ['dog', 'throw', 'frisbee', 'park'] } },
      { id: 'corgi:no_repeat_ngram', kwargs: { n: 4 } },
      { id: 'corgi:sentiment', kwargs: { label: 'positive' } },
    ],
  },
  {
    name: 'paper: numerical planning',
    constraints: [
      {
        id: 'corgi:num_planning',
        kwargs: { n: 10, last_word: 'rain', prefix: 'The old dog ran across the quiet park at dawn' },
      },
    ],
  },
];

/** Distinct 60-word answers (the base answer with a few word pairs swapped), more than any per-text cache holds. */
function answerPool(seed: number): string[] {
  const rng = rngFromState(seed);
  const random = () => rng.next();
  const words = BASE_ANSWER.split(' ');
  return Array.from({ length: 4096 }, () => {
    const copy = [...words];
    for (let k = 0; k < 3; k++) {
      const i = Math.floor(random() * copy.length);
      const j = Math.floor(random() * copy.length);
      [copy[i], copy[j]] = [copy[j], copy[i]];
    }
    return copy.join(' ');
  });
}

function measure(constraints: ConstraintSpec[], answers: string[], seconds: number) {
  const parsed = parseConstraints(constraints);
  const coldStart = performance.now();
  checkAll(answers[0], parsed);
  const firstCallMs = performance.now() - coldStart;
  // Warm up the JIT before timing.
  for (let i = 0; i < 2_000; i++) checkAll(answers[i % answers.length], parsed);
  let calls = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    for (let i = 0; i < 200; i++) checkAll(answers[(calls + i) % answers.length], parsed);
    calls += 200;
  }
  const elapsed = (performance.now() - start) / 1000;
  return { first_call_ms: Number(firstCallMs.toFixed(2)), checks_per_s: Math.round(calls / elapsed) };
}

function main(): void {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, seed: { type: 'string' } } });
  const seconds = Number(values.seconds ?? 2);
  const seed = Number(values.seed ?? 1);
  const answers = answerPool(seed);
  const sets = SETS.map(({ name, constraints }, index) => {
    process.stderr.write(`[${index + 1}/${SETS.length}] ${name} ...\n`);
    const result = measure(constraints, answers, seconds);
    return {
      name,
      constraints: constraints.map((c) => c.id),
      ...result,
      us_per_check: Number((1e6 / result.checks_per_s).toFixed(1)),
      ratio_to_target: Number((result.checks_per_s / TARGET_CHECKS_PER_S).toFixed(2)),
    };
  });
  const report = {
    bench: 'checkers',
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    answer_words: BASE_ANSWER.split(' ').length,
    seconds_per_set: seconds,
    seed,
    target_checks_per_s: TARGET_CHECKS_PER_S,
    sets,
    min_checks_per_s: Math.min(...sets.map((s) => s.checks_per_s)),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

main();
