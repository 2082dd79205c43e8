/**
 * `corgi:concepts`: the CORGI paper's concept-to-sentence tasks (Bezalel, Orgad, Globerson, AAAI
 * 2025, arXiv 2411.01483): CommonGen-Hard (20–30 concepts, no parts of speech) and CommonGen-lite
 * (4–5 concepts, each with a part of speech), as the constraint spec fixes them (docs/checkers.md).
 *
 * Semantics:
 * - Every concept must appear as a lemma: "dogs" covers "dog", "threw" covers "throw". A concept
 *   is found when some token's lemma or lowercase surface form equals the concept or the
 *   concept's own lemma; a word wink's lemmatizer left alone ("sews" tagged NOUN, "motorized")
 *   is also tried through regular suffix rules (`regularBases` in nlp.ts).
 * - Two paths, one verdict. Without `pos`, concepts are first looked up among the forms each word
 *   has whatever its tag (`visitCertainWordForms` in nlp.ts, no POS tagger: most answers pass here);
 *   only concepts not found that way are looked up in the tagged analysis, which is the
 *   reference. With `pos`, every concept is looked up in the tagged analysis.
 * - With `pos`, the token must also carry that part of speech (noun = NOUN/PROPN, verb =
 *   VERB/AUX, adjective = ADJ, adverb = ADV), where a likely tagger error counts both ways (see
 *   `altPos` in nlp.ts).
 * - Score: the fraction of concepts covered. With `pos`, a concept present only in another part
 *   of speech earns half, which is the paper's own reward (the mean of its coverage and
 *   part-of-speech scores) without its LLM common-sense judge.
 * - The whole answer counts. (The paper's critic cut the answer after its first '.', because its
 *   prompt asked for one sentence; sentence count belongs to other constraints here.)
 * - Feedback: the paper's "You are missing the following concepts: dog, park." and, with `pos`,
 *   its "You should correct the part of speech: ..." with the part of speech used instead.
 */

import { z } from 'zod';
import {
  type AnalyzedToken,
  analyzeText,
  lemmaOf,
  regularBases,
  type TextAnalysis,
  type UdPos,
  visitCertainWordForms,
} from '../../text/nlp.ts';
import { joinFeedback } from '../feedback.ts';
import { type CheckOutcome, defineChecker } from '../types.ts';

/** The parts of speech a concept can ask for; the paper's data uses `noun` and `verb`. */
export const CONCEPT_POS = ['noun', 'verb', 'adjective', 'adverb'] as const;
export type ConceptPos = (typeof CONCEPT_POS)[number];

/** Which Universal Dependencies tags satisfy each requested part of speech. */
const POS_TAGS: Record<ConceptPos, readonly UdPos[]> = {
  noun: ['NOUN', 'PROPN'],
  verb: ['VERB', 'AUX'],
  adjective: ['ADJ'],
  adverb: ['ADV'],
};

/** How feedback names the tag a concept was used with instead. */
const TAG_NAMES: Partial<Record<UdPos, string>> = {
  NOUN: 'noun',
  PROPN: 'proper noun',
  VERB: 'verb',
  AUX: 'auxiliary verb',
  ADJ: 'adjective',
  ADV: 'adverb',
  ADP: 'preposition',
  PRON: 'pronoun',
  DET: 'determiner',
  NUM: 'number',
  INTJ: 'interjection',
  CCONJ: 'conjunction',
  SCONJ: 'conjunction',
  PART: 'particle',
};

const kwargsSchema = z
  .strictObject({
    concepts: z
      .array(
        z
          .string({ error: 'each concept must be a string' })
          .trim()
          .toLowerCase()
          .min(1, { error: 'a concept must not be empty' })
          .refine((concept) => /^[\p{L}\p{N}][\p{L}\p{M}\p{N}'’-]*$/u.test(concept), {
            error: 'each concept must be a single word (letters, digits, hyphens or apostrophes)',
          }),
        { error: 'concepts must be an array of words' },
      )
      .min(1, { error: 'concepts must list at least one concept' })
      .describe('Words the answer must use, in any inflected form (lemma match).'),
    pos: z
      .array(
        z.enum(CONCEPT_POS, {
          error: `each pos must be one of ${CONCEPT_POS.map((p) => `"${p}"`).join(', ')}`,
        }),
        { error: 'pos must be an array of parts of speech' },
      )
      .optional()
      .describe(
        'Optional: the part of speech each concept must be used as, one per concept, in the same order.',
      ),
  })
  .superRefine((kwargs, ctx) => {
    if (kwargs.pos && kwargs.pos.length !== kwargs.concepts.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['pos'],
        message: `pos must give one part of speech per concept: got ${kwargs.pos.length} for ${kwargs.concepts.length} concepts`,
      });
    }
  });

export type ConceptsKwargs = z.output<typeof kwargsSchema>;

/** Tags whose unlemmatized words are retried through regular suffix rules. */
const RETRIED_TAGS = new Set<UdPos>(['NOUN', 'PROPN', 'VERB', 'ADJ']);

/**
 * The forms a token can stand for: its lemma and lowercase surface form (without a period wink
 * kept as part of an abbreviation), and for a word wink
 * did not lemmatize (or whose tag is doubtful), its regular base forms. A plain noun in -ing or
 * -ed keeps its own form only ("building" is not "build", "bed" is not "be").
 */
