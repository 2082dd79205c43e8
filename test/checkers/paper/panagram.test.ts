import { describe, expect, it } from 'vitest';
import {
  extractAnswerWord,
  isEnglishWord,
  type PanagramKwargs,
  panagramChecker,
} from '../../../src/checkers/paper/panagram.ts';
import { checkerHarness } from '../../support/checker-harness.ts';

const ID = 'corgi:panagram';
const BAKER = { letters: ['a', 'e', 'r', 'k', 'b'] };

const { parse, check, kwargsError } = checkerHarness<PanagramKwargs>(ID);

describe('corgi:panagram answer extraction', () => {
  it.each([
    ['baker', 'baker'],
    ['  Baker.  ', 'baker'],
    ['"baker"', 'baker'],
    ['**BAKER**!', 'baker'],
    ['Word: baker.', 'baker'],
    ['“baker”', 'baker'],
    ["o'clock", "o'clock"],
    ['', ''],
    ['The word is baker.', 'the word is baker'],
  ])('reads %j as %j', (response, word) => {
    expect(extractAnswerWord(response)).toBe(word);
  });
});

describe('corgi:panagram dictionary', () => {
  it('knows American and British spellings, not proper nouns or misspellings', () => {
    expect(isEnglishWord('baker')).toBe(true);
    expect(isEnglishWord('color')).toBe(true);
    expect(isEnglishWord('colour')).toBe(true);
    expect(isEnglishWord('paris')).toBe(false);
    expect(isEnglishWord('bakre')).toBe(false);
  });
});

describe('corgi:panagram verdicts', () => {
  it('accepts a valid word using every letter and no other, with surrounding punctuation', () => {
    expect(check('baker', BAKER)).toEqual({ ok: true, score: 1, feedback: null });
    expect(check('Word: "Baker".', BAKER).ok).toBe(true);
  });

  it('lets letters repeat', () => {
    expect(check('level', { letters: ['v', 'l', 'e'] }).ok).toBe(true);
    expect(check('people', { letters: ['l', 'p', 'o', 'e'] }).ok).toBe(true);
  });

  it('names a word the dictionary does not know', () => {
    expect(check('bakre', BAKER)).toEqual({
      ok: false,
      score: 2 / 3,
      feedback: '"bakre" is not a valid English word.',
    });
  });

  it('names the missing letters', () => {
    expect(check('bake', BAKER)).toEqual({
      ok: false,
      score: 2 / 3,
      feedback: '"bake" doesn\'t have the letter r.',
    });
    expect(check('bar', BAKER).feedback).toBe('"bar" doesn\'t have the letters e, k.');
  });

  it('names the extra letters', () => {
    expect(check('bakery', BAKER)).toEqual({
      ok: false,
      score: 2 / 3,
      feedback: '"bakery" has the letter y, which is not on the list.',
    });
    expect(check('breakfast', BAKER).feedback).toBe(
      '"breakfast" has the letters f, s, t, which are not on the list.',
    );
  });

  it('joins several problems the way the paper does', () => {
    expect(check('bxke', BAKER)).toEqual({
      ok: false,
      score: 0,
      feedback:
        '"bxke" is not a valid English word. In addition, "bxke" doesn\'t have the letters a, r. ' +
        'Moreover, "bxke" has the letter x, which is not on the list.',
    });
  });

  it('scores an empty answer or a sentence 0', () => {
    expect(check('', BAKER)).toEqual({
      ok: false,
      score: 0,
      feedback:
        'Answer with only one English word that uses the letters a, e, r, k, b; the answer has no word.',
    });
    expect(check('The word is baker.', BAKER)).toEqual({
      ok: false,
      score: 0,
      feedback:
        'Answer with only one English word that uses the letters a, e, r, k, b; the answer has 4 words.',
    });
  });

  it('treats an accented letter as a different letter', () => {
    const result = check('café', { letters: ['c', 'a', 'f', 'e'] });
    expect(result.ok).toBe(false);
    expect(result.feedback).toContain("doesn't have the letter e");
    expect(result.feedback).toContain('has the letter é, which is not on the list');
  });

  it('ignores apostrophes and hyphens when comparing letters', () => {
    expect(check("o'clock", { letters: ['o', 'c', 'l', 'k'] }).ok).toBe(true);
  });
});

describe('corgi:panagram kwargs', () => {
  it('lowercases letters', () => {
    expect(parse({ letters: ['A', 'b'] })).toEqual({ letters: ['a', 'b'] });
  });

  it('names the field and the rule in each error', () => {
    expect(kwargsError({ letters: [] }).message).toBe(
      'constraints[0].kwargs.letters: letters must list at least one letter',
    );
    expect(kwargsError({ letters: ['a', 'bc'] }).message).toBe(
      'constraints[0].kwargs.letters[1]: each letter must be a single letter a–z',
    );
    expect(kwargsError({ letters: ['a', '-'] }).field).toBe('constraints[0].kwargs.letters[1]');
    expect(kwargsError({ letters: ['é'] }).field).toBe('constraints[0].kwargs.letters[0]');
    expect(kwargsError({ letters: ['a', 'b', 'A'] }).message).toBe(
      'constraints[0].kwargs.letters[2]: letter "a" is listed twice; list each letter once',
    );
    expect(kwargsError({ letters: 'abc' }).message).toContain('letters must be an array of single letters');
    expect(kwargsError({}).field).toBe('constraints[0].kwargs.letters');
  });

  it('describes the task as the prompt shows it', () => {
    expect(panagramChecker.describe(parse(BAKER))).toBe(
      'Answer with one valid English word that uses all of these letters and no other letter (a letter may repeat): a, e, r, k, b.',
    );
  });
});
