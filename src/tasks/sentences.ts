/**
 * The Brown sentences task generators draw from, with the per-sentence analysis they share,
 * computed once per process and cached (a pool of 2,000 instances must build in seconds).
 *
 * A sentence is eligible for any task when it reads as a plain, whole sentence:
 * - not a headline, 6–30 words (a word: a space-separated piece with a letter or digit, as the
 *   `corgi:num_planning` checker counts), at least 80% of its non-space characters letters, at
 *   most one word with a digit;
 * - it starts with a capital letter (after an opening quote) and ends with . ! or ? (before a
 *   closing quote), its double quotes are balanced (a quotation running on from the previous
 *   sentence would leave a stray quote in the reference), and it has a verb.
 * Each task then applies its own conditions (see source-tasks.ts and target-tasks.ts).
 */
import { createRequire } from 'node:module';
import type WinkFn from 'wink-nlp';
import type { Model, WinkMethods } from 'wink-nlp';
import { type BrownSentence, type BrownSplit, loadBrownCorpus, universalTag } from '../data/brown.ts';
import { lemmaOf, regularBases } from '../text/nlp.ts';

/** A corpus sentence that passed the common filter, with what the generators read from it. */
export interface TaskSentence {
  /** `{docId}-{index}`, unique in the corpus. */
  key: string;
  docId: string;
  /** Index of the sentence inside its document. */
  index: number;
  split: BrownSplit;
  text: string;
  /** Space-separated pieces of `text` with a letter or digit (the num_planning word count). */
  words: string[];
  /** Brown tokens and raw tags, aligned. */
  tokens: readonly string[];
  tags: readonly string[];
}

/** One content word of a sentence: lower case, letters only. */
export interface ContentWord {
  word: string;
  /** Coarse class from the Brown tag. */
  pos: 'noun' | 'verb' | 'adjective';
  /** True for a plural noun (`nns`). */
  plural: boolean;
}

/** Words too vague to be a topic, a concept or a keyword. */
const VAGUE_WORDS = new Set(
  (
    'time times way ways thing things lot lots kind kinds sort sorts fact facts part parts number ' +
    'numbers course case cases something anything nothing everything one ones type types matter ' +
    'point deal bit end side sense means form forms mr mrs miss sir per cent percent other others ' +
    'same such many much more most few less least own certain several whole last first next new ' +
    'good great little old big long get gets got getting let lets seem seems seemed make made ' +
    'makes say says said saying tell told take took taken give gave given come came go went gone ' +
    'goes going know knew known see saw seen seeing think thought want wanted use used uses using ' +
    'put puts keep kept find found become became'
  ).split(' '),
);

/** True for a word too vague to be a topic, a concept or a keyword ("thing", "make"). */
export function isVagueWord(word: string): boolean {
  return VAGUE_WORDS.has(word);
}

const WORD_RE = /[\p{L}\p{N}]/u;
const LETTER_RE = /\p{L}/gu;

/**
 * The coarse class of a Brown tag for content words, or null for anything else: titles (`-tl`),
 * headlines (`-hl`), cited words (`-nc`), foreign words (`fw-`), possessives (`$`) and
 * contractions (`+`) are left out, and so are proper nouns and the auxiliaries be/have/do.
 */
export function contentClass(tag: string): ContentWord['pos'] | null {
  if (/-(tl|hl|nc)|^fw-|[$+*]/.test(tag)) return null;
  if (tag === 'nn' || tag === 'nns') return 'noun';
  if (/^vb[dgnz]?$/.test(tag)) return 'verb';
  if (/^jj[rst]?$/.test(tag)) return 'adjective';
  return null;
}

