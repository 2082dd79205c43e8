/**
 * IFEval's start/end instructions (google-research instruction_following_eval/instructions.py:
 * EndChecker, QuotationChecker).
 *
 * The end phrase is compared case-insensitively after stripping whitespace and then any double
 * quotes around the response; the quotation check wants a double quote at both ends of the
 * stripped response.
 */

import { pyStrip, pyStripChars } from '../../text/python.ts';
import { verdict } from '../types.ts';
import { defineIfevalChecker, kwargsObject, noKwargs, textSchema } from './ifeval-kwargs.ts';

/** The last `n` characters for feedback, with an ellipsis when cut. */
function tail(text: string, n = 40): string {
  const chars = [...text];
  return chars.length > n ? `…${chars.slice(-n).join('')}` : text;
}

export const startendEndChecker = defineIfevalChecker({
  id: 'startend:end_checker',
  description: 'End the response with the exact given phrase, nothing after it.',
  kwargsSchema: kwargsObject({
    end_phrase: textSchema('the phrase the response must end with', { strip: true }),
  }),
  describe: ({ end_phrase }) =>
    `Finish your response with this exact phrase ${end_phrase}. No other words should follow this phrase.`,
  check(response, { end_phrase }) {
    const ending = pyStripChars(pyStrip(response), '"');
    return verdict(
      ending.toLowerCase().endsWith(end_phrase.toLowerCase()),
      `Your response ends with ${JSON.stringify(tail(ending))}; it must end with the exact phrase ${JSON.stringify(end_phrase)}, with nothing after it.`,
    );
  },
});

export const startendQuotation = defineIfevalChecker({
  id: 'startend:quotation',
  description: 'Wrap the entire response in double quotation marks.',
  kwargsSchema: noKwargs(),
  describe: () => 'Wrap your entire response with double quotation marks.',
  check(response) {
    const stripped = pyStrip(response);
    const opens = stripped.startsWith('"');
    const closes = stripped.length > 1 && stripped.endsWith('"');
    const missing =
      !opens && !closes ? 'at the start and at the end' : !opens ? 'at the start' : 'at the end';
    return verdict(
      opens && closes,
      `Your response is not wrapped in double quotation marks: the " is missing ${missing}. Put the whole response between " and ".`,
    );
  },
});
