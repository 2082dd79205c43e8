/**
 * Shared NLP plumbing for the paper's checkers (and, later, the task generators and the trainer):
 * one lazily created wink-nlp instance with the `wink-eng-lite-web-model` English model, and
 * `analyzeText`, which turns a text into tokens with lemma and Universal Dependencies POS tag,
 * plus wink's lexicon-and-rule sentiment score.
 *
 * Measured on CommonGen-style sentences (see test/checkers/concepts.test.ts), two quirks of the
 * model shape this file:
 * - A capitalized sentence-initial plural is tagged PROPN and left unlemmatized ("Dogs", "Geese",
 *   "Children"). We analyze the lowercased text, which fixes those and changes nothing else we
 *   measured (wink's sentiment ignores case too).
 * - A third-person verb right after a noun subject is often tagged NOUN ("The girl picks apples",
 *   "A man talks on his phone": 12 of 45 hand-written CommonGen sentences). `altPos` marks such
 *   tokens as a likely VERB (see `markLikelyVerbs`), so a POS check can accept either reading.
 * Everything here is deterministic and does no I/O after the model is loaded; results are memoized
 * per text so that several checkers looking at one response parse it once.
 */

import { createRequire } from 'node:module';
import type WinkFn from 'wink-nlp';
import type { ItsFunction, Model, PartOfSpeech, WinkMethods } from 'wink-nlp';

/** A Universal Dependencies part-of-speech tag, as wink's tagger writes it. */
export type UdPos = PartOfSpeech;

/** One token of an analyzed text. Every string is lowercase (the text is analyzed lowercased). */
export interface AnalyzedToken {
  /** The token's normal form: lowercase surface, with wink's spelling normalizations. */
  readonly normal: string;
  /** wink's context-dependent lemma ("threw" → "throw", "children" → "child", "better" → "good"). */
  readonly lemma: string;
  /** wink's POS tag for the token in context. */
  readonly pos: UdPos;
  /**
   * A second plausible tag when the first is likely a tagger error, else null: VERB for a NOUN in
   * a clause with no verb right after its subject ("the girl *picks* apples"), and for a
   * participle tagged ADJ ("a *motorized* scooter").
   */
  readonly altPos: UdPos | null;
  /** wink's token type: `word`, `number`, `punctuation`, `emoji`, `email`, `url`, ... */
  readonly type: string;
}

/** What `analyzeText` returns for one text. */
export interface TextAnalysis {
  readonly tokens: readonly AnalyzedToken[];
  /**
   * wink's document sentiment in [-1, 1]: lexicon scores of words, emoji and emoticons, flipped
   * inside negation scopes ("not good" < 0), normalized. 0 = neutral (no sentiment words).
   */
  readonly sentiment: number;
}

let instance: WinkMethods | null = null;

const require = createRequire(import.meta.url);

/**
 * The one wink instance, created on first use: loading the model takes 0.15–0.4 s, which
 * processes that never check a paper task (an IFEval-only `corgi check`) should not pay. The pipe
 * leaves out named entities and custom entities, which nothing here reads.
 */
export function getNlp(): WinkMethods {
  if (!instance) {
    const winkNLP = require('wink-nlp') as typeof WinkFn;
    const model = require('wink-eng-lite-web-model') as Model;
    instance = winkNLP(model, ['sbd', 'negation', 'sentiment', 'pos']);
  }
  return instance;
}

/** How many analyses `analyzeText` keeps: the latest responses, each checked by several checkers. */
const CACHE_SIZE = 256;
/** Longer texts are analyzed every time rather than kept, so the cache stays small. */
const CACHE_MAX_CHARS = 20_000;
const analysisCache = new Map<string, TextAnalysis>();

/**
 * Tokens (with lemma and POS) and sentiment of `text`, analyzed lowercased. Memoized: the last
 * 256 texts (up to 20,000 characters each) are kept, so concepts and sentiment checks of one
 * response, and repeated checks of it, parse it once.
 */
