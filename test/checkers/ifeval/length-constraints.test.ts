import { describe, expect, it } from 'vitest';
import {
  lengthNthParagraphFirstWord,
  lengthNumberParagraphs,
  lengthNumberSentences,
  lengthNumberWords,
} from '../../../src/checkers/ifeval/length-constraints.ts';
import { check, describeWith, kwargsError } from '../ifeval-helpers.ts';

describe('length_constraints:number_words', () => {
  const atLeast3 = { num_words: 3, relation: 'at least' };
  const lessThan3 = { num_words: 3, relation: 'less than' };

  it('counts words as Python \\w+ runs: apostrophes and marks split, accents and digits do not', () => {
    expect(check(lengthNumberWords, atLeast3, "Don't stop!").ok).toBe(true); // don, t, stop
    expect(check(lengthNumberWords, atLeast3, 'naïve café').ok).toBe(false);
    expect(check(lengthNumberWords, atLeast3, 'हिन्दी').ok).toBe(true); // Python: ह, न, द
  });

  it('treats the thresholds as >= and <, with the counts in the feedback', () => {
    expect(check(lengthNumberWords, atLeast3, 'one two three').ok).toBe(true);
    expect(check(lengthNumberWords, lessThan3, 'one two three')).toEqual({
      ok: false,
      score: 0,
      feedback: 'Your response has 3 words; it should have fewer than 3.',
    });
    expect(check(lengthNumberWords, atLeast3, 'one, two')).toEqual({
      ok: false,
      score: 2 / 3,
      feedback: 'Your response has 2 words; it should have at least 3.',
    });
    expect(
      check(lengthNumberWords, { num_words: 300, relation: 'at least' }, 'word '.repeat(212)).feedback,
    ).toBe('Your response has 212 words; it should have at least 300.');
  });

  it('fails an empty response even for "less than"', () => {
    expect(check(lengthNumberWords, lessThan3, '').ok).toBe(false);
  });

  it('describes as IFEval and requires both kwargs', () => {
    expect(describeWith(lengthNumberWords, atLeast3)).toBe('Answer with at least 3 words.');
    expect(kwargsError(lengthNumberWords, { relation: 'at least' })).toMatch(/^num_words: required/);
    expect(kwargsError(lengthNumberWords, { num_words: -5, relation: 'at least' })).toMatch(
      /^num_words: must be ≥ 1/,
    );
  });
});

describe('length_constraints:number_sentences', () => {
  it('splits sentences with Punkt, which knows abbreviations such as Mr. and U.S.', () => {
    const text = 'Mr. Smith went to the U.S. embassy. He said hi!';
    expect(check(lengthNumberSentences, { num_sentences: 2, relation: 'at least' }, text).ok).toBe(true);
    expect(check(lengthNumberSentences, { num_sentences: 3, relation: 'at least' }, text)).toEqual({
      ok: false,
      score: 2 / 3,
      feedback: 'Your response has 2 sentences; it should have at least 3.',
    });
    expect(check(lengthNumberSentences, { num_sentences: 2, relation: 'less than' }, text).ok).toBe(false);
    expect(
      check(lengthNumberSentences, { num_sentences: 2, relation: 'less than' }, 'No final stop').ok,
    ).toBe(true);
  });

  it('describes as IFEval', () => {
    expect(describeWith(lengthNumberSentences, { num_sentences: 6, relation: 'less than' })).toBe(
      'Your response should contain less than 6 sentences.',
    );
  });
});

describe('length_constraints:number_paragraphs', () => {
  const three = { num_paragraphs: 3 };

  it('counts paragraphs between *** dividers, ignoring a divider at either end', () => {
    expect(check(lengthNumberParagraphs, three, 'One.\n***\nTwo.\n***\nThree.').ok).toBe(true);
    expect(check(lengthNumberParagraphs, three, '***\nOne.\n***\nTwo.\n***\nThree.\n***').ok).toBe(true);
    expect(check(lengthNumberParagraphs, three, 'One.\n***\nTwo.')).toEqual({
      ok: false,
      score: 0,
      feedback:
        'Your response has 2 paragraphs separated by the markdown divider ***; it should have exactly 3.',
    });
  });

  it('fails on an empty paragraph between two dividers', () => {
    expect(check(lengthNumberParagraphs, three, 'One.\n***\n\n***\nThree.').feedback).toMatch(
      /empty paragraph/,
    );
  });

  it('describes as IFEval', () => {
    expect(describeWith(lengthNumberParagraphs, three)).toBe(
      'There should be 3 paragraphs. Paragraphs are separated with the markdown divider: ***',
    );
  });
});

describe('length_constraints:nth_paragraph_first_word', () => {
  const kw = { num_paragraphs: 3, nth_paragraph: 2, first_word: 'Jasper' };

  it('checks the paragraph count and the first word of paragraph n, ignoring quotes and punctuation', () => {
    expect(check(lengthNthParagraphFirstWord, kw, 'Intro.\n\n"Jasper, come here."\n\nEnd.').ok).toBe(true);
    expect(check(lengthNthParagraphFirstWord, kw, "Intro.\n\n'jasper's day.\n\nEnd.").ok).toBe(true);
  });

  it('reports each problem, with half credit for each condition met', () => {
    expect(check(lengthNthParagraphFirstWord, kw, 'Intro.\n\nThe dog.\n\nEnd.')).toEqual({
      ok: false,
      score: 0.5,
      feedback: 'Paragraph 2 starts with "the"; it should start with the word "jasper".',
    });
    expect(check(lengthNthParagraphFirstWord, kw, 'Intro.\n\nJasper ran.')).toEqual({
      ok: false,
      score: 0.5,
      feedback: 'Your response has 2 paragraphs separated by blank lines; it should have exactly 3.',
    });
    expect(check(lengthNthParagraphFirstWord, kw, 'Only one paragraph.').feedback).toMatch(
      /Paragraph 2 is missing/,
    );
  });

  it('lower-cases first_word, requires nth_paragraph ≤ num_paragraphs, and one plain word', () => {
    expect(describeWith(lengthNthParagraphFirstWord, kw)).toBe(
      "There should be 3 paragraphs. Paragraphs and only paragraphs are separated with each other by two new lines as if it was '\\n\\n' in python. Paragraph 2 must start with word jasper.",
    );
    expect(kwargsError(lengthNthParagraphFirstWord, { ...kw, nth_paragraph: 4 })).toBe(
      'nth_paragraph: must be ≤ num_paragraphs (3), got 4',
    );
    expect(kwargsError(lengthNthParagraphFirstWord, { ...kw, first_word: 'two words' })).toMatch(
      /^first_word: must be one word/,
    );
    expect(kwargsError(lengthNthParagraphFirstWord, { ...kw, first_word: "don't" })).toMatch(
      /^first_word: must be one word/,
    );
  });
});
