import { describe, expect, it } from 'vitest';
import {
  contentNumberPlaceholders,
  contentPostscript,
} from '../../../src/checkers/ifeval/detectable-content.ts';
import { check, describeWith, kwargsError } from '../ifeval-helpers.ts';

describe('detectable_content:number_placeholders', () => {
  const two = { num_placeholders: 2 };

  it('counts [placeholders] on one line, at least the number asked', () => {
    expect(check(contentNumberPlaceholders, two, 'Dear [name], see you at [address].').ok).toBe(true);
    expect(check(contentNumberPlaceholders, two, 'Dear [name], see you at [add\nress].')).toEqual({
      ok: false,
      score: 0.5,
      feedback:
        'Your response has 1 placeholder in square brackets, such as [address]; it should have at least 2.',
    });
  });

  it('describes as IFEval', () => {
    expect(describeWith(contentNumberPlaceholders, { num_placeholders: 12 })).toBe(
      'The response must contain at least 12 placeholders represented by square brackets, such as [address].',
    );
  });
});

describe('detectable_content:postscript', () => {
  const ps = { postscript_marker: 'P.S.' };
  const pps = { postscript_marker: 'P.P.S' };

  it('finds the postscript marker in any case, with the spacing IFEval tolerates', () => {
    expect(check(contentPostscript, ps, 'Hello.\n\nP.S. See you soon.').ok).toBe(true);
    expect(check(contentPostscript, ps, 'Hello.\n\np. s. see you soon.').ok).toBe(true);
    expect(check(contentPostscript, pps, 'Hello.\n\nP.P.S. More.').ok).toBe(true);
  });

  it('fails without the marker', () => {
    expect(check(contentPostscript, ps, 'Hello.\n\nPS: see you soon.')).toEqual({
      ok: false,
      score: 0,
      feedback: 'Your response has no postscript starting with P.S.; add one at the end.',
    });
    expect(check(contentPostscript, pps, 'Hello.\n\nP.S. Only one P.').ok).toBe(false);
    expect(check(contentPostscript, ps, '').ok).toBe(false);
  });

  it('uses another marker as a pattern on the lower-cased response', () => {
    expect(check(contentPostscript, { postscript_marker: 'Note:' }, 'Done.\nNOTE: bring snacks.').ok).toBe(
      true,
    );
    expect(check(contentPostscript, { postscript_marker: 'Note:' }, 'Done.').ok).toBe(false);
  });

  it('strips the marker, describes as IFEval, refuses a blank marker', () => {
    expect(describeWith(contentPostscript, { postscript_marker: ' P.S. ' })).toBe(
      'At the end of your response, please explicitly add a postscript starting with P.S.',
    );
    expect(kwargsError(contentPostscript, { postscript_marker: '  ' })).toMatch(
      /^postscript_marker: must not be empty/,
    );
  });
});
