/**
 * Python's string and `re` semantics as src/text/python.ts reproduces them; expected values from
 * Python 3.11 (the version the IFEval oracle was run with).
 */
import { describe, expect, it } from 'vitest';
import {
  compilePythonPattern,
  countWords,
  pyIsLower,
  pyIsUpper,
  pyRepr,
  pySplitWhitespace,
  pyStrip,
  translatePythonRegex,
} from '../../src/text/python.ts';

describe('Python string semantics', () => {
  it("strips and splits on Python's whitespace, not JS's", () => {
    expect(pyStrip('\x1c\x85 a b \u3000')).toBe('a b');
    expect(pyStrip('\ufeffa')).toBe('\ufeffa'); // BOM is whitespace to JS trim(), not to Python
    expect(pySplitWhitespace('  a\tb\n\nc  ')).toEqual(['a', 'b', 'c']);
    expect(pySplitWhitespace(' \n ')).toEqual([]);
  });

  it('isupper / islower need a cased character and no other case', () => {
    expect(pyIsUpper('HELLO, 123!')).toBe(true);
    expect(pyIsUpper('123')).toBe(false);
    expect(pyIsUpper('ÉTÉ')).toBe(true);
    expect(pyIsUpper('Ǆ')).toBe(true);
    expect(pyIsUpper('ǅ')).toBe(false); // titlecase
    expect(pyIsLower('straße 1')).toBe(true);
    expect(pyIsLower('Hello')).toBe(false);
  });

  it('repr quotes as Python does', () => {
    expect(pyRepr('dog')).toBe("'dog'");
    expect(pyRepr("don't")).toBe('"don\'t"');
    expect(pyRepr('a\'b"c')).toBe("'a\\'b\"c'");
    expect(pyRepr('tab\there\u0007')).toBe("'tab\\there\\x07'");
    expect(pyRepr('café')).toBe("'café'");
  });
});

