/**
 * `corgi:no_repeat_ngram`: the CORGI paper's story task (Bezalel, Orgad, Globerson, AAAI 2025,
 * arXiv 2411.01483: continue a story prefix), whose checkable part the constraint spec
 * fixes as: no repeated word n-gram (n = 4 by default). The paper measured repetition as rep-n,
 * the share of n-grams that repeat an earlier one.
 *
 * Semantics:
 * - Words: maximal runs of letters and digits, with inner apostrophes kept ("don't"; ’ counts as
 *   '), lowercased after Unicode NFC. Punctuation, markup and line breaks are not words, so
 *   n-grams run across sentence boundaries ("... the end. The end ..." repeats "the end").
 * - Score: distinct n-grams / all n-grams, i.e. 1 − rep-n. A text with fewer than n words has
 *   no n-gram and passes with score 1.
 * - Feedback quotes the repeated n-grams (the first five, then how many more).
 */
import { z } from 'zod';
import { type CheckOutcome, defineChecker } from '../types.ts';

const kwargsSchema = z.strictObject({
  n: z
    .int({ error: 'n must be a whole number of words' })
    .min(1, { error: 'n must be at least 1' })
    .max(64, { error: 'n must be at most 64' })
    .default(4)
    .describe('The length in words of the sequences that must not repeat.'),
});

export type NoRepeatNgramKwargs = z.output<typeof kwargsSchema>;

/** How many repeated n-grams feedback quotes before summarizing the rest. */
const QUOTED = 5;

/** The words n-grams are made of: lowercase runs of letters/digits with inner apostrophes. */
export function ngramWords(text: string): string[] {
  return (
    text
      .normalize('NFC')
      .toLowerCase()
      .replace(/’/g, "'")
      .match(/[\p{L}\p{M}\p{N}]+(?:'[\p{L}\p{M}\p{N}]+)*/gu) ?? []
  );
}

/**
 * One key per n-gram of `words`, in order, equal for equal n-grams. Words become integer ids and
 * an n-gram the number its ids spell in base (vocabulary size) while that stays exact (below
 * 2^53: any 4-gram key of a text with under 8,192 distinct words); hashing numbers instead of
 * "the dog ran home" strings is about 3x faster.
 */
function ngramKeys(words: readonly string[], n: number): (number | string)[] {
  const ids = new Map<string, number>();
  const codes = words.map((word) => {
    let id = ids.get(word);
    if (id === undefined) {
      id = ids.size;
      ids.set(word, id);
    }
    return id;
  });
  const base = ids.size;
  const numeric = base ** n < Number.MAX_SAFE_INTEGER;
  const keys: (number | string)[] = [];
  for (let i = 0; i + n <= words.length; i++) {
    if (numeric) {
      let key = 0;
      for (let k = 0; k < n; k++) key = key * base + codes[i + k];
      keys.push(key);
    } else {
      keys.push(codes.slice(i, i + n).join(','));
    }
  }
  return keys;
}

/**
 * Each distinct n-gram key with the index of its first occurrence and its count, in order of
 * first occurrence. Only built for a text that repeats one: a Set of the keys tells the rest.
 */
function ngramCounts(
  keys: readonly (number | string)[],
): Map<number | string, [first: number, count: number]> {
  const counts = new Map<number | string, [first: number, count: number]>();
  keys.forEach((key, i) => {
    const entry = counts.get(key);
    if (entry) entry[1]++;
    else counts.set(key, [i, 1]);
  });
  return counts;
}

function checkNoRepeatNgram(response: string, { n }: NoRepeatNgramKwargs): CheckOutcome {
  const words = ngramWords(response);
  const total = words.length - n + 1;
  if (total <= 0) return { ok: true, score: 1, feedback: null };
  const keys = ngramKeys(words, n);
  if (new Set(keys).size === keys.length) return { ok: true, score: 1, feedback: null };
  const counts = ngramCounts(keys);
  const repeated: string[] = [];
  for (const [first, count] of counts.values()) {
    if (count > 1) repeated.push(words.slice(first, first + n).join(' '));
  }
  if (repeated.length === 0) return { ok: true, score: 1, feedback: null };
  const quoted = repeated
    .slice(0, QUOTED)
    .map((gram) => `"${gram}"`)
    .join(', ');
  const more = repeated.length > QUOTED ? ` and ${repeated.length - QUOTED} more` : '';
  const phrases = n === 1 ? 'words' : `${n}-word phrases`;
  return {
    ok: false,
    score: counts.size / total,
    feedback: `You repeated the following ${phrases}: ${quoted}${more}. Do not repeat any sequence of ${n} ${n === 1 ? 'word' : 'words'}.`,
  };
}

export const noRepeatNgramChecker = defineChecker({
  id: 'corgi:no_repeat_ngram',
  description: "No sequence of n words may occur twice (the CORGI paper's story task; n defaults to 4).",
  kwargsSchema,
  describe: ({ n }) => (n === 1 ? 'Do not use any word twice.' : `Do not repeat any sequence of ${n} words.`),
  check: checkNoRepeatNgram,
});
