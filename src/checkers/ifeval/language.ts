/**
 * IFEval's response-language instruction (google-research instruction_following_eval/instructions.py:
 * ResponseLanguageChecker). The response passes when langdetect's most probable language is the
 * requested one, and also when langdetect cannot analyse it at all (no letters), as in IFEval.
 *
 * Deliberate extension: IFEval names only 30 languages (instructions_util.LANGUAGE_CODES) and
 * fails with a KeyError on any other code; here every language langdetect has a profile for is
 * accepted, and the 23 others are named through `Intl.DisplayNames`. IFEval's 30 keep IFEval's
 * names ("Bengali", not ICU's "Bangla").
 */
import { z } from 'zod';
import { detectLanguage, IFEVAL_LANGUAGE_NAMES, languageCodes } from '../../text/langdetect.ts';
import { verdict } from '../types.ts';
import { defineIfevalChecker, kwargsObject } from './ifeval-kwargs.ts';

const displayNames = new Intl.DisplayNames(['en'], { type: 'language', fallback: 'code' });

/** The English name IFEval's prompts use for a language code ("kn" → "Kannada"). */
export function languageName(code: string): string {
  return IFEVAL_LANGUAGE_NAMES[code] ?? displayNames.of(code) ?? code;
}

const codes = languageCodes() as [string, ...string[]];

export const languageResponseLanguage = defineIfevalChecker({
  id: 'language:response_language',
  description:
    'The whole response must be in the given language (ISO 639-1 code, as langdetect identifies it).',
  kwargsSchema: kwargsObject({
    language: z
      .enum(codes, {
        error: (issue) =>
          `${issue.input === undefined ? 'required' : `unknown language ${JSON.stringify(issue.input)}`}: ` +
          `one of the codes langdetect knows (${codes.join(', ')})`,
      })
      .describe('ISO 639-1 code of the language langdetect must identify, such as "en" or "kn"'),
  }),
  describe: ({ language }) =>
    `Your ENTIRE response should be in ${languageName(language)} language, no other language is allowed.`,
  check(response, { language }) {
    const detected = detectLanguage(response);
    const wanted = languageName(language);
    const found =
      detected === 'unknown'
        ? 'is not recognisably in any one language'
        : `reads as ${languageName(detected ?? language)} (${detected})`;
    return verdict(
      detected === null || detected === language,
      `Your response ${found}, not ${wanted}; write the entire response in ${wanted}.`,
    );
  },
});
