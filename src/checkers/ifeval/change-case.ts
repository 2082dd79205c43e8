/**
 * IFEval's letter-case instructions (google-research instruction_following_eval/instructions.py:
 * CapitalWordFrequencyChecker, CapitalLettersEnglishChecker, LowercaseLettersEnglishChecker).
 *
 * Capital words are NLTK `word_tokenize` tokens for which Python's `str.isupper()` holds ("NASA's"
 * gives "NASA" and "'s"). The all-caps and all-lowercase checks use Python's `isupper` / `islower`
 * on the whole response, then langdetect must say English; as in IFEval, a response langdetect
 * cannot analyse (no letters) passes the language part.
 */

import { detectLanguage } from '../../text/langdetect.ts';
import { pyIsLower, pyIsUpper, pySplitWhitespace } from '../../text/python.ts';
import { wordTokenize } from '../../text/treebank.ts';
import { scoredVerdict, verdict } from '../types.ts';
import {
  countSchema,
  defineIfevalChecker,
  describeBound,
  kwargsObject,
  noKwargs,
  plural,
  quoteList,
  relationSchema,
  relationScore,
} from './ifeval-kwargs.ts';
import { languageName } from './language.ts';

export const changeCaseCapitalWordFrequency = defineIfevalChecker({
  id: 'change_case:capital_word_frequency',
  description: 'Words in all capital letters must appear less than / at least N times.',
  kwargsSchema: kwargsObject({
    capital_frequency: countSchema('the count of all-capital words to compare against'),
    capital_relation: relationSchema(),
  }),
  describe: ({ capital_frequency, capital_relation }) =>
    `In your response, words with all capital letters should appear ${capital_relation} ${capital_frequency} times.`,
  check(response, { capital_frequency, capital_relation }) {
    const count = wordTokenize(response).filter(pyIsUpper).length;
    return scoredVerdict(
      relationScore(count, capital_relation, capital_frequency),
      `Your response has ${plural(count, 'word')} in all capital letters; ` +
        `it should have ${describeBound(capital_relation, capital_frequency)}.`,
    );
  },
});

/** "has lowercase letters, for example in "word", ..." or, without any letter, "has no letters". */
function wrongCase(response: string, offending: RegExp, kind: 'lowercase' | 'capital'): string {
  const words = pySplitWhitespace(response)
    .filter((word) => offending.test(word))
    .slice(0, 3);
  const wanted = kind === 'lowercase' ? 'capital' : 'lowercase';
  return words.length
    ? `Your response has ${kind} letters, for example in ${quoteList(words)}; write all of it in ${wanted} letters.`
    : `Your response has no letters; write it in English, in ${wanted} letters.`;
}

const LOWER_OR_TITLE = /[\p{Lowercase}\p{Lt}]/u;
const UPPER_OR_TITLE = /[\p{Uppercase}\p{Lt}]/u;

/** Feedback when the case is right but langdetect does not read English. */
function notEnglish(detected: string): string {
  const found =
    detected === 'unknown'
      ? 'is not recognisably English'
      : `reads as ${languageName(detected)} (${detected})`;
  return `Your response ${found}; write it in English.`;
}

export const changeCaseEnglishCapital = defineIfevalChecker({
  id: 'change_case:english_capital',
  description: 'The whole response in English and in capital letters.',
  kwargsSchema: noKwargs(),
  describe: () => 'Your entire response should be in English, and in all capital letters.',
  check(response) {
    if (!pyIsUpper(response)) {
      return verdict(false, wrongCase(response, LOWER_OR_TITLE, 'lowercase'));
    }
    const detected = detectLanguage(response);
    return verdict(detected === null || detected === 'en', notEnglish(detected ?? 'en'));
  },
});

export const changeCaseEnglishLowercase = defineIfevalChecker({
  id: 'change_case:english_lowercase',
  description: 'The whole response in English and in lowercase letters only.',
  kwargsSchema: noKwargs(),
  describe: () =>
    'Your entire response should be in English, and in all lowercase letters. No capital letters are allowed.',
  check(response) {
    if (!pyIsLower(response)) {
      return verdict(false, wrongCase(response, UPPER_OR_TITLE, 'capital'));
    }
    const detected = detectLanguage(response);
    return verdict(detected === null || detected === 'en', notEnglish(detected ?? 'en'));
  },
});
