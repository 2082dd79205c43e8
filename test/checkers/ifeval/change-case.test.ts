import { describe, expect, it } from 'vitest';
import {
  changeCaseCapitalWordFrequency,
  changeCaseEnglishCapital,
  changeCaseEnglishLowercase,
} from '../../../src/checkers/ifeval/change-case.ts';
import { check, describeWith } from '../ifeval-helpers.ts';

describe('change_case:capital_word_frequency', () => {
  // NLTK tokens: NASA 's HQ is in the USA . I CA N'T wait ! — six are all-capital.
  const text = "NASA's HQ is in the USA. I CAN'T wait!";

  it('counts NLTK word tokens that are all capitals, at the >= and < boundaries', () => {
    expect(
      check(changeCaseCapitalWordFrequency, { capital_frequency: 6, capital_relation: 'at least' }, text).ok,
    ).toBe(true);
    expect(
      check(changeCaseCapitalWordFrequency, { capital_frequency: 6, capital_relation: 'less than' }, text),
    ).toEqual({
      ok: false,
      score: 0,
      feedback: 'Your response has 6 words in all capital letters; it should have fewer than 6.',
    });
    expect(
      check(changeCaseCapitalWordFrequency, { capital_frequency: 7, capital_relation: 'less than' }, text).ok,
    ).toBe(true);
  });

  it('describes as IFEval', () => {
    expect(
      describeWith(changeCaseCapitalWordFrequency, { capital_frequency: 10, capital_relation: 'less than' }),
    ).toBe('In your response, words with all capital letters should appear less than 10 times.');
  });
});

describe('change_case:english_capital', () => {
  it('passes English in capitals, digits and punctuation allowed', () => {
    expect(check(changeCaseEnglishCapital, {}, 'THE WEATHER IS LOVELY TODAY, 25 DEGREES!').ok).toBe(true);
  });

  it('fails lowercase letters, naming words that have them', () => {
    expect(check(changeCaseEnglishCapital, {}, 'THE weather IS LOVELY.').feedback).toBe(
      'Your response has lowercase letters, for example in "weather"; write all of it in capital letters.',
    );
    expect(check(changeCaseEnglishCapital, {}, '123 456').feedback).toBe(
      'Your response has no letters; write it in English, in capital letters.',
    );
  });

  it('fails capitals that langdetect does not read as English', () => {
    const outcome = check(
      changeCaseEnglishCapital,
      {},
      "LE TEMPS EST MAGNIFIQUE AUJOURD'HUI ET NOUS ALLONS NOUS PROMENER DANS LE PARC.",
    );
    expect(outcome).toEqual({
      ok: false,
      score: 0,
      feedback: 'Your response reads as German (de); write it in English.',
    });
  });
});

describe('change_case:english_lowercase', () => {
  it('passes English in lowercase', () => {
    expect(
      check(changeCaseEnglishLowercase, {}, 'the weather is lovely today and we are going for a walk.').ok,
    ).toBe(true);
  });

  it('fails capital letters (including titlecase ǅ) and non-English text', () => {
    expect(check(changeCaseEnglishLowercase, {}, 'the Weather is lovely.').feedback).toBe(
      'Your response has capital letters, for example in "Weather"; write all of it in lowercase letters.',
    );
    expect(check(changeCaseEnglishLowercase, {}, 'the ǅ letter').ok).toBe(false);
    expect(
      check(
        changeCaseEnglishLowercase,
        {},
        "le temps est magnifique aujourd'hui et nous allons nous promener dans le parc.",
      ).feedback,
    ).toBe('Your response reads as French (fr); write it in English.');
  });
});
