/**
 * Python's `str` and `re` semantics, as IFEval's checkers (google-research instruction_following_eval,
 * instructions.py and instructions_util.py) rely on them: Unicode `\w`, `\s`, `\b`; `str.strip`,
 * `split`, `isupper`, `islower`, `repr`; a translator from Python `re` patterns to JS `u`-mode
 * RegExps; and IFEval's `count_words` (`\w+` over Python's Unicode word characters).
 */

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

// Words

const WORD_RE = new RegExp(`[${PY_WORD}]+`, 'gu');

/** IFEval's `count_words`: the number of `\w+` runs (Python Unicode `\w`; marks split words). */
export function countWords(text: string): number {
  return countMatches(text, WORD_RE);
}