/** True when the Brown sentence passes the common filter (see the file header). */
export function isPlainSentence(sentence: BrownSentence): boolean {
  if (sentence.headline) return false;
  const { text } = sentence;
  const words = text.split(' ').filter((piece) => WORD_RE.test(piece));
  if (words.length < 6 || words.length > 30) return false;
  const chars = text.replace(/\s+/g, '');
  if ((chars.match(LETTER_RE)?.length ?? 0) < 0.8 * chars.length) return false;
  if (words.filter((word) => /\d/.test(word)).length > 1) return false;
  if (!/^["']?[A-Z]/.test(text) || !/[.!?]["']?$/.test(text)) return false;
  if ((text.match(/"/g)?.length ?? 0) % 2 !== 0) return false;
  return sentence.tags.some((tag) => universalTag(tag) === 'VERB');
}

const sentencesBySplit = new Map<BrownSplit, TaskSentence[]>();

/** The eligible sentences of a split, in corpus order; computed once per process. */
export function taskSentences(split: BrownSplit): readonly TaskSentence[] {
  let sentences = sentencesBySplit.get(split);
  if (!sentences) {
    sentences = loadBrownCorpus()
      .sentencesOf(split)
      .filter(isPlainSentence)
      .map((s) => ({
        key: `${s.docId}-${s.index}`,
        docId: s.docId,
        index: s.index,
        split,
        text: s.text,
        words: s.text.split(' ').filter((piece) => WORD_RE.test(piece)),
        tokens: s.tokens,
        tags: s.tags,
      }));
    sentencesBySplit.set(split, sentences);
  }
  return sentences;
}

const contentCache = new Map<string, ContentWord[]>();

/**
 * The sentence's distinct content words (common nouns, verbs, adjectives), lower case, letters
 * only, at least 3 letters, vague words left out. A capitalized word counts only as the
 * sentence's first word (elsewhere it is likely part of a name).
 */
export function contentWords(sentence: TaskSentence): readonly ContentWord[] {
  let words = contentCache.get(sentence.key);
  if (!words) {
    words = [];
    const seen = new Set<string>();
    const first = sentence.tokens.findIndex((token) => WORD_RE.test(token));
    sentence.tokens.forEach((token, i) => {
      const pos = contentClass(sentence.tags[i]);
      if (!pos || !/^[A-Za-z]{3,}$/.test(token)) return;
      if (i !== first && /[A-Z]/.test(token)) return;
      if (i === first && /[A-Z].*[A-Z]/.test(token)) return;
      const word = token.toLowerCase();
      if (VAGUE_WORDS.has(word) || seen.has(word)) return;
      seen.add(word);
      words!.push({ word, pos, plural: sentence.tags[i] === 'nns' });
    });
    contentCache.set(sentence.key, words);
  }
  return words;
}

/** The sentence's content nouns: candidate topics for "Write a sentence about ...". */
export function topicNouns(sentence: TaskSentence): ContentWord[] {
  return contentWords(sentence).filter((word) => word.pos === 'noun');
}

/** "ships" for a plural, "the ship" for a singular noun: reads well after "about". */
export function topicPhrase(noun: ContentWord): string {
  return noun.plural ? noun.word : `the ${noun.word}`;
}

/** "Write a sentence about the harbor." / "... about the harbor and ships." */
export function topicPrompt(nouns: readonly ContentWord[]): string {
  const phrases = nouns.map(topicPhrase);
  const joined =
    phrases.length <= 1 ? phrases.join('') : `${phrases.slice(0, -1).join(', ')} and ${phrases.at(-1)}`;
  return `Write a sentence about ${joined}.`;
}

const documentCounts = new Map<string, [word: string, count: number][]>();

/**
 * The content words of a whole document with their counts, most frequent first (ties in
 * alphabetical order). Words from the same document are on topic, which is what makes a
 * forbidden word plausible.
 */
export function documentContentWords(docId: string): readonly [word: string, count: number][] {
  let ranked = documentCounts.get(docId);
  if (!ranked) {
    const counts = new Map<string, number>();
    const doc = loadBrownCorpus().documents.find((d) => d.id === docId);
    if (!doc) throw new Error(`no Brown document "${docId}"`);
    for (const paragraph of doc.paragraphs) {
      for (const sentence of paragraph.sentences) {
        sentence.tokens.forEach((token, i) => {
          if (!contentClass(sentence.tags[i]) || !/^[a-z]{4,}$/.test(token) || VAGUE_WORDS.has(token)) return;
          counts.set(token, (counts.get(token) ?? 0) + 1);
        });
      }
    }
    ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    documentCounts.set(docId, ranked);
  }
  return ranked;
}

/**
 * The forms a word stands for: itself, its lemma ("went" → "go") and its regular bases ("ships"
 * → "ship", "stopped" → "stop"). Two words whose forms meet are one word family.
 */
export function wordFamily(word: string): string[] {
  return [word, lemmaOf(word), ...regularBases(word)];
}

const familyCache = new Map<string, Set<string>>();

/**
 * Every form of every word of the sentence, lower case. Hyphenated and possessive tokens count
 * by their parts ("door-frame" uses "door"), as IFEval's whole-word search sees them.
 */
export function sentenceFamilies(sentence: TaskSentence): ReadonlySet<string> {
  let families = familyCache.get(sentence.key);
  if (!families) {
    families = new Set();
    for (const token of sentence.tokens) {
      for (const part of token.toLowerCase().split(/[^a-z]+/)) {
        if (part) for (const form of wordFamily(part)) families.add(form);
      }
    }
    familyCache.set(sentence.key, families);
  }
  return families;
}

let sentimentNlp: WinkMethods | null = null;
const sentimentCache = new Map<string, number>();

/**
 * wink-nlp's sentiment of the sentence, lower-cased as the `corgi:sentiment` checker reads it.
 * A wink instance of our own with only the `sbd`, `negation` and `sentiment` steps gives the same
 * score as the checker's full pipeline (which also tags parts of speech) at a third of the cost
 * (0.15 against 0.46 ms a sentence here); test/tasks pins the agreement, and every sentiment
 * instance is confirmed by the checker itself anyway.
 */
export function sentimentOf(sentence: TaskSentence): number {
  let score = sentimentCache.get(sentence.key);
  if (score === undefined) {
    if (!sentimentNlp) {
      const require = createRequire(import.meta.url);
      const winkNLP = require('wink-nlp') as typeof WinkFn;
      sentimentNlp = winkNLP(require('wink-eng-lite-web-model') as Model, ['sbd', 'negation', 'sentiment']);
    }
    score = sentimentNlp.readDoc(sentence.text.toLowerCase()).out(sentimentNlp.its.sentiment) as number;
    sentimentCache.set(sentence.key, score);
  }
  return score;
}
