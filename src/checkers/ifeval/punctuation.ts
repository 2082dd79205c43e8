/**
 * IFEval's punctuation instruction (google-research instruction_following_eval/instructions.py:
 * CommaChecker): no ASCII comma anywhere in the response.
 */

import { verdict } from '../types.ts';
import { defineIfevalChecker, noKwargs, plural } from './ifeval-kwargs.ts';

export const punctuationNoComma = defineIfevalChecker({
  id: 'punctuation:no_comma',
  description: 'Use no commas at all.',
  kwargsSchema: noKwargs(),
  describe: () => 'In your entire response, refrain from the use of any commas.',
  check(response) {
    const commas = response.split(',').length - 1;
    return verdict(
      commas === 0,
      `Your response contains ${plural(commas, 'comma')}; rewrite it without any commas.`,
    );
  },
});