function formsOf(token: AnalyzedToken): string[] {
  const forms = token.lemma === token.normal ? [token.normal] : [token.lemma, token.normal];
  // wink reads a word before the final period as an abbreviation at times ("sun." for Sunday).
  if (/\p{L}\.$/u.test(token.normal)) forms.push(token.normal.replace(/\.+$/, ''));
  const retry = token.altPos !== null || (token.lemma === token.normal && RETRIED_TAGS.has(token.pos));
  if (!retry) return forms;
  if (token.pos === 'NOUN' && token.altPos === null && /(?:ed|ing)$/.test(token.normal)) return forms;
  return [...forms, ...regularBases(token.normal)];
}

/** Tokens by every form they can stand for; built once per analyzed text. */
const formIndexes = new WeakMap<TextAnalysis, Map<string, AnalyzedToken[]>>();

function formIndexOf(analysis: TextAnalysis): Map<string, AnalyzedToken[]> {
  let index = formIndexes.get(analysis);
  if (!index) {
    index = new Map();
    for (const token of analysis.tokens) {
      if (token.type === 'punctuation') continue;
      for (const form of formsOf(token)) {
        const tokens = index.get(form);
        if (tokens) tokens.push(token);
        else index.set(form, [token]);
      }
    }
    formIndexes.set(analysis, index);
  }
  return index;
}

/** How a concept is looked up: as written (lowercase, ’ as ') and by its own lemma. */
function conceptKey(concept: string): string {
  return concept.toLowerCase().replace(/’/g, "'");
}

/** The tokens of `analysis` that stand for `concept` (matched as written or by its lemma). */
export function findConcept(analysis: TextAnalysis, concept: string): AnalyzedToken[] {
  const index = formIndexOf(analysis);
  const key = conceptKey(concept);
  const lemma = lemmaOf(key);
  const found = index.get(key) ?? [];
  return lemma === key ? found : [...found, ...(index.get(lemma) ?? [])];
}

/** For a concept list, the concepts' indexes by the forms that find them; kept per kwargs object. */
const conceptTargets = new WeakMap<readonly string[], Map<string, number[]>>();

function targetsOf(concepts: readonly string[]): Map<string, number[]> {
  let targets = conceptTargets.get(concepts);
  if (!targets) {
    targets = new Map();
    for (const [i, concept] of concepts.entries()) {
      const key = conceptKey(concept);
      for (const form of new Set([key, lemmaOf(key)])) {
        const indexes = targets.get(form);
        if (indexes) indexes.push(i);
        else targets.set(form, [i]);
      }
    }
    conceptTargets.set(concepts, targets);
  }
  return targets;
}

/**
 * Which concepts the quick path finds in `text` without the POS tagger: those equal, as written
 * or by their lemma, to a form some word has whatever its tag (see `visitCertainWordForms`). A concept
 * found here is found by `findConcept` too; one not found here may still be found there.
 */
export function findConceptsQuickly(text: string, concepts: readonly string[]): boolean[] {
  const targets = targetsOf(concepts);
  const found: boolean[] = new Array(concepts.length).fill(false);
  let left = concepts.length;
  visitCertainWordForms(text, (forms) => {
    for (const form of forms) {
      for (const i of targets.get(form) ?? []) {
        if (!found[i]) {
          found[i] = true;
          left--;
        }
      }
    }
    return left === 0;
  });
  return found;
}

function hasPos(token: AnalyzedToken, pos: ConceptPos): boolean {
  const tags = POS_TAGS[pos];
  return tags.includes(token.pos) || (token.altPos !== null && tags.includes(token.altPos));
}

/** "a noun", "an adjective". */
function withArticle(name: string): string {
  return `${/^[aeiou]/.test(name) ? 'an' : 'a'} ${name}`;
}

function checkConcepts(response: string, { concepts, pos }: ConceptsKwargs): CheckOutcome {
  // Without parts of speech, the quick path settles the concepts it finds; the tagger runs only
  // if some concept is left (a failing answer, or a form only a tag explains: "saw" → "see").
  const foundQuickly = pos ? null : findConceptsQuickly(response, concepts);
  let analysis: TextAnalysis | null = null;
  const missing: string[] = [];
  const wrongPos: string[] = [];
  let credit = 0;
  concepts.forEach((concept, i) => {
    if (foundQuickly?.[i]) {
      credit += 1;
      return;
    }
    analysis ??= analyzeText(response);
    const tokens = findConcept(analysis, concept);
    const wanted = pos?.[i];
    if (tokens.length === 0) {
      missing.push(wanted ? `${concept} (${wanted})` : concept);
    } else if (!wanted || tokens.some((token) => hasPos(token, wanted))) {
      credit += 1;
    } else {
      credit += 0.5;
      const used = TAG_NAMES[tokens[0].pos] ?? tokens[0].pos.toLowerCase();
      wrongPos.push(`${concept} as ${withArticle(wanted)} (not as ${withArticle(used)})`);
    }
  });
  const messages: string[] = [];
  if (missing.length > 0) messages.push(`You are missing the following concepts: ${missing.join(', ')}.`);
  if (wrongPos.length > 0) {
    messages.push(`You should correct the part of speech: ${wrongPos.join(', ')}.`);
  }
  if (messages.length === 0) return { ok: true, score: 1, feedback: null };
  return { ok: false, score: credit / concepts.length, feedback: joinFeedback(messages) };
}

export const conceptsChecker = defineChecker({
  id: 'corgi:concepts',
  description:
    "Use every concept word in any inflected form, optionally as a given part of speech (the CORGI paper's CommonGen tasks).",
  kwargsSchema,
  describe: ({ concepts, pos }) =>
    pos
      ? `Write a short and simple sentence that contains all of the following concepts, each used as the given part of speech: ${concepts.map((concept, i) => `${concept} (${pos[i]})`).join(', ')}.`
      : `Write a sentence that contains all of the following concepts: ${concepts.join(', ')}.`,
  check: checkConcepts,
});