export function analyzeText(text: string): TextAnalysis {
  const key = text.toLowerCase();
  const cached = analysisCache.get(key);
  if (cached) {
    // Refresh its place: the Map's insertion order is the eviction order.
    analysisCache.delete(key);
    analysisCache.set(key, cached);
    return cached;
  }
  const analysis = analyzeUncached(key);
  if (key.length <= CACHE_MAX_CHARS) {
    analysisCache.set(key, analysis);
    if (analysisCache.size > CACHE_SIZE) analysisCache.delete(analysisCache.keys().next().value!);
  }
  return analysis;
}

type MutableToken = { -readonly [K in keyof AnalyzedToken]: AnalyzedToken[K] };

/** `analyzeText` without the cache, for measuring the parse cost. `text` is used as given. */
export function analyzeUncached(text: string): TextAnalysis {
  const nlp = getNlp();
  const its = nlp.its;
  const doc = nlp.readDoc(text);
  const tokens = doc.tokens();
  const normals = tokens.out(its.normal) as string[];
  // wink's typings declare `its.lemma` with a signature `out` does not accept; it works at run time.
  const lemmas = tokens.out(its.lemma as unknown as ItsFunction<string>) as string[];
  const tags = tokens.out(its.pos) as UdPos[];
  const types = tokens.out(its.type) as string[];
  const analyzed: MutableToken[] = normals.map((normal, i) => ({
    normal,
    lemma: lemmas[i],
    pos: tags[i],
    altPos: null,
    type: types[i],
  }));
  markLikelyVerbs(analyzed);
  return { tokens: analyzed, sentiment: doc.out(its.sentiment) as number };
}

/** Tags that end a clause for `markLikelyVerbs`. */
const CLAUSE_BREAKS = new Set<UdPos>(['PUNCT', 'CCONJ', 'SCONJ']);
/** Words that start a new clause whatever their tag (wink tags "as", "while", "after" ADP). */
const CLAUSE_OPENERS = new Set([
  'as',
  'while',
  'when',
  'whenever',
  'because',
  'if',
  'although',
  'though',
  'after',
  'before',
  'until',
  'since',
  'where',
  'whereas',
  'once',
  'who',
  'which',
  'that',
]);
/** Pronouns that can be the subject right before a verb ("she sews"), unlike "their", "his". */
const SUBJECT_PRONOUNS = new Set(['i', 'you', 'he', 'she', 'it', 'we', 'they', 'who', 'someone', 'everyone']);
/** Tags that can follow a verb at the start of a coordinated clause ("and *places* them in"). */
const AFTER_VERB = new Set<UdPos>(['DET', 'PRON', 'ADP', 'ADV', 'PART', 'NUM']);

/**
 * Sets `altPos = 'VERB'` where wink's tag is likely wrong (see the file header):
 * 1. in a clause with no finite verb, the first NOUN right after a noun or subject pronoun
 *    ("the dog *leaps* into", "dancers *dance* to"), or first in a clause that follows a
 *    coordinating conjunction and is itself followed by a determiner, pronoun, preposition, ...
 *    ("and *places* them");
 * 2. a participle tagged ADJ ("a *motorized* scooter", "the *running* water").
 * Only ever adds a reading; the tagger's own tag stays in `pos`.
 */
function markLikelyVerbs(tokens: MutableToken[]): void {
  let start = 0;
  for (let end = 0; end <= tokens.length; end++) {
    if (
      end < tokens.length &&
      !CLAUSE_BREAKS.has(tokens[end].pos) &&
      !CLAUSE_OPENERS.has(tokens[end].normal)
    ) {
      continue;
    }
    markClause(tokens, start, end);
    start = end + 1;
  }
  for (const token of tokens) {
    if (token.pos === 'ADJ' && /[a-z](?:ed|ing)$/.test(token.normal)) token.altPos = 'VERB';
  }
}

/**
 * True for a token that makes its clause finite: a VERB or AUX that is not a participle ("hill
 * *covered* with snow", "*running* water") nor an infinitive ("into the air to *catch*").
 */
function isFiniteVerb(tokens: AnalyzedToken[], i: number): boolean {
  const token = tokens[i];
  if (token.pos !== 'VERB' && token.pos !== 'AUX') return false;
  if (/(?:ed|ing)$/.test(token.normal)) return false;
  return !(i > 0 && tokens[i - 1].normal === 'to');
}

