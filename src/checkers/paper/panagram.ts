/**
 * `corgi:panagram`: the CORGI paper's panagram task (Bezalel, Orgad, Globerson, AAAI 2025, arXiv
 * 2411.01483), as the constraint spec fixes it (docs/checkers.md): answer with one valid English word that
 * uses every given letter and no other (a letter may repeat: "level" for v, l, e).
 *
 * Semantics:
 * - The answer is the response trimmed, without a leading "Word:" label (the paper's prompt
 *   format), without surrounding punctuation, quotes or markup (`"Jelly."`, `**jelly**`), and
 *   lowercased. If that is empty or more than one word, the score is 0 (the paper's critic also
 *   gave 0 for "The output format is incorrect").
 * - Valid word: known to the Hunspell en_US dictionary (`dictionary-en`, the paper used enchant's
 *   en_US) or, for British spellings ("labour", "humour"), en_GB (`dictionary-en-gb`), through
 *   nspell. Proper nouns are not words here ("lycra" fails; Hunspell only knows "Lycra").
 * - Letters: only letters count; an apostrophe or hyphen inside the word is neither missing nor
 *   extra. An accented letter is a different letter ("é" is not "e").
 * - Score: the mean of (valid word, no letter missing, no extra letter), as the paper's critic.
 * - The dictionaries load once, on the first check (about 0.3 s); words are memoized.
 */

import { createRequire } from 'node:module';
import dictionaryEnUs from 'dictionary-en';
import dictionaryEnGb from 'dictionary-en-gb';
import { z } from 'zod';
import { joinFeedback } from '../feedback.ts';
import { type CheckOutcome, defineChecker } from '../types.ts';

/** The part of nspell's API used here (the package ships no types). */
interface Speller {
  correct(word: string): boolean;
}
type NSpell = (dictionary: { aff: Uint8Array; dic: Uint8Array }) => Speller;

const require = createRequire(import.meta.url);
const nspell = require('nspell') as NSpell;

let spellers: Speller[] | null = null;
const validity = new Map<string, boolean>();
/** Words memoized at most; past this the memo starts over (answers are short and repetitive). */
const VALIDITY_CACHE_SIZE = 50_000;

/** True when Hunspell's en_US or en_GB dictionary knows `word` as written (lowercase here). */
export function isEnglishWord(word: string): boolean {
  let valid = validity.get(word);
  if (valid === undefined) {
    spellers ??= [nspell(dictionaryEnUs), nspell(dictionaryEnGb)];
    valid = spellers.some((speller) => speller.correct(word));
    if (validity.size >= VALIDITY_CACHE_SIZE) validity.clear();
    validity.set(word, valid);
  }
  return valid;
}

const kwargsSchema = z.strictObject({
  letters: z
    .array(
      z
        .string({ error: 'each letter must be a string' })
        .regex(/^[a-zA-Z]$/, { error: 'each letter must be a single letter a–z' })
        .toLowerCase(),
      { error: 'letters must be an array of single letters' },
    )
    .min(1, { error: 'letters must list at least one letter' })
    .superRefine((letters, ctx) => {
      const seen = new Set<string>();
      letters.forEach((letter, i) => {
        if (seen.has(letter)) {
          ctx.addIssue({
            code: 'custom',
            path: [i],
            message: `letter "${letter}" is listed twice; list each letter once`,
          });
        }
        seen.add(letter);
      });
    })
    .describe('The letters the word must use, each at least once, and no other letters.'),
});

export type PanagramKwargs = z.output<typeof kwargsSchema>;

/**
 * The word a response answers with: trimmed, without a leading "Word:" label and surrounding
 * punctuation, quotes or markup, lowercased. May be empty or contain spaces (then it is no answer).
 */
export function extractAnswerWord(response: string): string {
  return response
    .normalize('NFC')
    .trim()
    .replace(/^word\s*:\s*/i, '')
    .replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '')
    .toLowerCase();
}

/** "the letter b" / "the letters b, c". */
function letterList(letters: readonly string[]): string {
  return letters.length === 1 ? `the letter ${letters[0]}` : `the letters ${letters.join(', ')}`;
}

function checkPanagram(response: string, { letters }: PanagramKwargs): CheckOutcome {
  const word = extractAnswerWord(response);
  const pieces = word.split(/\s+/).filter(Boolean);
  if (pieces.length !== 1) {
    const actual = pieces.length === 0 ? 'the answer has no word' : `the answer has ${pieces.length} words`;
    return {
      ok: false,
      score: 0,
      feedback: `Answer with only one English word that uses ${letterList(letters)}; ${actual}.`,
    };
  }
  const used = [...new Set(word.match(/\p{L}/gu) ?? [])];
  const missing = letters.filter((letter) => !used.includes(letter));
  const extra = used.filter((letter) => !letters.includes(letter));
  const valid = isEnglishWord(word);
  const messages: string[] = [];
  if (!valid) messages.push(`"${word}" is not a valid English word.`);
  if (missing.length > 0) messages.push(`"${word}" doesn't have ${letterList(missing)}.`);
  if (extra.length > 0) {
    messages.push(
      `"${word}" has ${letterList(extra)}, which ${extra.length === 1 ? 'is' : 'are'} not on the list.`,
    );
  }
  if (messages.length === 0) return { ok: true, score: 1, feedback: null };
  const score = (Number(valid) + Number(missing.length === 0) + Number(extra.length === 0)) / 3;
  return { ok: false, score, feedback: joinFeedback(messages) };
}

export const panagramChecker = defineChecker({
  id: 'corgi:panagram',
  description:
    "Answer with one valid English word that uses every given letter and no other letter (the CORGI paper's panagram task).",
  kwargsSchema,
  describe: ({ letters }) =>
    `Answer with one valid English word that uses all of these letters and no other letter (a letter may repeat): ${letters.join(', ')}.`,
  check: checkPanagram,
});
