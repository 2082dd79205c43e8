import { describe, expect, it } from 'vitest';
import { startendEndChecker, startendQuotation } from '../../../src/checkers/ifeval/startend.ts';
import { check, describeWith, kwargsError } from '../ifeval-helpers.ts';

describe('startend:end_checker', () => {
  const kw = { end_phrase: 'Any other questions?' };

  it('passes when the response ends with the phrase, ignoring case, spaces and wrapping quotes', () => {
    expect(check(startendEndChecker, kw, 'Done. any other QUESTIONS?').ok).toBe(true);
    expect(check(startendEndChecker, kw, '"Done. Any other questions?"\n').ok).toBe(true);
  });

  it('fails when anything follows the phrase, quoting how the response ends', () => {
    expect(check(startendEndChecker, kw, 'Any other questions? Bye.')).toEqual({
      ok: false,
      score: 0,
      feedback:
        'Your response ends with "Any other questions? Bye."; it must end with the exact phrase "Any other questions?", with nothing after it.',
    });
    expect(check(startendEndChecker, kw, 'Any other questions').ok).toBe(false);
  });

  it('strips the phrase and describes as IFEval', () => {
    expect(describeWith(startendEndChecker, { end_phrase: ' Peace! ' })).toBe(
      'Finish your response with this exact phrase Peace!. No other words should follow this phrase.',
    );
    expect(kwargsError(startendEndChecker, { end_phrase: '' })).toMatch(/^end_phrase: must not be empty/);
  });
});

describe('startend:quotation', () => {
  it('passes a response wrapped in double quotes, surrounding whitespace aside', () => {
    expect(check(startendQuotation, {}, '  "Hello there."\n').ok).toBe(true);
    expect(check(startendQuotation, {}, '""').ok).toBe(true);
  });

  it('fails a response without the opening or closing quote, or a lone quote', () => {
    expect(check(startendQuotation, {}, 'Hello there.')).toEqual({
      ok: false,
      score: 0,
      feedback:
        'Your response is not wrapped in double quotation marks: the " is missing at the start and at the end. Put the whole response between " and ".',
    });
    expect(check(startendQuotation, {}, '"Hello there.').feedback).toMatch(/missing at the end/);
    expect(check(startendQuotation, {}, 'Hello there."').feedback).toMatch(/missing at the start\./);
    expect(check(startendQuotation, {}, '"').ok).toBe(false);
    expect(check(startendQuotation, {}, '“Curly quotes”').ok).toBe(false);
  });
});
