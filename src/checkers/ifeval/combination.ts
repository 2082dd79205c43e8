/**
 * IFEval's combination instructions (google-research instruction_following_eval/instructions.py:
 * TwoResponsesChecker, RepeatPromptThenAnswer).
 *
 * Two responses are the non-blank pieces between "******" separators; a blank piece between two
 * separators fails, blank pieces at either end are ignored. Repeating the prompt is a
 * case-insensitive prefix test after stripping both.
 */
import { z } from 'zod';
import { pyStrip } from '../../text/python.ts';
import { verdict } from '../types.ts';
import { defineIfevalChecker, kwargsObject, noKwargs, plural } from './ifeval-kwargs.ts';

const SEPARATOR = '******';

export const combinationTwoResponses = defineIfevalChecker({
  id: 'combination:two_responses',
  description: 'Give two different responses separated by six asterisks: ******.',
  kwargsSchema: noKwargs(),
  describe: () =>
    'Give two different responses. Responses and only responses should be separated by 6 asterisk symbols: ******.',
  check(response) {
    const pieces = response.split(SEPARATOR);
    const responses: string[] = [];
    for (const [i, piece] of pieces.entries()) {
      if (pyStrip(piece)) responses.push(pyStrip(piece));
      else if (i !== 0 && i !== pieces.length - 1) {
        return verdict(
          false,
          `Your response has an empty part between two ${SEPARATOR} separators; separate exactly two responses.`,
        );
      }
    }
    if (responses.length !== 2) {
      return verdict(
        false,
        `Your response has ${plural(responses.length, 'part')} separated by ${SEPARATOR}; give exactly two responses with one ${SEPARATOR} between them.`,
      );
    }
    return verdict(responses[0] !== responses[1], 'Your two responses are identical; make them different.');
  },
});

export const combinationRepeatPrompt = defineIfevalChecker({
  id: 'combination:repeat_prompt',
  description: 'Repeat the request word for word first, then answer.',
  kwargsSchema: kwargsObject({
    prompt_to_repeat: z
      .string({
        error: (issue) =>
          issue.input === undefined ? 'required: the request to repeat word for word' : 'must be a string',
      })
      .min(1, { error: 'must not be empty (the request to repeat word for word)' })
      .describe('the request the response must repeat word for word before answering'),
  }),
  describe: () =>
    'First repeat the request word for word without change, then give your answer (1. do not say any words or ' +
    'characters before repeating the request; 2. the request you need to repeat does not include this sentence)',
  check(response, { prompt_to_repeat }) {
    const expected = pyStrip(prompt_to_repeat).toLowerCase();
    const actual = pyStrip(response).toLowerCase();
    if (actual.startsWith(expected)) return verdict(true, '');
    let same = 0;
    while (same < expected.length && actual[same] === expected[same]) same++;
    const where =
      same === 0
        ? 'from its first character'
        : `after ${JSON.stringify(pyStrip(response).slice(0, same).slice(-40))}`;
    return verdict(
      false,
      `Your response must begin by repeating the request word for word, but it departs from the request ${where}. ` +
        `Start with exactly: ${JSON.stringify(pyStrip(prompt_to_repeat))}`,
    );
  },
});
