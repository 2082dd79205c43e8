import { describe, expect, it } from 'vitest';
import {
  combinationRepeatPrompt,
  combinationTwoResponses,
} from '../../../src/checkers/ifeval/combination.ts';
import { check, describeWith, kwargsError } from '../ifeval-helpers.ts';

describe('combination:two_responses', () => {
  it('passes two different non-blank responses separated by ******', () => {
    expect(check(combinationTwoResponses, {}, 'First answer.\n******\nSecond answer.').ok).toBe(true);
    expect(check(combinationTwoResponses, {}, '******\nFirst.\n******\nSecond.\n******').ok).toBe(true);
  });

  it('fails identical responses, a wrong number of them, or an empty one in between', () => {
    expect(check(combinationTwoResponses, {}, 'Same.\n******\n  Same.  ').feedback).toBe(
      'Your two responses are identical; make them different.',
    );
    expect(check(combinationTwoResponses, {}, 'Only one.').feedback).toBe(
      'Your response has 1 part separated by ******; give exactly two responses with one ****** between them.',
    );
    expect(check(combinationTwoResponses, {}, 'A\n******\nB\n******\nC').ok).toBe(false);
    expect(check(combinationTwoResponses, {}, 'A\n******\n \n******\nB').feedback).toMatch(/empty part/);
  });

  it('describes as IFEval', () => {
    expect(describeWith(combinationTwoResponses, {})).toBe(
      'Give two different responses. Responses and only responses should be separated by 6 asterisk symbols: ******.',
    );
  });
});

describe('combination:repeat_prompt', () => {
  const kw = { prompt_to_repeat: 'Write a poem about the sea.' };

  it('passes when the response starts with the request, ignoring case and surrounding space', () => {
    expect(check(combinationRepeatPrompt, kw, '  write a poem about the SEA.\n\nThe waves...').ok).toBe(true);
  });

  it('fails when anything comes first or the request is changed, showing where it departs', () => {
    expect(check(combinationRepeatPrompt, kw, 'Sure! Write a poem about the sea.').feedback).toBe(
      'Your response must begin by repeating the request word for word, but it departs from the request from its first character. Start with exactly: "Write a poem about the sea."',
    );
    expect(check(combinationRepeatPrompt, kw, 'Write a poem about the ocean.').feedback).toMatch(
      /departs from the request after "Write a poem about the "/,
    );
  });

  it('requires a non-empty prompt_to_repeat', () => {
    expect(kwargsError(combinationRepeatPrompt, {})).toMatch(/^prompt_to_repeat: required/);
    expect(kwargsError(combinationRepeatPrompt, { prompt_to_repeat: '' })).toMatch(
      /^prompt_to_repeat: must not be empty/,
    );
  });
});