describe('Python regex translation', () => {
  const search = (pattern: string, text: string, ignoreCase = false) =>
    compilePythonPattern(pattern, { ignoreCase }).regex.test(text);

  it('gives \\w, \\b and \\d their Unicode meaning', () => {
    expect(search('^\\w+$', 'naïve')).toBe(true);
    expect(search('\\bna\\b', 'naïve')).toBe(false);
    expect(search('\\d', '٣')).toBe(true);
  });

  it('keeps Python anchors and dots: $ before a final newline, . stops only at \\n', () => {
    expect(search('end$', 'the end\n')).toBe(true);
    expect(search('a.b', 'a\rb')).toBe(true);
    expect(search('a.b', 'a\nb')).toBe(false);
  });

  it('accepts Python-only syntax: named groups, literal braces, leading inline flags', () => {
    expect(search('(?P<x>ab)(?P=x)', 'abab')).toBe(true);
    expect(search('{x}', 'a {x} b')).toBe(true);
    expect(search('a{,2}c', 'aac')).toBe(true);
    expect(search('(?i)hello', 'HELLO')).toBe(true);
  });

  it('refuses what Python or JS cannot compile, and then matches literally', () => {
    expect(() => translatePythonRegex('\\q')).toThrow();
    expect(() => translatePythonRegex('[abc')).toThrow();
    expect(compilePythonPattern('c++').literal).toBe(true);
    expect(search('c++', 'in c++ code')).toBe(true);
    expect(compilePythonPattern('colou?r').literal).toBe(false);
  });

  it('counts capturing groups as a compiled probe does', () => {
    const probe = (source: string) => new RegExp(`${source}|`, 'u').exec('')!.length - 1;
    for (const pattern of [
      'cat',
      '(a)(?:b)(?P<n>c)(?P=n)',
      '(?=a)(?!b)(?<=c)(?<!d)',
      '[(]\\((x)',
      '(a(b))\\2',
      '(?i)(?#c)(a)',
    ]) {
      const { source, groups } = translatePythonRegex(pattern);
      expect(groups, pattern).toBe(probe(source));
    }
  });

  it('gives \\b next to a literal word character its one-sided form, with the same matches', () => {
    // Keywords as IFEval's keyword checkers wrap them, and patterns where only one side, or
    // neither, reduces. The alphabet has case-insensitive partners outside ASCII (K and the Kelvin
    // sign, s and long s, iota and the combining ypogegrammeni, which is no word character), a
    // combining accent (no word character either), digits, underscores, an astral letter.
    const keywords = [
      'cat',
      'ice cream',
      'naïve',
      'cafe\u0301',
      'straße',
      'k',
      'sk',
      'ιx',
      'x1',
      '٣d',
      '_id',
      '𝒜b',
      'c++',
      'e-',
    ];
    const patterns = [
      ...keywords.map((k) => `\\b${k.replaceAll('+', '\\+')}\\b`),
      ...[
        '\\ba?b\\b',
        '\\bk?-',
        '-\\bk',
        'k*\\b',
        '\\ba+\\b',
        'a\\bb',
        '\\b\\w+k\\b',
        '\\Bsk\\B',
        'x\\B',
        '\\b(k)\\b',
        '\\bk{2}\\b',
      ],
    ];
    const alphabet = [...'abcdeikmnorstxyz_19 .,;-!?()+\n\'"', ...'KSIΙιſ\u212a\u0345\u0301é٣𝒜😀ß'];
    let seed = 20250607;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor((seed / 2147483648) * n);
    };
    const noise = (length: number) =>
      Array.from({ length }, () => alphabet[random(alphabet.length)]).join('');
    const texts: string[] = [];
    for (let t = 0; t < 3000; t++) {
      const keyword = keywords[random(keywords.length)];
      const cased = random(2) ? keyword.toUpperCase() : keyword;
      const where = random(4);
      texts.push(
        where === 0
          ? cased + noise(random(4))
          : where === 1
            ? noise(random(4)) + cased
            : where === 2
              ? noise(random(3)) + cased + noise(random(3))
              : noise(random(12)),
      );
    }
    const matches = (regex: RegExp, text: string) =>
      [...text.matchAll(regex)].map((m) => `${m.index}:${m[0]}`).join(',');
    let reducedSides = 0;
    for (const pattern of patterns) {
      const general = translatePythonRegex(pattern, { reduceBoundaries: false });
      const reduced = translatePythonRegex(pattern);
      reducedSides += general.source.length > reduced.source.length ? 1 : 0;
      for (const flags of ['gu', 'giu']) {
        const g = new RegExp(general.source, flags);
        const r = new RegExp(reduced.source, flags);
        for (const text of texts)
          expect(matches(r, text), `${pattern} /${flags} on ${JSON.stringify(text)}`).toBe(matches(g, text));
      }
    }
    expect(reducedSides).toBeGreaterThanOrEqual(keywords.length);
    expect(translatePythonRegex('\\bice cream\\b').source).toBe(
      '(?<![\\p{L}\\p{N}_])ice cream(?![\\p{L}\\p{N}_])',
    );
  });

  it('matches keywords with one global RegExp, from the start of the text each time', () => {
    const word = compilePythonPattern('fox', { ignoreCase: true, wrap: (piece) => `\\b${piece}\\b` });
    expect([word.test('a FOX'), word.test('a FOX'), word.test('foxes'), word.test('fox')]).toEqual([
      true,
      true,
      false,
      true,
    ]);
    expect(word.regex.global).toBe(false);
    expect(word.regex.test('fox!')).toBe(true);
    const literal = compilePythonPattern('c++', { ignoreCase: true, wrap: (piece) => `\\b${piece}\\b` });
    expect(literal.literal).toBe(true);
    expect([literal.test('C++x'), literal.test('c++ x'), literal.test('xc++x')]).toEqual([
      true,
      false,
      false,
    ]);
  });
});

describe('words', () => {
  it('counts \\w+ runs', () => {
    expect(countWords("हिन्दी naïve café don't 3.14 x_y")).toBe(10); // Python: ह न द naïve café don t 3 14 x_y
    expect(countWords('')).toBe(0);
  });
});
