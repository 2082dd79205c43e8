/**
 * IFEval's length instructions (google-research instruction_following_eval/instructions.py:
 * NumberOfSentences, ParagraphChecker, NumberOfWords, ParagraphFirstWordCheck).
 *
 * Sentences are NLTK Punkt sentences, words are Python `\w+` runs (src/text/punkt.ts, python.ts). Paragraphs are
 * split by the markdown divider `***` for number_paragraphs, and by a blank line ("\n\n") for
 * nth_paragraph_first_word, exactly as IFEval splits them.
 */
import { z } from 'zod';
import { countSentences } from '../../text/punkt.ts';
import { countWords, PY_WS, pySplitWhitespace, pyStrip, pyStripChars } from '../../text/python.ts';
import { scoredVerdict, verdict } from '../types.ts';
import {
  countSchema,
  defineIfevalChecker,
  describeBound,
  kwargsObject,
  plural,
  relationSchema,
  relationScore,
} from './ifeval-kwargs.ts';

export const lengthNumberSentences = defineIfevalChecker({
  id: 'length_constraints:number_sentences',
  description: 'The response must have less than / at least N sentences (NLTK Punkt sentence splitting).',
  kwargsSchema: kwargsObject({
    num_sentences: countSchema('the sentence count to compare against'),
    relation: relationSchema(),
  }),
  describe: ({ num_sentences, relation }) =>
    `Your response should contain ${relation} ${num_sentences} sentences.`,
  check(response, { num_sentences, relation }) {
    const count = countSentences(response);
    return scoredVerdict(
      relationScore(count, relation, num_sentences),
      `Your response has ${plural(count, 'sentence')}; it should have ${describeBound(relation, num_sentences)}.`,
    );
  },
});

const MARKDOWN_DIVIDER = new RegExp(`[${PY_WS}]?\\*\\*\\*[${PY_WS}]?`, 'u');

export const lengthNumberParagraphs = defineIfevalChecker({
  id: 'length_constraints:number_paragraphs',
  description: 'Exactly N non-empty paragraphs separated by the markdown divider ***.',
  kwargsSchema: kwargsObject({ num_paragraphs: countSchema('the exact number of paragraphs') }),
  describe: ({ num_paragraphs }) =>
    `There should be ${num_paragraphs} paragraphs. Paragraphs are separated with the markdown divider: ***`,
  check(response, { num_paragraphs }) {
    const parts = response.split(MARKDOWN_DIVIDER);
    let count = parts.length;
    for (const [i, part] of parts.entries()) {
      if (pyStrip(part)) continue;
      if (i === 0 || i === parts.length - 1) count--;
      else {
        return verdict(
          false,
          'Your response has an empty paragraph between two *** dividers; every paragraph between dividers needs text.',
        );
      }
    }
    return verdict(
      count === num_paragraphs,
      `Your response has ${plural(count, 'paragraph')} separated by the markdown divider ***; ` +
        `it should have exactly ${num_paragraphs}.`,
    );
  },
});

export const lengthNumberWords = defineIfevalChecker({
  id: 'length_constraints:number_words',
  description:
    'The response must have less than / at least N words (runs of letters, digits and underscores).',
  kwargsSchema: kwargsObject({
    num_words: countSchema('the word count to compare against'),
    relation: relationSchema(),
  }),
  describe: ({ num_words, relation }) => `Answer with ${relation} ${num_words} words.`,
  check(response, { num_words, relation }) {
    const count = countWords(response);
    return scoredVerdict(
      relationScore(count, relation, num_words),
      `Your response has ${plural(count, 'word')}; it should have ${describeBound(relation, num_words)}.`,
    );
  },
});

/** Characters where IFEval cuts the first word of a paragraph. */
const FIRST_WORD_STOP = new Set(['.', ',', '?', '!', "'", '"']);

/** IFEval's first word of a paragraph: leading quotes dropped, cut at punctuation, lower-cased. */
function firstWordOf(paragraph: string): string {
  const word = pyStripChars(pyStripChars(pySplitWhitespace(paragraph)[0] ?? '', "'", 'left'), '"', 'left');
  let first = '';
  for (const ch of word) {
    if (FIRST_WORD_STOP.has(ch)) break;
    first += ch.toLowerCase();
  }
  return first;
}

export const lengthNthParagraphFirstWord = defineIfevalChecker({
  id: 'length_constraints:nth_paragraph_first_word',
  description: 'Exactly N paragraphs separated by blank lines, and paragraph i must start with a given word.',
  kwargsSchema: kwargsObject({
    num_paragraphs: countSchema('the exact number of paragraphs'),
    nth_paragraph: countSchema('which paragraph (1 = first) must start with first_word'),
    first_word: z
      .string({
        error: (issue) =>
          issue.input === undefined
            ? 'required: the word paragraph nth_paragraph starts with'
            : 'must be a string',
      })
      .regex(new RegExp(`^[^${PY_WS}.,?!'"]+$`, 'u'), {
        error: (issue) =>
          `must be one word without spaces or . , ? ! ' " (IFEval cuts the first word there), got ${JSON.stringify(issue.input)}`,
      })
      .describe('the word paragraph nth_paragraph must start with (compared in lower case)')
      .transform((word) => word.toLowerCase()),
  }).superRefine(({ num_paragraphs, nth_paragraph }, ctx) => {
    if (nth_paragraph > num_paragraphs) {
      ctx.addIssue({
        code: 'custom',
        path: ['nth_paragraph'],
        message: `must be ≤ num_paragraphs (${num_paragraphs}), got ${nth_paragraph}`,
      });
    }
  }),
  describe: ({ num_paragraphs, nth_paragraph, first_word }) =>
    `There should be ${num_paragraphs} paragraphs. Paragraphs and only paragraphs are separated with each ` +
    `other by two new lines as if it was '\\n\\n' in python. Paragraph ${nth_paragraph} must start with word ${first_word}.`,
  check(response, { num_paragraphs, nth_paragraph, first_word }) {
    const paragraphs = response.split('\n\n');
    const count = paragraphs.filter((p) => pyStrip(p)).length;
    // As IFEval: the nth piece of the split (blank pieces included) must exist and have text.
    const paragraph = nth_paragraph <= count ? pyStrip(paragraphs[nth_paragraph - 1]) : '';
    const word = paragraph ? firstWordOf(paragraph) : null;
    const countOk = count === num_paragraphs;
    const wordOk = word === first_word;
    const problems: string[] = [];
    if (!countOk) {
      problems.push(
        `Your response has ${plural(count, 'paragraph')} separated by blank lines; it should have exactly ${num_paragraphs}.`,
      );
    }
    if (!wordOk) {
      problems.push(
        word === null
          ? `Paragraph ${nth_paragraph} is missing or empty; it should start with the word "${first_word}".`
          : `Paragraph ${nth_paragraph} starts with "${word}"; it should start with the word "${first_word}".`,
      );
    }
    return scoredVerdict(((countOk ? 1 : 0) + (wordOk ? 1 : 0)) / 2, problems.join(' '));
  },
});
