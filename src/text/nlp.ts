/**
 * Shared NLP plumbing for the paper's checkers (and, later, the task generators and the trainer):
 * one lazily created wink-nlp instance with the `wink-eng-lite-web-model` English model, and
 * `analyzeText`, which turns a text into tokens with lemma and Universal Dependencies POS tag,
 * plus wink's lexicon-and-rule sentiment score.
 *
 * Measured on CommonGen-style sentences (see test/checkers/paper/concepts.test.ts), two quirks of the
 * model shape this file:
 * - A capitalized sentence-initial plural is tagged PROPN and left unlemmatized ("Dogs", "Geese",
 *   "Children"). We analyze the lowercased text, which fixes those and changes nothing else we
 *   measured (wink's sentiment ignores case too).
 * - A third-person verb right after a noun subject is often tagged NOUN ("The girl picks apples",
 *   "A man talks on his phone": 12 of 45 hand-written CommonGen sentences). `altPos` marks such
 *   tokens as a likely VERB (see `markLikelyVerbs`), so a POS check can accept either reading.
 * Everything here is deterministic and does no I/O after the model is loaded; results are memoized
 * per text so that several checkers looking at one response parse it once.
 *
 * Two paths, because wink's POS tagger is most of the cost (on a 60-word answer: ~100 µs a parse
 * with the tagger, ~45 µs without it, and `corgi:concepts` + `corgi:sentiment` must together stay
 * within ~50 µs):
 * - the tagger path, `analyzeText`, with `getNlp()`'s full pipe: `corgi:concepts` with `pos`, and
 *   the fallback for concepts the quick path does not find;
 * - the light path, with `getLightNlp()`'s pipe without 'pos': `readSentiment` (wink's sentiment
 *   does not read tags, so the score is the same) and `visitCertainWordForms`, the forms each word
 *   stands for whatever its tag, which lets `corgi:concepts` without `pos` skip the tagger.
 */

import { createRequire } from 'node:module';
import type WinkFn from 'wink-nlp';
import type { ItsFunction, Model, PartOfSpeech, WinkMethods } from 'wink-nlp';
import { boundPieces, isWinkSpace } from './wink-pieces.ts';

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

const require = createRequire(import.meta.url);

/** wink pipes: the tagger path's, and the light path's (the same without 'pos'). */
const TAGGER_PIPE = ['sbd', 'negation', 'sentiment', 'pos'];
const LIGHT_PIPE = ['sbd', 'negation', 'sentiment'];

function createNlp(pipe: string[]): WinkMethods {
  const winkNLP = require('wink-nlp') as typeof WinkFn;
  const model = require('wink-eng-lite-web-model') as Model;
  return winkNLP(model, pipe);
}

let instance: WinkMethods | null = null;
let lightInstance: WinkMethods | null = null;

/**
 * The tagger path's wink instance, created on first use: loading the model takes 0.15–0.4 s,
 * which processes that never check a paper task (an IFEval-only `corgi check`) should not pay.
 * The pipe leaves out named entities and custom entities, which nothing here reads.
 */
export function getNlp(): WinkMethods {
  instance ??= createNlp(TAGGER_PIPE);
  return instance;
}

/**
 * The light path's wink instance: `getNlp()`'s pipe without the POS tagger, at less than half
 * the cost a parse. Tokens, normals, sentiment and tag-independent lemmas come out the same.
 */
export function getLightNlp(): WinkMethods {
  lightInstance ??= createNlp(LIGHT_PIPE);
  return lightInstance;
}

/**
 * A bounded memo for a long-running server: two generations of at most `limit` entries; a hit
 * in the older one moves the entry to the newer, and when the newer is full the older is dropped.
 * So the most recently used `limit` entries stay, at most 2 × `limit` are kept, and a hit costs
 * one or two Map lookups (a strict LRU's delete-and-reinsert costs more on every hit).
 */
class Memo<V> {
  #young = new Map<string, V>();
  #old = new Map<string, V>();
  constructor(readonly limit: number) {}

  get(key: string): V | undefined {
    const young = this.#young.get(key);
    if (young !== undefined) return young;
    const old = this.#old.get(key);
    if (old !== undefined) this.set(key, old);
    return old;
  }

