/**
 * NLTK 3.8's `word_tokenize` (Treebank) as src/text/treebank.ts reproduces it.
 */
import { describe, expect, it } from 'vitest';
import { treebankWordTokens, wordTokenize } from '../../src/text/treebank.ts';

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
