/**
 * Word tokens: NLTK's `word_tokenize` (nltk/tokenize/destructive.py, `NLTKWordTokenizer`): Punkt
 * sentences, then Treebank-style word tokens of each.
 */
import { brownPunktParameters, type PunktParameters, splitSentences } from './punkt.ts';
import { isPyWhitespace, PY_WORD, PY_WS, pySplitWhitespace } from './python.ts';

type Rule = [RegExp, string];
const rule = (source: string, replacement: string, flags = ''): Rule => [
  new RegExp(source, `gu${flags}`),
  replacement,
];
const W = `[${PY_WORD}]`;

const STARTING_QUOTES: Rule[] = [
  rule('([«“‘„]|[`]+)', ' $1 '),
  rule('^"', '``'),
  rule('(``)', ' $1 '),
  rule('([ ([{<])("|\'{2})', '$1 `` '),
  rule(`(')(?!re|ve|ll|m|t|s|d|n)(${W})(?!${W})`, '$1 $2', 'i'),
];
const ENDING_QUOTES: Rule[] = [
  rule('([»”’])', ' $1 '),
  rule("''", " '' "),
  rule('"', " '' "),
  rule("([^' ])('[sS]|'[mM]|'[dD]|') ", '$1 $2 '),
  rule("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", '$1 $2 '),
];
// NLTK's PUNCTUATION rules, in order. The two final-period rules are done by `splitFinalPeriod`.
const PUNCTUATION_MIDDLE: Rule[] = [
  rule('([:,])([^\\p{Nd}])', ' $1 $2'),
  rule('([:,])(?=\\n?$)', ' $1 '),
  rule('\\.{2,}', ' $& '),
  rule('[;@#$%&]', ' $& '),
];
const PUNCTUATION_LAST: Rule[] = [rule('[?!]', ' $& '), rule("([^'])' ", "$1 ' "), rule('[*]', ' $& ')];

/**
 * NLTK's final-period rule `([^\.])(\.)([<closers>]*)\s*$` → `\1 \2<gap>\3 `, found by scanning
 * back from the end: the regex itself backtracks quadratically on long runs of spaces or closers.
 * Only the period just before the closers that precede the trailing whitespace can match.
 */
function splitFinalPeriod(text: string, closers: string, gap: string): string {
  let trailing = text.length;
  while (trailing > 0 && isPyWhitespace(text, trailing - 1)) trailing--;
  let closersStart = trailing;
  while (closersStart > 0 && closers.includes(text[closersStart - 1])) closersStart--;
  const period = closersStart - 1;
  if (period < 1 || text[period] !== '.' || text[period - 1] === '.') return text;
  let closersEnd = closersStart; // greedy: the closers group may run on into trailing spaces
  while (closersEnd < text.length && closers.includes(text[closersEnd])) closersEnd++;
  return `${text.slice(0, period)} .${gap}${text.slice(closersStart, closersEnd)} `;
}

const PARENS_BRACKETS = rule('[\\][(){}<>]', ' $& ');
const DOUBLE_DASHES = rule('--', ' -- ');
// MacIntyre's contractions. Each starts and ends with a word character, so Python's `\b` there is
// "no word character before" / "none after"; written that way V8 finds the literal first (20× faster).
const NOT_AFTER_WORD = `(?<!${W})`;
const NOT_BEFORE_WORD = `(?!${W})`;
const CONTRACTIONS: Rule[] = [
  ...['(can)(not)', "(d)('ye)", '(gim)(me)', '(gon)(na)', '(got)(ta)', '(lem)(me)', "(more)('n)"].map(
    (pair) => rule(`${NOT_AFTER_WORD}${pair}${NOT_BEFORE_WORD}`, ' $1 $2 ', 'i'),
  ),
  rule(`${NOT_AFTER_WORD}(wan)(na)(?=[${PY_WS}])`, ' $1 $2 ', 'i'),
  rule(` ('t)(is)${NOT_BEFORE_WORD}`, ' $1 $2 ', 'i'),
  rule(` ('t)(was)${NOT_BEFORE_WORD}`, ' $1 $2 ', 'i'),
];

const applyRules = (text: string, rules: readonly Rule[]) =>
  rules.reduce((t, [re, replacement]) => t.replace(re, replacement), text);

/** NLTK's NLTKWordTokenizer.tokenize on one sentence. */
export function treebankWordTokens(sentence: string): string[] {
  let text = applyRules(sentence, STARTING_QUOTES);
  text = splitFinalPeriod(text, '])}>"\'»”’ ', ' ');
  text = applyRules(text, PUNCTUATION_MIDDLE);
  text = splitFinalPeriod(text, '])}>"\'', '');
  text = applyRules(text, PUNCTUATION_LAST);
  text = applyRules(text, [PARENS_BRACKETS, DOUBLE_DASHES]);
  text = applyRules(` ${text} `, ENDING_QUOTES);
  text = applyRules(text, CONTRACTIONS);
  return pySplitWhitespace(text);
}

/** NLTK's `word_tokenize`: Punkt sentences, then Treebank-style word tokens of each. */
export function wordTokenize(text: string, params: PunktParameters = brownPunktParameters()): string[] {
  return splitSentences(text, params).flatMap(treebankWordTokens);
}