  set(key: string, value: V): void {
    if (this.#young.size >= this.limit) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(key, value);
  }
}

/** How many analyses `analyzeText` keeps at least: the latest responses, each checked by several checkers. */
const ANALYSIS_MEMO_SIZE = 256;
/** Longer texts are analyzed every time rather than kept, so the memo stays small. */
const MEMO_MAX_CHARS = 20_000;
const analysisMemo = new Memo<TextAnalysis>(ANALYSIS_MEMO_SIZE);

/**
 * Tokens (with lemma and POS) and sentiment of `text`, analyzed lowercased, on the tagger path.
 * Memoized: at least the last 256 texts (up to 20,000 characters each) are kept, so concepts and
 * sentiment checks of one response, and repeated checks of it, parse it once.
 */
export function analyzeText(text: string): TextAnalysis {
  const key = text.toLowerCase();
  let analysis = analysisMemo.get(key);
  if (analysis === undefined) {
    analysis = analyzeUncached(key);
    if (key.length <= MEMO_MAX_CHARS) analysisMemo.set(key, analysis);
  }
  return analysis;
}

type MutableToken = { -readonly [K in keyof AnalyzedToken]: AnalyzedToken[K] };

/**
 * `analyzeText` without the cache, for measuring the parse cost. `text` is used as given, except
 * that pieces too long for wink to read in linear time are cut (`boundPieces`).
 */
export function analyzeUncached(text: string): TextAnalysis {
  const nlp = getNlp();
  const its = nlp.its;
  const doc = nlp.readDoc(boundPieces(text));
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

/** What `corgi:sentiment` reads of a text. */
export interface SentimentReading {
  /** wink's document sentiment in [-1, 1] (see `TextAnalysis.sentiment`). */
  readonly sentiment: number;
  /** Whether some token is a word, rather than only punctuation, numbers, emoji, ... */
  readonly hasWords: boolean;
}

/**
 * The sentiment of `text`, read lowercased like `analyzeText`: from its tagger-path analysis when
 * a check of the same text already paid for one (`corgi:concepts` with `pos`), else from a light
 * parse (not memoized: one response rarely gets two sentiment checks).
 */
export function readSentiment(text: string): SentimentReading {
  const key = text.toLowerCase();
  const analysis = analysisMemo.get(key);
  if (analysis === undefined) return sentimentUncached(key);
  return { sentiment: analysis.sentiment, hasWords: analysis.tokens.some((token) => token.type === 'word') };
}

/**
 * `readSentiment` without the memos, on the light path, or on the tagger path with
 * `path: 'tagger'` (tests check that both give the same). `text` is used as given.
 */
export function sentimentUncached(text: string, path: 'light' | 'tagger' = 'light'): SentimentReading {
  const nlp = path === 'light' ? getLightNlp() : getNlp();
  const doc = nlp.readDoc(boundPieces(text));
  const tokens = doc.tokens();
  // Token by token, since the first is most often a word (all types at once cost ~5 µs).
  let hasWords = false;
  for (let i = 0; i < tokens.length() && !hasWords; i++) {
    hasWords = tokens.itemAt(i).out(nlp.its.type) === 'word';
  }
  return { sentiment: doc.out(nlp.its.sentiment) as number, hasWords };
}

/** Pieces kept by `visitCertainWordForms`: answers reuse words, so this covers a working vocabulary. */
const PIECE_MEMO_SIZE = 50_000;
/** A longer piece (a URL, a run-on string) gets no forms, which leaves it to the tagger path. */
const PIECE_MAX_CHARS = 64;
/**
 * The pieces `visitCertainWordForms` reads: letters, between opening and closing punctuation ("park",
 * "(park),", "dawn!\"", "sat."). wink's tokenizer also remembers every unknown token it has made
 * and keeps a later piece equal to one whole, so how it splits other pieces can depend on what
 * the instance read before ("state's" is "state" + "'s", but one token once "state's." has made
 * it one). Pieces of this shape always split the same way; others are left to the tagger path.
 * (No form here was missing from the tagger path's on 18,500 texts: the Brown corpus, the
 * paper's story prefixes and references, IFEval responses.)
 */
const PLAIN_PIECE = /^[([{"'“‘]*\p{L}+[)\]}"'”’.,;:!?…]*$/u;
const pieceMemo = new Memo<readonly string[]>(PIECE_MEMO_SIZE);
const NO_FORMS: readonly string[] = [];

/**
 * Calls `visit` with the forms of each whitespace-separated piece of `text` (lowercased), in
 * order, until it returns true: the forms the piece's tokens stand for whatever tags the tagger
 * would give them. That is each non-punctuation token's normal, its lemma when the lemma does not
 * depend on the tag, and the normal without an abbreviation's final period. wink keeps a single
 * lemma for most inflected words ("threw", "children", "mice", "dogs", "ran") but lemmatizes
 * others by their tag ("better" → "good" as an adjective, "saw" → "see" as a verb, "building"
 * stays a noun), and `corgi:concepts` adds suffix rules by tag (`regularBases`).
 *
 * So each form here is among the forms the tagger path matches for that token (`formsOf` in
 * concepts.ts), whatever the tagging: a concept found here is found there. One not found here
 * may still be found there, so callers fall back to `analyzeText` for it. Memoized per piece
 * with the light path's instance, at a few µs per new piece; a hit costs a Map lookup. Stopping
 * early saves reading the rest of a text once every concept is found.
 */
export function visitCertainWordForms(text: string, visit: (forms: readonly string[]) => boolean): void {
  const lowercased = text.toLowerCase();
  let start = 0;
  for (let end = 0; end <= lowercased.length; end++) {
    if (end < lowercased.length && !isWinkSpace(lowercased.charCodeAt(end))) continue;
    if (end > start && visit(certainPieceForms(lowercased.slice(start, end)))) return;
    start = end + 1;
  }
}

/** `visitCertainWordForms` as a list, one entry per piece. */
export function certainWordForms(text: string): (readonly string[])[] {
  const forms: (readonly string[])[] = [];
  visitCertainWordForms(text, (pieceForms) => {
    forms.push(pieceForms);
    return false;
  });
  return forms;
}

function certainPieceForms(piece: string): readonly string[] {
  let forms = pieceMemo.get(piece);
  if (forms === undefined) {
    forms =
      piece.length <= PIECE_MAX_CHARS && PLAIN_PIECE.test(piece) ? tagIndependentForms(piece) : NO_FORMS;
    pieceMemo.set(piece, forms);
  }
  return forms;
}

/** `certainPieceForms` uncached: one parse of the piece alone with the light path's instance. */
function tagIndependentForms(piece: string): readonly string[] {
  const nlp = getLightNlp();
  const its = nlp.its;
  const tokens = nlp.readDoc(piece).tokens();
  const normals = tokens.out(its.normal) as string[];
  // Without tags, wink's `its.lemma` gives the lemma only where it does not depend on the tag (a
  // word with one lemma, a contraction's part), and the normal elsewhere.
  const lemmas = tokens.out(its.lemma as unknown as ItsFunction<string>) as string[];
  const types = tokens.out(its.type) as string[];
  const forms = new Set<string>();
  normals.forEach((normal, i) => {
    if (types[i] === 'punctuation') return;
    forms.add(normal).add(lemmas[i]);
    if (/\p{L}\.$/u.test(normal)) forms.add(normal.replace(/\.+$/, ''));
  });
  return forms.size === 0 ? NO_FORMS : [...forms];
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

const lemmaMemo = new Memo<string>(10_000);

/**
 * The lemma of a single word, analyzed on its own and lowercased on the tagger path ("Dogs" →
 * "dog", "threw" → "throw"). Memoized (at least the last 10,000 words), so a concept's lemma is
 * computed once, not once per check.
 */
export function lemmaOf(word: string): string {
  const key = word.trim().toLowerCase();
  let lemma = lemmaMemo.get(key);
  if (lemma === undefined) {
    const tokens = analyzeUncached(key).tokens;
    lemma = tokens.length === 1 ? tokens[0].lemma : key;
    lemmaMemo.set(key, lemma);
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
