import { describe, expect, it } from 'vitest';
import {
  keywordsExistence,
  keywordsForbiddenWords,
  keywordsFrequency,
  keywordsLetterFrequency,
} from '../../../src/checkers/ifeval/keywords.ts';
import { check, describeWith, kwargsError } from '../ifeval-helpers.ts';

describe('keywords:existence', () => {
  const kw = { keywords: ['park', 'dog'] };

  it('passes when every keyword appears, in any case', () => {
    expect(check(keywordsExistence, kw, 'The DOG ran to the Park.')).toEqual({
      ok: true,
      score: 1,
      feedback: null,
    });
  });

  it('names the missing keywords and gives the share found as score', () => {
    const outcome = check(keywordsExistence, kw, 'The dog slept.');
    expect(outcome).toEqual({
      ok: false,
      score: 0.5,
      feedback: 'Your response is missing the keyword "park"; include it.',
    });
    expect(check(keywordsExistence, kw, 'Nothing here.').feedback).toBe(
      'Your response is missing the keywords "dog", "park"; include each of them.',
    );
  });

  it('searches keywords as IFEval does: case-insensitive patterns that also match inside words', () => {
    expect(check(keywordsExistence, { keywords: ['cat'] }, 'I concatenate strings.').ok).toBe(true);
    expect(check(keywordsExistence, { keywords: ['colou?r'] }, 'What a color!').ok).toBe(true);
    expect(check(keywordsExistence, { keywords: ['café'] }, 'CAFÉ OPEN').ok).toBe(true);
  });

  it('matches a keyword that is no valid pattern literally instead of throwing', () => {
    expect(check(keywordsExistence, { keywords: ['c++'] }, 'I write c++ daily.').ok).toBe(true);
    expect(check(keywordsExistence, { keywords: ['c++'] }, 'I write c daily.').ok).toBe(false);
    expect(check(keywordsExistence, { keywords: ['(x', '[y', '\\'] }, 'a (x and [y and \\ here').ok).toBe(
      true,
    );
  });

  it('fails an empty or blank response, as IFEval strict does', () => {
    expect(check(keywordsExistence, kw, '').ok).toBe(false);
    expect(check(keywordsExistence, kw, ' \n\t').feedback).toMatch(/empty/);
  });

  it('sorts keywords as IFEval and describes them with Python list syntax', () => {
    expect(keywordsExistence.kwargsSchema.parse(kw)).toEqual({ keywords: ['dog', 'park'] });
    expect(describeWith(keywordsExistence, { keywords: ["don't", 'b'] })).toBe(
      `Include keywords ['b', "don't"] in the response.`,
    );
  });

  it('refuses missing, empty or blank keywords with a message naming the field', () => {
    expect(kwargsError(keywordsExistence, {})).toMatch(/^keywords: required/);
    expect(kwargsError(keywordsExistence, { keywords: [] })).toMatch(/^keywords: must list at least one/);
    expect(kwargsError(keywordsExistence, { keywords: ['ok', ' '] })).toMatch(
      /^keywords\.1: must not be empty/,
    );
    expect(kwargsError(keywordsExistence, { keywords: ['a'], extra: 1 })).toMatch(/unknown kwarg "extra"/);
  });
});

describe('keywords:frequency', () => {
  const atLeast2 = { keyword: 'story', frequency: 2, relation: 'at least' };
  const lessThan2 = { keyword: 'story', frequency: 2, relation: 'less than' };

  it('treats "at least" as >= and "less than" as <, at the boundary', () => {
    expect(check(keywordsFrequency, atLeast2, 'A story, another story.').ok).toBe(true);
    expect(check(keywordsFrequency, lessThan2, 'A story, another story.').ok).toBe(false);
    expect(check(keywordsFrequency, lessThan2, 'One story.').ok).toBe(true);
  });

  it('gives the count found and the bound in its feedback, with partial credit for at least', () => {
    expect(check(keywordsFrequency, atLeast2, 'One story.')).toEqual({
      ok: false,
      score: 0.5,
      feedback: 'The word "story" appears 1 time in your response; it should appear at least 2 times.',
    });
    expect(check(keywordsFrequency, lessThan2, 'Story story STORY').feedback).toBe(
      'The word "story" appears 3 times in your response; it should appear fewer than 2 times.',
    );
    expect(check(keywordsFrequency, lessThan2, 'Story story STORY').score).toBe(0);
  });

  it('counts substrings, as IFEval does ("story" in "history")', () => {
    expect(check(keywordsFrequency, atLeast2, 'History is a story.').ok).toBe(true);
  });

  it('strips the keyword and validates frequency and relation', () => {
    expect(keywordsFrequency.kwargsSchema.parse({ ...atLeast2, keyword: '  story ' }).keyword).toBe('story');
    expect(kwargsError(keywordsFrequency, { ...atLeast2, frequency: 0 })).toMatch(/^frequency: must be ≥ 1/);
    expect(kwargsError(keywordsFrequency, { ...atLeast2, frequency: 1.5 })).toMatch(
      /^frequency: must be a whole number/,
    );
    expect(kwargsError(keywordsFrequency, { ...atLeast2, frequency: '2' })).toMatch(
      /^frequency: must be a whole number/,
    );
    expect(kwargsError(keywordsFrequency, { ...atLeast2, relation: 'at most' })).toBe(
      'relation: must be "less than" or "at least", got "at most"',
    );
    expect(kwargsError(keywordsFrequency, { keyword: 'x', frequency: 1 })).toMatch(/^relation: required/);
  });

  it('describes the instruction as IFEval', () => {
    expect(describeWith(keywordsFrequency, atLeast2)).toBe(
      'In your response, the word story should appear at least 2 times.',
    );
  });
});

