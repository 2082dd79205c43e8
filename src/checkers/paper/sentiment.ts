/**
 * `corgi:sentiment`: the CORGI paper's sentiment task (Bezalel, Orgad, Globerson, AAAI 2025, arXiv
 * 2411.01483: write a short review of a given sentiment), as the constraint spec fixes
 * it: a lexicon or rule-based sentiment library, not a stub. The paper's critic was a fine-tuned
 * review classifier; a library runs anywhere, in microseconds, with no model to download.
 *
 * The library is wink-nlp's sentiment (wink-eng-lite-web-model), through `readSentiment` in
 * nlp.ts (a parse without the POS tagger, or the tagged analysis when one of the same text exists):
 * a lexicon with negation scopes, normalized to [-1, 1]. On 82 hand-labelled sentences (clear
 * reviews plus negation cases such as "not good", "not bad", "wasn't terrible", "never
 * disappointed") it was right on 68, against 66 for vader-sentiment and 59 for AFINN's
 * `sentiment`, and it shares the parse with `corgi:concepts` when that one needs the tagger.
 *
 * Semantics:
 * - ok when the document sentiment has the asked sign: > 0 for positive, < 0 for negative. A
 *   neutral text (0) satisfies neither.
 * - Score 1 when ok; otherwise (1 + s)/2 for positive and (1 − s)/2 for negative, in [0, 0.5]:
 *   a neutral text earns 0.5, a clearly opposite one near 0. An answer without words scores 0.
 */
import { z } from 'zod';
import { readSentiment } from '../../text/nlp.ts';
import { type CheckOutcome, defineChecker } from '../types.ts';

const kwargsSchema = z.strictObject({
  label: z
    .enum(['positive', 'negative'], { error: 'label must be "positive" or "negative"' })
    .describe('The sentiment the answer must have.'),
});

export type SentimentKwargs = z.output<typeof kwargsSchema>;

/** "positive", "negative" or "neutral" for a sentiment score. */
function reading(sentiment: number): string {
  if (sentiment > 0) return 'positive';
  return sentiment < 0 ? 'negative' : 'neutral';
}

function checkSentiment(response: string, { label }: SentimentKwargs): CheckOutcome {
  const { sentiment, hasWords } = readSentiment(response);
  if (!hasWords) {
    return { ok: false, score: 0, feedback: `The answer has no words; write a ${label} text.` };
  }
  const signed = label === 'positive' ? sentiment : -sentiment;
  if (signed > 0) return { ok: true, score: 1, feedback: null };
  return {
    ok: false,
    score: (1 + signed) / 2,
    feedback: `Your text reads as ${reading(sentiment)} (sentiment ${sentiment.toFixed(2)} on a scale from -1 to 1). Please write a ${label} text.`,
  };
}

export const sentimentChecker = defineChecker({
  id: 'corgi:sentiment',
  description:
    "The answer must have the given overall sentiment, positive or negative (the CORGI paper's review task).",
  kwargsSchema,
  describe: ({ label }) => `Write a clearly ${label} text: its overall sentiment must be ${label}.`,
  check: checkSentiment,
});
