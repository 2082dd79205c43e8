import { describe, expect, it } from 'vitest';
import { ConstraintError } from '../../../src/checkers/errors.ts';
import {
  type NoRepeatNgramKwargs,
  ngramWords,
  noRepeatNgramChecker,
} from '../../../src/checkers/paper/no-repeat-ngram.ts';
import { parseConstraint } from '../../../src/checkers/registry.ts';

const ID = 'corgi:no_repeat_ngram';

function parse(kwargs: unknown): NoRepeatNgramKwargs {
  return parseConstraint({ id: ID, kwargs }).kwargs as NoRepeatNgramKwargs;
}

function check(response: string, kwargs: Record<string, unknown> = {}) {
  return noRepeatNgramChecker.check(response, parse(kwargs));
}

describe('corgi:no_repeat_ngram words', () => {
  it('lowercases, drops punctuation and keeps inner apostrophes', () => {
    expect(ngramWords('The DOG—ran, "home"! Don’t stop; it\'s 9 a.m.')).toEqual([
      'the',
      'dog',
      'ran',
      'home',
      "don't",
      'stop',
      "it's",
      '9',
      'a',
      'm',
    ]);
    expect(ngramWords('Café crème, naïve 東京')).toEqual(['café', 'crème', 'naïve', '東京']);
    expect(ngramWords('')).toEqual([]);
  });
});

describe('corgi:no_repeat_ngram verdicts', () => {
  it('passes a story without a repeated 4-gram', () => {
    expect(check('Kate wanted to be a model. She practiced her walk every day until she was ready.')).toEqual(
      {
        ok: true,
        score: 1,
        feedback: null,
      },
    );
  });

  it('finds repeats across case, punctuation and sentence boundaries, and quotes them', () => {
    const result = check('The dog ran home. Then, the DOG ran home again!');
    expect(result.ok).toBe(false);
    // 10 words, 7 four-grams, one of them ("the dog ran home") a repeat.
    expect(result.score).toBeCloseTo(6 / 7);
    expect(result.feedback).toBe(
      'You repeated the following 4-word phrases: "the dog ran home". Do not repeat any sequence of 4 words.',
    );
  });

  it('scores 1 − rep-n and lists at most five repeats', () => {
    const text = 'a b c d e f g h i j a b c d e f g h i j';
    const result = check(text, { n: 2 });
    // 19 bigrams, 10 distinct.
    expect(result.score).toBeCloseTo(10 / 19);
    expect(result.feedback).toBe(
      'You repeated the following 2-word phrases: "a b", "b c", "c d", "d e", "e f" and 4 more. ' +
        'Do not repeat any sequence of 2 words.',
    );
  });

  it('treats curly and straight apostrophes alike', () => {
    expect(check("I don’t know what to do. I don't know what to say.").feedback).toContain(
      '"i don\'t know what"',
    );
  });

  it('passes texts shorter than n words, including the empty one', () => {
    expect(check('')).toEqual({ ok: true, score: 1, feedback: null });
    expect(check('Go go go.')).toEqual({ ok: true, score: 1, feedback: null });
  });

  it('with n = 1 forbids any repeated word', () => {
    expect(check('Go, go!', { n: 1 })).toEqual({
      ok: false,
      score: 0.5,
      feedback: 'You repeated the following words: "go". Do not repeat any sequence of 1 word.',
    });
  });
});

describe('corgi:no_repeat_ngram kwargs', () => {
  it('defaults n to 4', () => {
    expect(parse({})).toEqual({ n: 4 });
    expect(parse(undefined)).toEqual({ n: 4 });
  });

  it('names the field and the rule in each error', () => {
    const error = (kwargs: unknown) => {
      try {
        parseConstraint({ id: ID, kwargs }, 'constraints[0]');
      } catch (e) {
        if (ConstraintError.isInstance(e)) return e.message;
      }
      throw new Error('expected a ConstraintError');
    };
    expect(error({ n: 0 })).toBe('constraints[0].kwargs.n: n must be at least 1');
    expect(error({ n: 2.5 })).toContain('n must be a whole number');
    expect(error({ n: '4' })).toContain('n must be a whole number');
    expect(error({ n: 4, size: 3 })).toContain('size');
  });

  it('describes the task as the prompt shows it', () => {
    expect(noRepeatNgramChecker.describe({ n: 4 })).toBe('Do not repeat any sequence of 4 words.');
    expect(noRepeatNgramChecker.describe({ n: 1 })).toBe('Do not use any word twice.');
  });
});