describe('keywords:forbidden_words', () => {
  const kw = { forbidden_words: ['dog', 'cat', 'dog'] };

  it('passes when no forbidden word appears as a whole word', () => {
    expect(check(keywordsForbiddenWords, kw, 'Cats and doghouses are fine.').ok).toBe(true);
  });

  it('lists the forbidden words used, with the share avoided as score', () => {
    expect(check(keywordsForbiddenWords, kw, 'A Cat!')).toEqual({
      ok: false,
      score: 0.5,
      feedback: 'Your response uses the forbidden word "cat"; rewrite it without that word.',
    });
    expect(check(keywordsForbiddenWords, kw, 'cat, dog.')).toEqual({
      ok: false,
      score: 0,
      feedback: 'Your response uses the forbidden words: "cat", "dog"; rewrite it without them.',
    });
  });

  it("uses Python's Unicode word boundaries (JS's ASCII \\b would see one inside naïve)", () => {
    expect(check(keywordsForbiddenWords, { forbidden_words: ['na'] }, 'A naïve plan.').ok).toBe(true);
    expect(check(keywordsForbiddenWords, { forbidden_words: ['ïve'] }, 'A naïve plan.').ok).toBe(true);
    expect(check(keywordsForbiddenWords, { forbidden_words: ['naïve'] }, 'A NAÏVE plan.').ok).toBe(false);
  });

  it('dedupes and sorts the list as IFEval, and describes it with Python list syntax', () => {
    expect(keywordsForbiddenWords.kwargsSchema.parse(kw)).toEqual({ forbidden_words: ['cat', 'dog'] });
    expect(describeWith(keywordsForbiddenWords, kw)).toBe(
      "Do not include keywords ['cat', 'dog'] in the response.",
    );
  });

  it('never throws on pattern characters in a forbidden word', () => {
    expect(() =>
      check(keywordsForbiddenWords, { forbidden_words: ['a)b', '[', '*', '\\'] }, 'text * [ a)b'),
    ).not.toThrow();
  });
});

describe('keywords:letter_frequency', () => {
  const kw = { letter: 'E', let_frequency: 3, let_relation: 'at least' };

  it('counts the letter case-insensitively, at the at-least boundary', () => {
    expect(check(keywordsLetterFrequency, kw, 'Eve ate.').ok).toBe(true);
    expect(check(keywordsLetterFrequency, kw, 'Eve.')).toEqual({
      ok: false,
      score: 2 / 3,
      feedback: 'The letter "e" appears 2 times in your response; it should appear at least 3 times.',
    });
  });

  it('"less than 1" means the letter must not appear; accented letters are other letters', () => {
    const none = { letter: 'e', let_frequency: 1, let_relation: 'less than' };
    expect(check(keywordsLetterFrequency, none, 'Café au lait.').ok).toBe(true);
    expect(check(keywordsLetterFrequency, none, 'CAFE AU LAIT.').ok).toBe(false);
  });

  it('lower-cases the letter and refuses anything but one letter a–z', () => {
    expect(describeWith(keywordsLetterFrequency, kw)).toBe(
      'In your response, the letter e should appear at least 3 times.',
    );
    expect(kwargsError(keywordsLetterFrequency, { ...kw, letter: '#' })).toMatch(
      /^letter: must be one letter a–z, got "#"/,
    );
    expect(kwargsError(keywordsLetterFrequency, { ...kw, letter: 'ab' })).toMatch(
      /^letter: must be one letter/,
    );
    expect(kwargsError(keywordsLetterFrequency, { ...kw, letter: 'é' })).toMatch(
      /^letter: must be one letter/,
    );
  });
});
