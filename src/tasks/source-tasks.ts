/**
 * The source tasks: what the RL trainer trains on, so that the policy learns to use checker
 * feedback (CORGI, Bezalel, Orgad & Globerson, AAAI 2025, arXiv 2411.01483). Each turns one Brown
 * sentence into an unlabeled prompt whose reference is the sentence itself.
 *
 * - `num_planning`: the paper's numerical planning task. The prefix is the start of the sentence,
 *   `n` (3–12) the number of words left, `last_word` the sentence's last word. The prefix keeps at
 *   least 2 words, and the completion holds no '.' before its end (the checker cuts the
 *   completion at its first '.', so "Mr." inside it, or a final "p.m.", would fail the reference).
 * - `sentiment`: the paper's sentiment task on a topic: "Write a sentence about {noun}." with the
 *   label wink-nlp's sentiment gives the sentence, kept only when clearly polar (|score| ≥ 0.3 on
 *   wink's -1..1 scale), keeping a seeded half of the positive ones so the labels come out about
 *   even (about a quarter of the eligible sentences qualify). wink's lexicon is noisy on Brown's prose
 *   ("supported" reads positive); the label is still exactly what the reward checker says.
 * - `forbidden_words`: write about two of the sentence's nouns without 2–3 words that are
 *   plausible but absent: frequent content words of the same document (on topic) that the
 *   sentence does not use in any form ("ship" is not forbidden when it says "ships").
 * - `word_count`: IFEval's word bound around the sentence's own IFEval word count c: "at least"
 *   c−0..3 and "less than" c+1..5, both (half the instances) or one of them, on a topic.
 * - `start_end`: the sentence's first word (IFEval's nth_paragraph_first_word with one paragraph)
 *   and its last 1–3 words with the final punctuation as the end phrase, on a topic.
 */
import { countableWords, stripNonWord } from '../checkers/paper/num-planning.ts';
import { countWords } from '../text/python.ts';
import {
  documentContentWords,
  sentenceFamilies,
  sentimentOf,
  topicNouns,
  topicPrompt,
  wordFamily,
} from './sentences.ts';
import type { TaskGenerator } from './types.ts';

/** |sentiment| at or above this counts as clearly polar (wink's scale is -1..1). */
export const SENTIMENT_THRESHOLD = 0.3;
/**
 * The share of positive sentences kept. Brown has about twice as many clearly positive sentences
 * as negative ones by wink's lexicon; keeping half evens the labels, so a policy cannot earn most
 * of the reward by always writing positively.
 */
export const POSITIVE_KEEP = 0.5;

