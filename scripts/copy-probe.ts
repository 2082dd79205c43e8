/**
 * Does a checkpoint copy from its context? The probe behind docs/experiments/2026-11-24-teaching-the-base-to-copy.md.
 *
 *   node bin/run-ts.js scripts/copy-probe.ts <checkpoint dir> [--sentences 60]
 *
 * On the first N Brown validation sentences of at most 25 words (no randomness), teacher-forced:
 *
 * - `raw_copy_accuracy`: `<bos> s <eos> s` — the share of the second s's tokens (after its first)
 *   that the argmax predicts, i.e. copying plain text seen once before (the induction circuit);
 * - `chat_copy_accuracy`: the chat template of "Repeat this sentence: s" → s — the same on the
 *   assistant's reply, i.e. copying from a prompt;
 * - `sentence_nll`: mean next-token loss (nats) on the first s, i.e. how good a language model it
 *   still is (copying phases can wreck this).
 *
 * Prints one JSON object. Forward passes only: a few seconds.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/policy/backend.ts';
import { loadCheckpoint } from '../src/policy/checkpoint.ts';
import { Tokenizer } from '../src/policy/tokenizer.ts';
import { taskSentences } from '../src/tasks/sentences.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { sentences: { type: 'string', default: '60' } },
});
const dir = positionals[0];
if (!dir) {
  console.error('usage: node bin/run-ts.js scripts/copy-probe.ts <checkpoint dir> [--sentences 60]');
  process.exit(2);
}
await selectBackend({ log: () => {} });
const model = await loadCheckpoint(dir);
const tokenizer = Tokenizer.fromFile(`${dir}/tokenizer.json`);
if (tokenizer.bosId === null) throw new Error(`${dir}/tokenizer.json has no <|begin_of_text|>`);
const sentences = taskSentences('validation')
  .filter((sentence) => sentence.words.length <= 25)
  .slice(0, Number(values.sentences));

/** Log-probabilities of every next token of `ids` (one forward pass). */
function logProbs(ids: number[]): number[][] {
  return tf.tidy(() => {
    const logits = model.forward(tf.tensor2d([ids], undefined, 'int32'));
    return (tf.logSoftmax(logits).arraySync() as number[][][])[0]!;
  });
}
const argmax = (row: number[]) => row.reduce((best, x, i) => (x > row[best]! ? i : best), 0);
/** Share of tokens ids[from..to) the argmax at the position before predicts. */
const accuracy = (lp: number[][], ids: number[], from: number, to: number) => {
  let right = 0;
  for (let t = from; t < to; t++) if (argmax(lp[t - 1]!) === ids[t]) right += 1;
  return right / (to - from);
};

let raw = 0;
let chat = 0;
let nll = 0;
let nllTokens = 0;
for (const sentence of sentences) {
  const s = tokenizer.encode(sentence.text);
  const doubled = [tokenizer.bosId, ...s, tokenizer.eosId, ...s];
  const lp = logProbs(doubled);
  raw += accuracy(lp, doubled, s.length + 3, doubled.length); // after the copy's first token
  for (let t = 2; t <= s.length; t++) {
    nll -= lp[t - 1]![doubled[t]!]!;
    nllTokens += 1;
  }
  const { ids, assistantMask } = tokenizer.applyChatTemplate([
    { role: 'user', content: `Repeat this sentence: ${sentence.text}` },
    { role: 'assistant', content: sentence.text },
  ]);
  const first = assistantMask.indexOf(1);
  chat += accuracy(logProbs(ids), ids, first + 1, first + s.length);
}
const round = (x: number) => Math.round(x * 1000) / 1000;
console.log(
  JSON.stringify({
    policy: dir,
    sentences: sentences.length,
    raw_copy_accuracy: round(raw / sentences.length),
    chat_copy_accuracy: round(chat / sentences.length),
    sentence_nll: round(nll / nllTokens),
  }),
);
