/**
 * IFEval's format instructions (google-research instruction_following_eval/instructions.py:
 * BulletListChecker, ConstrainedResponseChecker, HighlightSectionChecker, SectionChecker,
 * JsonFormat, TitleChecker).
 *
 * The line-anchored patterns use Python's MULTILINE semantics (`^` after "\n" only, `.` stops at
 * "\n" only), JSON is parsed as Python's `json.loads` does (which also takes NaN and Infinity),
 * and a section splitter is a Python pattern, as in IFEval.
 */

import {
  compilePythonPattern,
  countMatches,
  isPyWhitespace,
  pyReprList,
  pyStrip,
  pyStripChars,
} from '../../text/python.ts';
import { scoredVerdict, verdict } from '../types.ts';
import {
  countSchema,
  defineIfevalChecker,
  kwargsObject,
  noKwargs,
  plural,
  quoteList,
  relationScore,
  textSchema,
} from './ifeval-kwargs.ts';

/**
 * Matches of a line-anchored pattern `^\s*<bullet>.*$` (re.MULTILINE), counted as `re.findall`
 * would, in one pass: the regex rescans a whitespace run from every line start inside it, which is
 * quadratic on many blank lines. `isBullet(p)` tests the bullet at the first non-space `p`;
 * `bodyStart` is where the bullet's `.*` begins, relative to `p`.
 */
function countLineMatches(text: string, isBullet: (p: number) => boolean, bodyStart: number): number {
  const n = text.length;
  let count = 0;
  let firstNonSpace = -1; // for line starts inside the current whitespace run
  for (let lineStart = 0; lineStart <= n; ) {
    if (firstNonSpace < lineStart) {
      firstNonSpace = lineStart;
      while (firstNonSpace < n && isPyWhitespace(text, firstNonSpace)) firstNonSpace++;
    }
    let from = lineStart;
    if (firstNonSpace < n && isBullet(firstNonSpace)) {
      count++;
      from = firstNonSpace + bodyStart; // the match ends where that line ends
    }
    const newline = text.indexOf('\n', from);
    lineStart = newline < 0 ? n + 1 : newline + 1;
  }
  return count;
}

/** IFEval's bullet count: `^\s*\*[^\*].*$` plus `^\s*-.*$` matches. */
export function countBullets(text: string): number {
  const stars = countLineMatches(
    text,
    (p) => text[p] === '*' && p + 1 < text.length && text[p + 1] !== '*',
    2,
  );
  return stars + countLineMatches(text, (p) => text[p] === '-', 1);
}

export const formatNumberBulletLists = defineIfevalChecker({
  id: 'detectable_format:number_bullet_lists',
  description: 'Exactly N markdown bullet points (lines starting with * or -).',
  kwargsSchema: kwargsObject({ num_bullets: countSchema('the exact number of bullet points') }),
  describe: ({ num_bullets }) =>
    `Your answer must contain exactly ${num_bullets} bullet points. Use the markdown bullet points such as:\n` +
    '* This is point 1. \n* This is point 2',
  check(response, { num_bullets }) {
    const count = countBullets(response);
    return verdict(
      count === num_bullets,
      `Your response has ${plural(count, 'bullet point')} (lines starting with * or -); it should have exactly ${num_bullets}.`,
    );
  },
});

/** IFEval's three accepted answers (instructions._CONSTRAINED_RESPONSE_OPTIONS). */
const CONSTRAINED_RESPONSE_OPTIONS = ['My answer is yes.', 'My answer is no.', 'My answer is maybe.'];

export const formatConstrainedResponse = defineIfevalChecker({
  id: 'detectable_format:constrained_response',
  description: 'Answer with one of "My answer is yes.", "My answer is no.", "My answer is maybe.".',
  kwargsSchema: noKwargs(),
  describe: () =>
    `Answer with one of the following options: ${pyReprList(CONSTRAINED_RESPONSE_OPTIONS, true)}`,
  check(response) {
    const stripped = pyStrip(response);
    return verdict(
      CONSTRAINED_RESPONSE_OPTIONS.some((option) => stripped.includes(option)),
      `Your response contains none of the options ${quoteList(CONSTRAINED_RESPONSE_OPTIONS)}; answer with one of them, word for word.`,
    );
  },
});

const SINGLE_HIGHLIGHT = /\*[^\n*]*\*/g;
const DOUBLE_HIGHLIGHT = /\*\*[^\n*]*\*\*/g;

/** IFEval's count of non-blank `*highlighted*` and `**highlighted**` spans (a bold span counts in both). */
export function countHighlights(response: string): number {
  let count = 0;
  for (const [span] of response.matchAll(SINGLE_HIGHLIGHT)) if (pyStrip(pyStripChars(span, '*'))) count++;
  for (const [span] of response.matchAll(DOUBLE_HIGHLIGHT)) if (pyStrip(span.slice(2, -2))) count++;
  return count;
}

