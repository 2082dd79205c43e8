/**
 * The Python, NLTK and langdetect behaviours text.ts reproduces. Expected values come from
 * Python 3.11 with NLTK 3.8 and langdetect 1.0.9 (the versions the IFEval oracle was run with);
 * the Punkt ones from a PunktTrainer fitted on the same Brown text.
 */
import { describe, expect, it } from 'vitest';
import {
  brownPunktParameters,
  compilePythonPattern,
  countSentences,
  countWords,
  detectLanguage,
  emptyPunktParameters,
  pyIsLower,
  pyIsUpper,
  pyRepr,
  pySplitWhitespace,
  pyStrip,
  splitSentences,
  trainPunkt,
  translatePythonRegex,
  treebankWordTokens,
  wordTokenize,
} from '../../src/checkers/text.ts';

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
});

describe('words and sentences', () => {
  it('counts \\w+ runs', () => {
    expect(countWords("हिन्दी naïve café don't 3.14 x_y")).toBe(10); // Python: ह न द naïve café don t 3 14 x_y
    expect(countWords('')).toBe(0);
  });

  it('splits the NLTK Punkt doctest as the real English model does', () => {
    const text =
      'Punkt knows that the periods in Mr. Smith and Johann S. Bach\ndo not mark sentence boundaries.  ' +
      'And sometimes sentences\ncan start with non-capitalized words.  i is a good variable\nname.';
    expect(splitSentences(text)).toEqual([
      'Punkt knows that the periods in Mr. Smith and Johann S. Bach\ndo not mark sentence boundaries.',
      'And sometimes sentences\ncan start with non-capitalized words.',
      'i is a good variable\nname.',
    ]);
    // Without training, "Mr." ends a sentence.
    expect(countSentences(text, emptyPunktParameters())).toBe(4);
  });

  it('realigns closing punctuation with its sentence', () => {
    const text =
      '(How does it deal with this parenthesis?)  "It should be part of the\nprevious sentence." ' +
      '"(And the same with this one.)" (\'And this one!\')\n"(\'(And (this)) \'?)" [(and this. )]';
    expect(splitSentences(text)).toEqual([
      '(How does it deal with this parenthesis?)',
      '"It should be part of the\nprevious sentence."',
      '"(And the same with this one.)"',
      "('And this one!')",
      '"(\'(And (this)) \'?)"',
      '[(and this. )]',
    ]);
    expect(countSentences('')).toBe(0);
    expect(countSentences('   ')).toBe(0);
  });

  it('learns abbreviations from the Brown corpus', () => {
    const params = brownPunktParameters();
    expect(params.abbrevTypes.size).toBe(237);
    for (const abbrev of ['mr', 'dr', 'u.s', 'e.g', 'etc', 'feb']) {
      expect(params.abbrevTypes.has(abbrev)).toBe(true);
    }
    expect(params.sentStarters.has('however')).toBe(true);
    expect(splitSentences('The U.S. economy grew. Dr. Smith agreed, e.g. with Mr. Jones.')).toEqual([
      'The U.S. economy grew.',
      'Dr. Smith agreed, e.g. with Mr. Jones.',
    ]);
  });

  it("trains as NLTK's PunktTrainer does", () => {
    const text =
      'Dr. Who met Dr. Smith. The dr. said hi. Dr. Jones agreed. We saw Dr. Brown and Dr. Green. It was late. Then we left. Dr. White came. '.repeat(
        5,
      );
    const params = trainPunkt(text);
    expect([...params.abbrevTypes].sort()).toEqual(['dr', 'hi']);
    expect(splitSentences('I met Dr. Who. He was nice.', params)).toEqual(['I met Dr. Who.', 'He was nice.']);
  });
});

describe('NLTK word_tokenize', () => {
  // Tokens never contain spaces, so a space-joined string shows the split compactly.
  it('reproduces the NLTKWordTokenizer doctest', () => {
    const text =
      'Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks.';
    expect(treebankWordTokens(text).join(' ')).toBe(
      'Good muffins cost $ 3.88 ( roughly 3,36 euros ) in New York. Please buy me two of them. Thanks .',
    );
  });

  it('splits clitics, contractions and quotes per sentence', () => {
    expect(wordTokenize("NASA's HQ is in the USA. I CAN'T wait! They're gonna \"win\".").join(' ')).toBe(
      "NASA 's HQ is in the USA . I CA N'T wait ! They 're gon na `` win '' .",
    );
  });
});

describe('langdetect', () => {
  it('identifies languages deterministically, as Python langdetect with seed 0', () => {
    expect(detectLanguage('The weather is lovely today and we are going for a walk in the park.')).toBe('en');
    expect(detectLanguage('आज मौसम बहुत अच्छा है और हम पार्क में टहलने जा रहे हैं।')).toBe('hi');
    // Borderline inputs where the seeded random draws decide (Python, same profiles: sv, tr).
    expect(detectLanguage('{\n  "nickname": "staffy"\n}')).toBe('sv');
    expect(detectLanguage('YES')).toBe('tr');
  });

  it('returns null where langdetect raises (no features)', () => {
    expect(detectLanguage('12345 !!! 678')).toBeNull();
    expect(detectLanguage('')).toBeNull();
  });
});
