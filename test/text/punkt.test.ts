/**
 * NLTK 3.8's Punkt sentence splitter as src/text/punkt.ts reproduces it; the trained parameters from
 * a PunktTrainer fitted on the same Brown text.
 */
import { describe, expect, it } from 'vitest';
import {
  brownPunktParameters,
  countSentences,
  emptyPunktParameters,
  splitSentences,
  trainPunkt,
} from '../../src/text/punkt.ts';

describe('Punkt sentence splitting', () => {
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
    expect(params.abbrevTypes.size).toBe(243);
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