export const formatNumberHighlightedSections = defineIfevalChecker({
  id: 'detectable_format:number_highlighted_sections',
  description: 'At least N sections highlighted with markdown, i.e. *highlighted section*.',
  kwargsSchema: kwargsObject({ num_highlights: countSchema('the minimum number of *highlighted* sections') }),
  describe: ({ num_highlights }) =>
    `Highlight at least ${num_highlights} sections in your answer with markdown, i.e. *highlighted section*.`,
  check(response, { num_highlights }) {
    const count = countHighlights(response);
    return scoredVerdict(
      relationScore(count, 'at least', num_highlights),
      `Your response has ${plural(count, 'highlighted section')} (markdown *highlighted section*); ` +
        `it should have at least ${num_highlights}.`,
    );
  },
});

export const formatMultipleSections = defineIfevalChecker({
  id: 'detectable_format:multiple_sections',
  description: 'At least N sections, each starting with the splitter and a number, such as "SECTION 1".',
  kwargsSchema: kwargsObject({
    section_spliter: textSchema('the word that starts each section, such as "Section"', { strip: true }),
    num_sections: countSchema('the minimum number of sections'),
  }),
  describe: ({ section_spliter, num_sections }) =>
    `Your response must have ${num_sections} sections. Mark the beginning of each section with ${section_spliter} X, such as:\n` +
    `${section_spliter} 1\n[content of section 1]\n${section_spliter} 2\n[content of section 2]`,
  check(response, { section_spliter, num_sections }) {
    // IFEval counts `len(re.split(splitter, response)) - 1`; captured groups add pieces to a split.
    const pattern = compilePythonPattern(section_spliter, { wrap: (piece) => `\\s?${piece}\\s?\\d+\\s?` });
    const count = countMatches(response, pattern.global) * (1 + pattern.groups);
    return scoredVerdict(
      relationScore(count, 'at least', num_sections),
      `Your response has ${plural(count, 'section')} marked "${section_spliter} X" (such as "${section_spliter} 1"); ` +
        `it should have at least ${num_sections}.`,
    );
  },
});

/** Replaces Python's extra JSON constants (NaN, Infinity, -Infinity) outside strings by 0. */
function replacePythonJsonConstants(text: string): string {
  return text.replace(/"(?:[^"\\]|\\.)*"|NaN|Infinity/gs, (token) => (token.startsWith('"') ? token : '0'));
}

/** Python's `json.loads` verdict: JSON, plus the NaN / Infinity literals Python accepts. Returns an error or null. */
function pythonJsonError(text: string): string | null {
  try {
    JSON.parse(text);
    return null;
  } catch (error) {
    try {
      if (/NaN|Infinity/.test(text)) {
        JSON.parse(replacePythonJsonConstants(text));
        return null;
      }
    } catch {}
    return error instanceof Error ? error.message : String(error);
  }
}

const removePrefix = (s: string, prefix: string) => (s.startsWith(prefix) ? s.slice(prefix.length) : s);
const removeSuffix = (s: string, suffix: string) =>
  suffix && s.endsWith(suffix) ? s.slice(0, -suffix.length) : s;

export const formatJsonFormat = defineIfevalChecker({
  id: 'detectable_format:json_format',
  description: 'The entire output must be valid JSON (optionally inside ``` fences).',
  kwargsSchema: noKwargs(),
  describe: () => 'Entire output should be wrapped in JSON format. You can use markdown ticks such as ```.',
  check(response) {
    let text = pyStrip(response);
    for (const prefix of ['```json', '```Json', '```JSON', '```']) text = removePrefix(text, prefix);
    text = pyStrip(removeSuffix(text, '```'));
    const error = pythonJsonError(text);
    return verdict(
      error === null,
      `Your response is not valid JSON (after removing any \`\`\` fences): ${error}. Output only one JSON value.`,
    );
  },
});

/**
 * IFEval's `re.findall(r"<<[^\n]+>>")` titles. Per line the greedy match runs from the first "<<" to
 * the last ">>" at least one character later, so no more than one per line; found by index rather
 * than by the regex, which backtracks quadratically on a line of many "<<".
 */
export function findTitles(text: string): string[] {
  const titles: string[] = [];
  for (const line of text.split('\n')) {
    const open = line.indexOf('<<');
    const close = line.lastIndexOf('>>');
    if (open >= 0 && close >= open + 3) titles.push(line.slice(open, close + 2));
  }
  return titles;
}

export const formatTitle = defineIfevalChecker({
  id: 'detectable_format:title',
  description: 'Contain a title wrapped in double angular brackets, such as <<poem of joy>>.',
  kwargsSchema: noKwargs(),
  describe: () =>
    'Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.',
  check(response) {
    const titled = findTitles(response).some((title) =>
      pyStrip(pyStripChars(pyStripChars(title, '<', 'left'), '>', 'right')),
    );
    return verdict(
      titled,
      'Your response has no title wrapped in double angular brackets; add one on its own line, such as <<poem of joy>>.',
    );
  },
});