export const numPlanningTask: TaskGenerator = {
  task: 'num_planning',
  description: 'Complete a sentence prefix with exactly n words ending in a given word (corgi:num_planning).',
  generate(sentence, rng) {
    const pieces = sentence.text.split(' ');
    const lastPiece = sentence.words.at(-1) ?? '';
    const lastWord = stripNonWord(lastPiece);
    // "D.C." or "p.m." at the end: the checker's cut at the first '.' would split it.
    if (!/^[A-Za-z]+$/.test(lastWord) || lastPiece.replace(/[.!?"')]+$/, '').includes('.')) return null;
    // Word index (among countable words) at which each piece starts, and the latest piece
    // before the last one that holds a '.', which the completion must not include.
    let wordsBefore = 0;
    let minStart = 0;
    const startOfPiece: number[] = [];
    pieces.forEach((piece, i) => {
      startOfPiece.push(wordsBefore);
      if (countableWords(piece).length > 0) wordsBefore++;
      if (i < pieces.length - 1 && piece.includes('.')) minStart = wordsBefore;
    });
    const total = sentence.words.length;
    const maxN = Math.min(12, total - 2, total - minStart);
    if (maxN < 3) return null;
    const n = rng.int(3, maxN);
    // The prefix is every piece before the one that starts word `total - n`.
    const cut = startOfPiece.findIndex(
      (start, i) => start === total - n && countableWords(pieces[i]).length > 0,
    );
    const prefix = pieces.slice(0, cut).join(' ');
    return {
      constraints: [{ id: 'corgi:num_planning', kwargs: { n, last_word: lastWord, prefix } }],
      reference: sentence.text,
    };
  },
};

export const sentimentTask: TaskGenerator = {
  task: 'sentiment',
  description: 'Write about a topic with a given sentiment (corgi:sentiment).',
  generate(sentence, rng) {
    const score = sentimentOf(sentence);
    if (Math.abs(score) < SENTIMENT_THRESHOLD) return null;
    if (score > 0 && rng.next() >= POSITIVE_KEEP) return null;
    const nouns = topicNouns(sentence);
    if (nouns.length === 0) return null;
    return {
      prompt: topicPrompt([rng.pick(nouns)]),
      constraints: [{ id: 'corgi:sentiment', kwargs: { label: score > 0 ? 'positive' : 'negative' } }],
      reference: sentence.text,
    };
  },
};

/** How many of a document's most frequent words are candidates for forbidding. */
const FORBIDDEN_CANDIDATES = 12;

export const forbiddenWordsTask: TaskGenerator = {
  task: 'forbidden_words',
  description: 'Write about two topics without using 2–3 on-topic words (keywords:forbidden_words).',
  generate(sentence, rng) {
    const nouns = topicNouns(sentence);
    if (nouns.length < 2) return null;
    const used = sentenceFamilies(sentence);
    const candidates: string[] = [];
    for (const [word, count] of documentContentWords(sentence.docId)) {
      if (count < 2 || candidates.length >= FORBIDDEN_CANDIDATES) break;
      if (!wordFamily(word).some((form) => used.has(form))) candidates.push(word);
    }
    if (candidates.length < 2) return null;
    const forbidden = rng.sample(candidates, rng.int(2, 3)).sort();
    return {
      prompt: topicPrompt(rng.sample(nouns, 2)),
      constraints: [{ id: 'keywords:forbidden_words', kwargs: { forbidden_words: forbidden } }],
      reference: sentence.text,
    };
  },
};

export const wordCountTask: TaskGenerator = {
  task: 'word_count',
  description: 'Write about a topic within a word-count range (length_constraints:number_words).',
  generate(sentence, rng) {
    const nouns = topicNouns(sentence);
    if (nouns.length === 0) return null;
    const count = countWords(sentence.text);
    const atLeast = {
      id: 'length_constraints:number_words',
      kwargs: { relation: 'at least', num_words: Math.max(1, count - rng.int(0, 3)) },
    };
    const lessThan = {
      id: 'length_constraints:number_words',
      kwargs: { relation: 'less than', num_words: count + rng.int(1, 5) },
    };
    const roll = rng.next();
    const constraints = roll < 0.5 ? [atLeast, lessThan] : roll < 0.75 ? [atLeast] : [lessThan];
    return { prompt: topicPrompt([rng.pick(nouns)]), constraints, reference: sentence.text };
  },
};

/** One word of an end phrase: letters (inner ' or -), then optional punctuation. */
const END_PIECE = /^[A-Za-z][A-Za-z'-]*[,.;:!?]*$/;

export const startEndTask: TaskGenerator = {
  task: 'start_end',
  description:
    'Write about a topic starting with a given word and ending with a given phrase ' +
    '(length_constraints:nth_paragraph_first_word + startend:end_checker).',
  generate(sentence, rng) {
    const nouns = topicNouns(sentence);
    if (nouns.length === 0) return null;
    // IFEval's first word: leading quotes dropped, cut at . , ? ! (see length-constraints.ts).
    const first = sentence.text.split(' ')[0].match(/^["']*([A-Za-z]+)[,.!?]?$/);
    if (!first) return null;
    // The end checker strips double quotes around the response before comparing its ending.
    const pieces = sentence.text.replace(/^"+|"+$/g, '').split(' ');
    let k = rng.int(1, 3);
    while (k > 0 && !pieces.slice(-k).every((piece) => END_PIECE.test(piece))) k--;
    if (k === 0 || pieces.length < k + 3) return null;
    return {
      prompt: topicPrompt([rng.pick(nouns)]),
      constraints: [
        {
          id: 'length_constraints:nth_paragraph_first_word',
          kwargs: { num_paragraphs: 1, nth_paragraph: 1, first_word: first[1].toLowerCase() },
        },
        { id: 'startend:end_checker', kwargs: { end_phrase: pieces.slice(-k).join(' ') } },
      ],
      reference: sentence.text,
    };
  },
};

export const sourceTaskGenerators: readonly TaskGenerator[] = [
  numPlanningTask,
  sentimentTask,
  forbiddenWordsTask,
  wordCountTask,
  startEndTask,
];
