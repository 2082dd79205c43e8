import { describe, expect, it } from 'vitest';
import { ConstraintError } from '../../../src/checkers/errors.ts';
import { type SentimentKwargs, sentimentChecker } from '../../../src/checkers/paper/sentiment.ts';
import { parseConstraint } from '../../../src/checkers/registry.ts';
import { analyzeText, analyzeUncached, readSentiment, sentimentUncached } from '../../../src/text/nlp.ts';

const ID = 'corgi:sentiment';

function check(response: string, label: string) {
  return sentimentChecker.check(
    response,
    parseConstraint({ id: ID, kwargs: { label } }).kwargs as SentimentKwargs,
  );
}

/** Clear cases that must stay right, negation included. */
const MUST_PASS: [string, 'positive' | 'negative'][] = [
  ['This movie is good.', 'positive'],
  ['This movie is not good.', 'negative'],
  ['The movie was not bad.', 'positive'],
  ["It wasn't terrible.", 'positive'],
  ["It isn't great.", 'negative'],
  ["I don't like it.", 'negative'],
  ["I didn't enjoy the show.", 'negative'],
  ['I was never disappointed.', 'positive'],
  ['No problems so far.', 'positive'],
  ['Not recommended.', 'negative'],
  ['I love it, it is wonderful!', 'positive'],
  ['It was terrible and I hated it.', 'negative'],
  ['The product arrived broken and customer support ignored me.', 'negative'],
  ['Great service, friendly staff, highly recommended.', 'positive'],
  ['Bad packaging but a great product overall, I love it.', 'positive'],
  ['I LOVE IT!!!', 'positive'],
];

/**
 * The 82 hand-labelled sentences the library was chosen on (see sentiment.ts): wink gets 68 right,
 * vader-sentiment 66, AFINN 59. wink's misses are mostly texts without sentiment words ("I
 * returned it immediately.", "Don't buy it.", "meh") and "It is not expensive and it works well."
 */
const LABELLED: [string, 'positive' | 'negative'][] = [
  ...MUST_PASS,
  ...[
    'The blender works perfectly and was easy to clean.',
    'Best purchase I have made this year.',
    'I am very happy with this product.',
    'It exceeded my expectations; the quality is excellent.',
    'My kids adore this toy and play with it every day.',
    'Fast shipping and the item arrived in perfect condition.',
    'I would definitely buy this again.',
    'Absolutely fantastic headphones with amazing sound.',
    'The book was a delight to read from start to finish.',
    'Nothing to complain about, it does exactly what it promises.',
    'I was worried at first, but it turned out to be great.',
    'Comfortable shoes that fit well.',
    'Five stars, well worth the price.',
    'The staff were kind and helpful.',
    'This phone case is sturdy and looks beautiful.',
    'I cannot recommend this enough!',
    'It is not expensive and it works well.',
    'What a pleasant surprise, I enjoyed every minute.',
    'The soup tasted fresh and delicious.',
    'Works like a charm.',
    'I have no complaints.',
    'The hotel was clean, quiet and cozy.',
    'Not bad at all.',
    "It isn't bad, it's actually great.",
    'The ending was sad but beautiful.',
    'A masterpiece.',
    'Highly recommend!',
    'not bad',
  ].map((s): [string, 'positive'] => [s, 'positive']),
  ...[
    'I would never recommend this.',
    'The worst experience ever. Avoid.',
    'It stopped working after two days.',
    'Do not waste your money on this junk.',
    'I am very disappointed with the quality.',
    'The battery dies quickly and the screen is dim.',
    'Cheap plastic that cracked the first time I used it.',
    'It is not worth the price.',
    'Boring, predictable and far too long.',
    'The shoes hurt my feet and fell apart.',
    'I returned it immediately.',
    'The instructions were confusing and parts were missing.',
    'Not happy with this purchase at all.',
    'The staff were rude and unhelpful.',
    'It smells awful and leaks everywhere.',
    'I regret buying this.',
    'Sadly, it did not work as advertised.',
    'Poor quality, would not buy again.',
    'The hotel room was dirty and noisy.',
    'It was a complete failure.',
    'I do not like it.',
    'This is useless.',
    'The food was not great.',
    "I can't say I liked it.",
    'Never again.',
    'Not my favorite.',
    "It doesn't work.",
    'meh',
    'Good product, bad service, overall disappointing.',
    'What a waste of time.',
    'The coffee was cold and bitter.',
    'Total garbage.',
    "Don't buy it.",
    'Not worth it.',
    'It was okay, nothing special.',
    'not good',
    'The movie was not good.',
    'AWFUL.',
  ].map((s): [string, 'negative'] => [s, 'negative']),
];

describe('corgi:sentiment verdicts', () => {
  it.each(MUST_PASS)('reads %j as %s', (text, label) => {
    expect(check(text, label)).toEqual({ ok: true, score: 1, feedback: null });
  });

  it('gets at least 66 of the 82 labelled sentences right (68 when measured)', () => {
    const right = LABELLED.filter(([text, label]) => check(text, label).ok).length;
    expect(LABELLED).toHaveLength(82);
    expect(right).toBeGreaterThanOrEqual(66);
  });

  it('gives partial credit by polarity and says how the text reads', () => {
    const opposite = check('It was terrible and I hated it.', 'positive');
    expect(opposite.ok).toBe(false);
    expect(opposite.score).toBeGreaterThanOrEqual(0);
    expect(opposite.score).toBeLessThan(0.5);
    expect(opposite.feedback).toMatch(
      /^Your text reads as negative \(sentiment -0\.\d\d on a scale from -1 to 1\)\. Please write a positive text\.$/,
    );
    expect(check('The box is on the table.', 'negative')).toEqual({
      ok: false,
      score: 0.5,
      feedback:
        'Your text reads as neutral (sentiment 0.00 on a scale from -1 to 1). Please write a negative text.',
    });
  });

  it('scores an answer without words 0', () => {
    expect(check('', 'positive')).toEqual({
      ok: false,
      score: 0,
      feedback: 'The answer has no words; write a positive text.',
    });
    expect(check(' ?! ', 'negative').score).toBe(0);
  });

  it('reads the same sentiment without the POS tagger as with it', () => {
    for (const [text] of LABELLED) {
      const lowercased = text.toLowerCase();
      const light = sentimentUncached(lowercased);
      expect(light, text).toEqual(sentimentUncached(lowercased, 'tagger'));
      expect(light.sentiment, text).toBe(analyzeUncached(lowercased).sentiment);
      expect(readSentiment(text), text).toEqual(light);
    }
  });

  it('ignores case and handles emoji and unicode', () => {
    expect(analyzeText('THIS IS GREAT').sentiment).toBe(analyzeText('this is great').sentiment);
    expect(check('Das Café war wunderbar, I loved it ❤️', 'positive').ok).toBe(true);
  });
});

describe('corgi:sentiment kwargs', () => {
  it('accepts only positive or negative', () => {
    try {
      parseConstraint({ id: ID, kwargs: { label: 'neutral' } }, 'constraints[0]');
      expect.unreachable();
    } catch (error) {
      expect(ConstraintError.isInstance(error)).toBe(true);
      expect((error as Error).message).toBe(
        'constraints[0].kwargs.label: label must be "positive" or "negative"',
      );
    }
  });

  it('describes the task as the prompt shows it', () => {
    expect(sentimentChecker.describe({ label: 'negative' })).toBe(
      'Write a clearly negative text: its overall sentiment must be negative.',
    );
  });
});
