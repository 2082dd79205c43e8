/**
 * IFEval's content instructions (google-research instruction_following_eval/instructions.py:
 * PlaceholderChecker, PostscriptChecker).
 *
 * A placeholder is the shortest `[...]` on one line. The postscript check lower-cases the response
 * and searches for the marker anywhere: "P.S." and "P.P.S" get IFEval's tolerant patterns
 * (`p. s.`, `p.p.s`), any other marker is used as a Python pattern, as IFEval does.
 */

import { compilePythonPattern, PY_WS } from '../../text/python.ts';
import { scoredVerdict, verdict } from '../types.ts';
import {
  countSchema,
  defineIfevalChecker,
  kwargsObject,
  plural,
  relationScore,
  textSchema,
} from './ifeval-kwargs.ts';

/**
 * IFEval's `len(re.findall(r"\[.*?\]", text))` in one pass: from the first "[" to the next "]" on
 * the same line, then on after it (the regex rescans a line for every unmatched "[").
 */
export function countPlaceholders(text: string): number {
  let count = 0;
  let open = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') open = false;
    else if (!open) open = ch === '[';
    else if (ch === ']') {
      count++;
      open = false;
    }
  }
  return count;
}

export const contentNumberPlaceholders = defineIfevalChecker({
  id: 'detectable_content:number_placeholders',
  description: 'At least N placeholders in square brackets, such as [address].',
  kwargsSchema: kwargsObject({ num_placeholders: countSchema('the minimum number of [placeholders]') }),
  describe: ({ num_placeholders }) =>
    `The response must contain at least ${num_placeholders} placeholders represented by square brackets, such as [address].`,
  check(response, { num_placeholders }) {
    const count = countPlaceholders(response);
    return scoredVerdict(
      relationScore(count, 'at least', num_placeholders),
      `Your response has ${plural(count, 'placeholder')} in square brackets, such as [address]; ` +
        `it should have at least ${num_placeholders}.`,
    );
  },
});

// IFEval searches `\s*<marker>.*$` (re.MULTILINE). The leading `\s*` may match nothing and `.*$`
// always matches, so searching the marker alone finds the same, without the leading `\s*` that
// rescans every whitespace run from each of its positions.
const PPS = new RegExp(`p\\.[${PY_WS}]?p\\.[${PY_WS}]?s`, 'u');
const PS = new RegExp(`p\\.[${PY_WS}]?s\\.`, 'u');

/** IFEval's postscript pattern for a marker, searched in the lower-cased response. */
function postscriptPattern(marker: string): RegExp {
  if (marker === 'P.P.S') return PPS;
  if (marker === 'P.S.') return PS;
  return compilePythonPattern(marker.toLowerCase(), { wrap: (piece) => `(?m)${piece}` }).regex;
}

export const contentPostscript = defineIfevalChecker({
  id: 'detectable_content:postscript',
  description: 'End with a postscript that starts with the given marker, such as P.S. or P.P.S.',
  kwargsSchema: kwargsObject({
    postscript_marker: textSchema('the marker that starts the postscript, such as "P.S."', { strip: true }),
  }),
  describe: ({ postscript_marker }) =>
    `At the end of your response, please explicitly add a postscript starting with ${postscript_marker}`,
  check(response, { postscript_marker }) {
    return verdict(
      postscriptPattern(postscript_marker).test(response.toLowerCase()),
      `Your response has no postscript starting with ${postscript_marker}; add one at the end.`,
    );
  },
});