function markClause(tokens: MutableToken[], start: number, end: number): void {
  if (end - start < 2) return;
  for (let i = start; i < end; i++) if (isFiniteVerb(tokens, i)) return;
  const afterConjunction = start > 0 && tokens[start - 1].pos === 'CCONJ';
  for (let i = start; i < end; i++) {
    const token = tokens[i];
    if (token.pos !== 'NOUN') continue;
    const prev = i > start ? tokens[i - 1] : null;
    const afterSubject =
      prev !== null &&
      (prev.pos === 'NOUN' ||
        prev.pos === 'PROPN' ||
        (prev.pos === 'PRON' && SUBJECT_PRONOUNS.has(prev.normal)));
    const leadsCoordinate =
      i === start && afterConjunction && i + 1 < end && AFTER_VERB.has(tokens[i + 1].pos);
    if (afterSubject || leadsCoordinate) {
      token.altPos = 'VERB';
      return;
    }
  }
}

const lemmaCache = new Map<string, string>();

/**
 * The lemma of a single word, analyzed on its own and lowercased ("Dogs" → "dog", "threw" →
 * "throw"). Memoized, so a concept's lemma is computed once per process.
 */
export function lemmaOf(word: string): string {
  const key = word.trim().toLowerCase();
  let lemma = lemmaCache.get(key);
  if (lemma === undefined) {
    const tokens = analyzeUncached(key).tokens;
    lemma = tokens.length === 1 ? tokens[0].lemma : key;
    lemmaCache.set(key, lemma);
  }
  return lemma;
}

/**
 * Candidate base forms of a regularly inflected word, by suffix rules only: "sews" → "sew",
 * "watches" → "watch", "flies" → "fly", "danced" → "dance", "stopped" → "stop", "running" → "run",
 * "making" → "make". A fallback for words wink's lemmatizer does not know in the tag it was given.
 * Over-generates ("walked" → "walk", "walke"), so only use it to test against known words.
 * Bases shorter than 3 letters are dropped ("is" ↛ "i", "has" ↛ "ha"), and "-d" is only removed
 * after consonant + "e" ("baked" → "bake", but "seed" ↛ "see", "bed" ↛ "be").
 */
export function regularBases(word: string): readonly string[] {
  let bases = basesCache.get(word);
  if (bases === undefined) {
    bases = computeRegularBases(word);
    if (basesCache.size >= BASES_CACHE_SIZE) basesCache.clear();
    basesCache.set(word, bases);
  }
  return bases;
}

/** Memo for `regularBases`: words repeat across answers, and the suffix rules cost ~1 µs a word. */
const basesCache = new Map<string, readonly string[]>();
const BASES_CACHE_SIZE = 100_000;
const VOWELS = 'aeiou';

function computeRegularBases(word: string): string[] {
  const bases: string[] = [];
  const add = (base: string) => {
    if (base.length >= 3 && base !== word && !bases.includes(base)) bases.push(base);
  };
  /** "stopp" → "stop": a doubled final consonant. */
  const undouble = (stem: string) => {
    const last = stem.at(-1);
    if (last !== undefined && last === stem.at(-2) && !VOWELS.includes(last)) add(stem.slice(0, -1));
  };
  if (word.endsWith('s')) {
    if (word.endsWith('ies')) add(`${word.slice(0, -3)}y`);
    if (/(?:[sxzo]|ch|sh)es$/.test(word)) add(word.slice(0, -2));
    if (!word.endsWith('ss')) add(word.slice(0, -1));
  } else if (word.endsWith('ed')) {
    if (word.endsWith('ied')) add(`${word.slice(0, -3)}y`);
    const stem = word.slice(0, -2);
    add(stem);
    // "baked" → "bake", but not "seed" → "see" or "freed" → "free".
    if (!VOWELS.includes(stem.at(-1) ?? 'a')) add(`${stem}e`);
    undouble(stem);
  } else if (word.endsWith('ing')) {
    const stem = word.slice(0, -3);
    add(stem);
    add(`${stem}e`);
    undouble(stem);
  }
  return bases;
}
