import { describe, expect, it } from 'vitest';
import {
  countableWords,
  extractCompletion,
  type NumPlanningKwargs,
  numPlanningChecker,
  stripNonWord,
} from '../../../src/checkers/paper/num-planning.ts';
import { checkAll, parseConstraint } from '../../../src/checkers/registry.ts';
import { checkerHarness } from '../../support/checker-harness.ts';

const ID = 'corgi:num_planning';

const { check, kwargsError } = checkerHarness<NumPlanningKwargs>(ID);

describe('corgi:num_planning completion', () => {
  it('removes a leading copy of the prefix and cuts after the first period', () => {
    expect(extractCompletion('A look entered her eyes. Then she left.', 'A look')).toBe(' entered her eyes.');
    expect(extractCompletion('entered her eyes', 'A look')).toBe('entered her eyes');
  });

  it('finds the prefix copy despite whitespace changes and leading pieces without letters', () => {
    expect(extractCompletion('* I  had snuck\ninto the building.', 'I had snuck into')).toBe(
      ' the building.',
    );
    expect(extractCompletion('--- The intern was staring at her.', 'The intern was')).toBe(
      ' staring at her.',
    );
  });

  it('counts the whole answer when it does not start with the prefix', () => {
    expect(extractCompletion('She said the look entered her eyes.', 'A look')).toBe(
      'She said the look entered her eyes.',
    );
  });

  it('counts whitespace-separated pieces with a letter or digit, in any script', () => {
    expect(countableWords(' expect $100,000 — direct deposit !')).toEqual([
      'expect',
      '$100,000',
      'direct',
      'deposit',
    ]);
    expect(countableWords('naïve café 東京 ...')).toEqual(['naïve', 'café', '東京']);
    expect(countableWords('')).toEqual([]);
  });

  it("strips non-word characters from the last word as the paper's \\W+ does", () => {
    expect(stripNonWord('claw."')).toBe('claw');
    expect(stripNonWord('talon-like')).toBe('talonlike');
    expect(stripNonWord('café!')).toBe('café');
  });
});

describe('corgi:num_planning verdicts', () => {
  const kwargs = { n: 3, last_word: 'eyes', prefix: 'A look' };

  it('accepts exactly n words ending with the last word', () => {
    expect(check('A look entered her eyes.', kwargs)).toEqual({ ok: true, score: 1, feedback: null });
    expect(check('entered her eyes', kwargs)).toEqual({ ok: true, score: 1, feedback: null });
  });

  it('ignores text after the first period', () => {
    expect(check('A look entered her eyes. And then it was gone forever.', kwargs).ok).toBe(true);
  });

  it('compares the last word case-insensitively, after removing punctuation', () => {
    expect(check('A look entered her EYES!"', kwargs).ok).toBe(true);
    expect(check('A look entered her "Eyes".', kwargs).ok).toBe(true);
  });

  it("gives 0.2 for the last word alone, with the paper's word-count sentence", () => {
    expect(check('A look entered both of her eyes.', kwargs)).toEqual({
      ok: false,
      score: 0.2,
      feedback:
        'You completed the sentence with 5 words. However you should complete the sentence with 3 words.',
    });
  });

  it("gives 0.8 for the count alone, with the paper's last-word sentence", () => {
    const result = check('A look entered her heart.', kwargs);
    expect(result.ok).toBe(false);
    expect(result.score).toBeCloseTo(0.8);
    expect(result.feedback).toBe('The last word should be "eyes" and not "heart".');
  });

  it('joins both sentences the way the paper does when both fail', () => {
    expect(check('A look appeared.', kwargs)).toEqual({
      ok: false,
      score: 0,
      feedback:
        'You completed the sentence with 1 words. However you should complete the sentence with 3 words. ' +
        'In addition, the last word should be "eyes" and not "appeared".',
    });
  });

  it('scores an empty answer 0 and names an empty last word', () => {
    expect(check('', kwargs)).toEqual({
      ok: false,
      score: 0,
      feedback:
        'You completed the sentence with 0 words. However you should complete the sentence with 3 words. ' +
        'In addition, the last word should be "eyes" and not "".',
    });
    expect(check('A look', kwargs).feedback).toContain('with 0 words');
  });

  it('works without a prefix', () => {
    expect(check('The rain fell on the distance.', { n: 6, last_word: 'distance' }).ok).toBe(true);
  });

  it('accepts unicode last words', () => {
    expect(check('Nous allons au café.', { n: 4, last_word: 'café' }).ok).toBe(true);
  });

  it('combines with other constraints in checkAll', () => {
    const result = checkAll('A look entered her heart.', [
      { id: ID, kwargs },
      { id: 'corgi:no_repeat_ngram', kwargs: { n: 2 } },
    ]);
    expect(result.score).toBeCloseTo(0.9);
    expect(result.feedback).toBe('The last word should be "eyes" and not "heart".');
  });
});

describe('corgi:num_planning kwargs', () => {
  it('names the field and the rule in each error', () => {
    expect(kwargsError({ n: 0, last_word: 'eyes' }).message).toBe(
      'constraints[0].kwargs.n: n must be at least 1 (the number of words to complete the sentence with)',
    );
    expect(kwargsError({ n: 2.5, last_word: 'eyes' }).field).toBe('constraints[0].kwargs.n');
    expect(kwargsError({ n: '3', last_word: 'eyes' }).message).toContain('n must be a whole number');
    expect(kwargsError({ n: 3, last_word: 'two words' }).message).toBe(
      'constraints[0].kwargs.last_word: last_word must be a single word, without spaces',
    );
    expect(kwargsError({ n: 3, last_word: '  ' }).message).toContain('last_word must not be empty');
    expect(kwargsError({ n: 3, last_word: '...' }).message).toContain(
      'last_word must contain a letter or digit',
    );
    expect(kwargsError({ n: 3 }).field).toBe('constraints[0].kwargs.last_word');
    expect(kwargsError({ n: 3, last_word: 'eyes', extra: 1 }).message).toContain('extra');
  });

  it('describes the task as the prompt shows it', () => {
    const describe = (kwargs: Record<string, unknown>) =>
      numPlanningChecker.describe(parseConstraint({ id: ID, kwargs }).kwargs as NumPlanningKwargs);
    expect(describe({ n: 10, last_word: 'distance', prefix: 'He said, sounding' })).toBe(
      'Complete the sentence with exactly 10 words, the last word being "distance": He said, sounding',
    );
    expect(describe({ n: 1, last_word: 'rain' })).toBe(
      'Write a sentence with exactly 1 word, the last word being "rain".',
    );
  });
});
