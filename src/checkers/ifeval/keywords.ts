/**
 * IFEval's keyword instructions (google-research instruction_following_eval/instructions.py:
 * KeywordChecker, KeywordFrequencyChecker, ForbiddenWords, LetterFrequencyChecker).
 *
 * As in IFEval, keywords are Python regular expressions searched case-insensitively: "colou?r"
 * matches "color", and keyword counts include substrings ("story" counts in "history"). Forbidden
 * words are wrapped in Python's Unicode `\b`. A keyword that is not a valid pattern (IFEval would
 * crash on "c++"), or that could backtrack exponentially ("(a+)+"), is matched literally instead;
 * see `compilePythonPattern`.
 */
import { z } from 'zod';
import { compareCodePoints, compilePythonPattern, countMatches, pyReprList } from '../../text/python.ts';
import { scoredVerdict } from '../types.ts';
import {
  countSchema,
  defineIfevalChecker,
  describeBound,
  kwargsObject,
  plural,
  quoteList,
  relationSchema,
  relationScore,
  textSchema,
} from './ifeval-kwargs.ts';

const keywordList = (what: string) =>
  z
    .array(textSchema(what), {
      error: (issue) =>
        issue.input === undefined ? `required: a list of ${what}` : `must be a list of strings (${what})`,
    })
    .min(1, { error: `must list at least one of the ${what}` })
    .describe(`${what}: Python regular expressions, as IFEval uses them`);

const keywordPattern = (keyword: string) => compilePythonPattern(keyword, { ignoreCase: true });
const wordPattern = (word: string) =>
  compilePythonPattern(word, { ignoreCase: true, wrap: (piece) => `\\b${piece}\\b` });

export const keywordsExistence = defineIfevalChecker({
  id: 'keywords:existence',
  description:
    'Include every given keyword (a case-insensitive pattern, as IFEval) somewhere in the response.',
  kwargsSchema: kwargsObject({
    keywords: keywordList('keywords that must appear').transform((keywords) =>
      [...keywords].sort(compareCodePoints),
    ),
  }),
  describe: ({ keywords }) => `Include keywords ${pyReprList(keywords)} in the response.`,
  check(response, { keywords }) {
    const missing = keywords.filter((keyword) => !keywordPattern(keyword).test(response));
    const feedback =
      missing.length === 1
        ? `Your response is missing the keyword ${quoteList(missing)}; include it.`
        : `Your response is missing the keywords ${quoteList(missing)}; include each of them.`;
    return scoredVerdict(1 - missing.length / keywords.length, feedback);
  },
});

export const keywordsFrequency = defineIfevalChecker({
  id: 'keywords:frequency',
  description:
    'A keyword (case-insensitive pattern, substrings count) must appear less than / at least N times.',
  kwargsSchema: kwargsObject({
    keyword: textSchema('the keyword to count', { strip: true }).describe(
      'the keyword to count: a Python regular expression, as IFEval uses it',
    ),
    frequency: countSchema('how many times the keyword should appear'),
    relation: relationSchema(),
  }),
  describe: ({ keyword, frequency, relation }) =>
    `In your response, the word ${keyword} should appear ${relation} ${frequency} times.`,
  check(response, { keyword, frequency, relation }) {
    const count = countMatches(response, keywordPattern(keyword).global);
    return scoredVerdict(
      relationScore(count, relation, frequency),
      `The word ${JSON.stringify(keyword)} appears ${plural(count, 'time')} in your response; ` +
        `it should appear ${describeBound(relation, frequency)} times.`,
    );
  },
});

export const keywordsForbiddenWords = defineIfevalChecker({
  id: 'keywords:forbidden_words',
  description: 'None of the given words may appear as a whole word (case-insensitive).',
  kwargsSchema: kwargsObject({
    forbidden_words: keywordList('forbidden words').transform((words) =>
      [...new Set(words)].sort(compareCodePoints),
    ),
  }),
  describe: ({ forbidden_words }) =>
    `Do not include keywords ${pyReprList(forbidden_words)} in the response.`,
  check(response, { forbidden_words }) {
    const used = forbidden_words.filter((word) => wordPattern(word).test(response));
    const feedback =
      used.length === 1
        ? `Your response uses the forbidden word ${quoteList(used)}; rewrite it without that word.`
        : `Your response uses the forbidden words: ${quoteList(used)}; rewrite it without them.`;
    return scoredVerdict(1 - used.length / forbidden_words.length, feedback);
  },
});

export const keywordsLetterFrequency = defineIfevalChecker({
  id: 'keywords:letter_frequency',
  description: 'A letter (case-insensitive) must appear less than / at least N times.',
  kwargsSchema: kwargsObject({
    letter: z
      .string({
        error: (issue) =>
          issue.input === undefined
            ? 'required: one letter a–z'
            : `must be one letter a–z, got ${JSON.stringify(issue.input)}`,
      })
      .regex(/^[A-Za-z]$/, {
        error: (issue) =>
          `must be one letter a–z, got ${JSON.stringify(issue.input)} (IFEval would replace it with a random letter)`,
      })
      .describe('one letter a–z, counted case-insensitively')
      .transform((letter) => letter.toLowerCase()),
    let_frequency: countSchema('how many times the letter should appear'),
    let_relation: relationSchema(),
  }),
  describe: ({ letter, let_frequency, let_relation }) =>
    `In your response, the letter ${letter} should appear ${let_relation} ${let_frequency} times.`,
  check(response, { letter, let_frequency, let_relation }) {
    const lower = response.toLowerCase();
    let count = 0;
    for (let i = lower.indexOf(letter); i >= 0; i = lower.indexOf(letter, i + 1)) count++;
    return scoredVerdict(
      relationScore(count, let_relation, let_frequency),
      `The letter "${letter}" appears ${plural(count, 'time')} in your response; ` +
        `it should appear ${describeBound(let_relation, let_frequency)} times.`,
    );
  },
});
