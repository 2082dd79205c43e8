/**
 * `corgi:num_planning`: the CORGI paper's numerical planning task (Bezalel, Orgad, Globerson,
 * "Teaching Models to Improve on Tape", AAAI 2025, arXiv 2411.01483), as the constraint
 * spec fixes it (docs/checkers.md): complete a prefix with exactly `n` words, the last being `last_word`.
 *
 * Semantics (the paper's critic, with the deviations marked):
 * - The completion is the answer with a leading copy of `prefix` removed, cut after its first '.'.
 *   Deviation: the copy is matched word by word, so whitespace differences and leading pieces
 *   without letters or digits ("* ", "--- ") do not hide it; 30 of the paper's 1,000 reference
 *   answers need this.
 * - A word is a whitespace-separated piece with at least one letter or digit (Unicode-aware).
 * - The last word is compared after removing non-word characters ("claw." → "claw",
 *   "talon-like" → "talonlike"), on both sides. Deviation: case-insensitively, because the
 *   task is about planning words, not capitalization ("Distance" ends the sentence as well as
 *   "distance"); the paper compared exactly.
 * - Score 0.8·[count = n] + 0.2·[last word right]; feedback uses the paper's two sentences.
 */

import { z } from 'zod';
import { joinFeedback } from '../feedback.ts';
import { type CheckOutcome, defineChecker } from '../types.ts';

/** A piece of text with at least one letter or digit counts as a word. */
const HAS_WORD_CHARACTER = /[\p{L}\p{N}]/u;
/** Characters removed before comparing last words (everything but letters, marks, digits, `_`). */
const NON_WORD_CHARACTERS = /[^\p{L}\p{M}\p{N}_]/gu;

const kwargsSchema = z.strictObject({
  n: z
    .int({ error: 'n must be a whole number of words' })
    .min(1, { error: 'n must be at least 1 (the number of words to complete the sentence with)' })
    .describe('How many words the completion must have, the last word included.'),
  last_word: z
    .string({ error: 'last_word must be a string' })
    .trim()
    .min(1, { error: 'last_word must not be empty' })
    .refine((word) => !/\s/.test(word), { error: 'last_word must be a single word, without spaces' })
    .refine((word) => HAS_WORD_CHARACTER.test(word), { error: 'last_word must contain a letter or digit' })
    .describe('The word the completion must end with.'),
  prefix: z
    .string({ error: 'prefix must be a string' })
    .default('')
    .describe(
      'The beginning of the sentence to complete; a copy of it at the start of the answer is ignored.',
    ),
});

export type NumPlanningKwargs = z.output<typeof kwargsSchema>;

/** Removes characters that are not letters, marks, digits or `_` (the paper's `re.sub(r'\W+', '', w)`). */
export function stripNonWord(word: string): string {
  return word.normalize('NFC').replace(NON_WORD_CHARACTERS, '');
}

/**
 * The part of `answer` the constraint is about: after a leading copy of `prefix`, up to and
 * including the first '.'. The copy is found word by word: each whitespace-separated piece of the
 * prefix that has a letter or digit must match the answer's next such piece exactly, and pieces
 * without one (quotes, "*", "---") are skipped on both sides. Without a full match the whole
 * answer is the completion.
 */
export function extractCompletion(answer: string, prefix: string): string {
  const text = answer.normalize('NFC');
  const wanted = prefix
    .normalize('NFC')
    .split(/\s+/)
    .filter((piece) => HAS_WORD_CHARACTER.test(piece));
  let start = 0;
  if (wanted.length > 0) {
    let matched = 0;
    for (const piece of text.matchAll(/\S+/g)) {
      if (!HAS_WORD_CHARACTER.test(piece[0])) continue;
      if (piece[0] !== wanted[matched]) break;
      matched++;
      if (matched === wanted.length) {
        start = piece.index + piece[0].length;
        break;
      }
    }
  }
  const completion = text.slice(start);
  const dot = completion.indexOf('.');
  return dot === -1 ? completion : completion.slice(0, dot + 1);
}

/** The words of a completion: whitespace-separated pieces with at least one letter or digit. */
export function countableWords(completion: string): string[] {
  return completion.split(/\s+/).filter((piece) => HAS_WORD_CHARACTER.test(piece));
}

function checkNumPlanning(response: string, { n, last_word, prefix }: NumPlanningKwargs): CheckOutcome {
  const words = countableWords(extractCompletion(response, prefix));
  const lastWord = stripNonWord(words.at(-1) ?? '');
  const countRight = words.length === n;
  const lastWordRight = lastWord.toLowerCase() === stripNonWord(last_word).toLowerCase();
  const messages: string[] = [];
  if (!countRight) {
    messages.push(
      `You completed the sentence with ${words.length} words. However you should complete the sentence with ${n} words.`,
    );
  }
  if (!lastWordRight) {
    messages.push(`The last word should be "${last_word}" and not "${lastWord}".`);
  }
  const score = 0.8 * Number(countRight) + 0.2 * Number(lastWordRight);
  return messages.length === 0
    ? { ok: true, score: 1, feedback: null }
    : { ok: false, score, feedback: joinFeedback(messages) };
}

export const numPlanningChecker = defineChecker({
  id: 'corgi:num_planning',
  description:
    "Complete a sentence prefix with exactly n words, ending with last_word (the CORGI paper's numerical planning task).",
  kwargsSchema,
  describe: ({ n, last_word, prefix }) => {
    const count = `exactly ${n} ${n === 1 ? 'word' : 'words'}, the last word being "${last_word}"`;
    return prefix.trim()
      ? `Complete the sentence with ${count}: ${prefix.trim()}`
      : `Write a sentence with ${count}.`;
  },
  check: checkNumPlanning,
});
