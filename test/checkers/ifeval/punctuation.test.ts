import { describe, expect, it } from 'vitest';
import { punctuationNoComma } from '../../../src/checkers/ifeval/punctuation.ts';
import { check, describeWith, kwargsError } from '../ifeval-helpers.ts';

describe('punctuation:no_comma', () => {
  it('passes text without ASCII commas (other comma characters are not commas to IFEval)', () => {
    expect(check(punctuationNoComma, {}, 'No commas here; none at all.')).toEqual({
      ok: true,
      score: 1,
      feedback: null,
    });
    expect(check(punctuationNoComma, {}, '中文，逗号、and ‚low quote').ok).toBe(true);
  });

  it('counts the commas it finds', () => {
    expect(check(punctuationNoComma, {}, 'One, two, three.')).toEqual({
      ok: false,
      score: 0,
      feedback: 'Your response contains 2 commas; rewrite it without any commas.',
    });
    expect(check(punctuationNoComma, {}, ',').feedback).toBe(
      'Your response contains 1 comma; rewrite it without any commas.',
    );
  });

  it('fails an empty response, as IFEval strict does', () => {
    expect(check(punctuationNoComma, {}, '').ok).toBe(false);
    expect(check(punctuationNoComma, {}, '\u3000\n').ok).toBe(false);
  });

  it('describes as IFEval and refuses kwargs', () => {
    expect(describeWith(punctuationNoComma, {})).toBe(
      'In your entire response, refrain from the use of any commas.',
    );
    expect(kwargsError(punctuationNoComma, { comma: ',' })).toMatch(/unknown kwarg "comma"/);
  });
});
