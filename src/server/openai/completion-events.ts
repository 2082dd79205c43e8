/**
 * What a chat completion produces, as one stream of events that both the JSON response and the
 * Server-Sent Events are built from, so a client concatenating the streamed `delta.content` gets
 * exactly the non-streamed `message.content`.
 *
 * - plain: the policy's tokens are the content.
 * - corgi: each attempt's tokens, its check and the feedback sent back are reasoning (visible
 *   thinking, `reasoning_content` as vLLM streams it); once the session ends, the answer — the
 *   first attempt that met every constraint, else the best-scoring one (the earliest of equals) —
 *   is the content, in one piece.
 */
import type { CheckResult } from '../../checkers/registry.ts';
import type { ChatMessage, ChatPolicy, FinishReason, SamplingOptions } from '../../policy/types.ts';
import type { SessionPart } from '../../session/session-runner.ts';
import { HttpError } from '../http-error.ts';
import type { ServerMetrics } from '../metrics.ts';

/** OpenAI's token counts; for a CORGI session, summed over every attempt. */
export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** The session behind a CORGI completion (the `corgi` object of the response). */
export interface CorgiSummary {
  session_id: string;
  ok: boolean;
  best_score: number;
  /** Which attempt the content is (1-based); null when the session ended before any attempt. */
  answer_attempt: number | null;
  attempts: { attempt: number; text: string; check: CheckResult; policy_version: string }[];
}

export type CompletionEvent =
  | { type: 'reasoning'; text: string }
  | { type: 'content'; text: string }
  | {
      type: 'end';
      /** The policy version that wrote the content. */
      model: string;
      finishReason: 'stop' | 'length';
      usage: CompletionUsage;
      corgi?: CorgiSummary;
    };

const toOpenAIFinish = (reason: FinishReason): 'stop' | 'length' => (reason === 'length' ? 'length' : 'stop');

const usageOf = (prompt: number, completion: number): CompletionUsage => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
});

/** Prompt tokens when the policy did not report them: measured on the same conversation, else 0. */
function measuredPromptTokens(
  policy: ChatPolicy,
  messages: readonly ChatMessage[],
  sampling: SamplingOptions,
): number {
  return policy.measurePrompt?.(messages, sampling).tokens ?? 0;
}

/**
 * Refuses (400 `prompt_too_long`) messages that leave the policy no room to answer, before
 * anything is sent to the client.
 */
export function assertPromptFits(
  policy: ChatPolicy,
  messages: readonly ChatMessage[],
  sampling: SamplingOptions,
): void {
  const measured = policy.measurePrompt?.(messages, sampling);
  if (measured && measured.tokens > measured.limit) {
    throw new HttpError(
      400,
      'prompt_too_long',
      `messages: the conversation takes ${measured.tokens} tokens; policy ${policy.version} accepts at most ` +
        `${measured.limit} with room for the answer. Shorten it (or lower max_tokens)`,
    );
  }
}

/** One generation from `policy`: its tokens as content, then the end. Feeds the token metrics. */
export async function* plainCompletionEvents(options: {
  policy: ChatPolicy;
  messages: readonly ChatMessage[];
  sampling: SamplingOptions;
  signal: AbortSignal;
  metrics: ServerMetrics;
}): AsyncGenerator<CompletionEvent> {
  const { policy, messages, sampling, signal, metrics } = options;
  const started = performance.now();
  let firstToken = true;
  const stream = policy.generate(messages, { ...sampling, signal });
  let generation: Awaited<ReturnType<typeof stream.next>>;
  try {
    for (;;) {
      generation = await stream.next();
      if (generation.done) break;
      if (firstToken) metrics.timeToFirstToken.observe((performance.now() - started) / 1000);
      firstToken = false;
      if (generation.value.text) yield { type: 'content', text: generation.value.text };
    }
  } catch (error) {
    throw new HttpError(500, 'generation_failed', `generation failed: ${(error as Error).message ?? error}`);
  }
  const result = generation.value;
  const seconds = (performance.now() - started) / 1000;
  metrics.tokens.inc(result.tokenIds.length);
  if (seconds > 0) metrics.tokensPerSecond.observe(result.tokenIds.length / seconds);
  const prompt = result.promptTokens ?? measuredPromptTokens(policy, messages, sampling);
  yield {
    type: 'end',
    model: policy.version,
    finishReason: toOpenAIFinish(result.finishReason),
    usage: usageOf(prompt, result.tokenIds.length),
  };
}

/** The answer of a session: the attempt that passed, else the first of the best-scoring ones. */
function chooseAnswer<A extends { check: CheckResult }>(attempts: readonly A[]): A | undefined {
  const passed = attempts.find((a) => a.check.ok);
  if (passed) return passed;
  return attempts.reduce<A | undefined>(
    (best, a) => (!best || a.check.score > best.check.score ? a : best),
    undefined,
  );
}

/**
 * A CORGI session's parts (from `SessionService.start`) as completion events. `policy` measures
 * the prompt tokens of attempts whose policy did not report them.
 */
export async function* corgiCompletionEvents(options: {
  sessionId: string;
  parts: AsyncGenerator<SessionPart>;
  maxAttempts: number;
  sampling: SamplingOptions;
  policy: () => ChatPolicy;
}): AsyncGenerator<CompletionEvent> {
  const { sessionId, parts, maxAttempts, sampling } = options;
  const attempts: (CorgiSummary['attempts'][number] & { finishReason: FinishReason })[] = [];
  // The conversation each attempt saw, to measure prompts the policy did not count.
  const conversation: ChatMessage[] = [];
  let promptTokens = 0;
  let completionTokens = 0;
  for await (const part of parts) {
    switch (part.type) {
      case 'user-turn':
        conversation.push({ role: 'user', content: part.text });
        if (part.kind === 'feedback') yield { type: 'reasoning', text: `${part.text}\n\n` };
        break;
      case 'attempt:start':
        yield { type: 'reasoning', text: `Attempt ${part.attempt} of ${maxAttempts}:\n` };
        break;
      case 'token':
        if (part.text) yield { type: 'reasoning', text: part.text };
        break;
      case 'attempt:end': {
        promptTokens += part.promptTokens ?? measuredPromptTokens(options.policy(), conversation, sampling);
        completionTokens += part.tokenIds.length;
        conversation.push({ role: 'assistant', content: part.text });
        attempts.push({
          attempt: part.attempt,
          text: part.text,
          check: part.check,
          policy_version: part.policyVersion,
          finishReason: part.finishReason,
        });
        const verdict = part.check.ok ? 'every constraint met' : 'not every constraint met';
        yield { type: 'reasoning', text: `\n\nCheck: score ${part.check.score.toFixed(2)}, ${verdict}.\n\n` };
        break;
      }
      case 'error':
        throw new HttpError(500, part.code, `generation failed: ${part.message}`);
      case 'session:end': {
        const answer = chooseAnswer(attempts);
        if (answer && !part.cancelled) {
          const why = answer.check.ok
            ? 'it meets every constraint'
            : `no attempt met every constraint and it scored best (${answer.check.score.toFixed(2)})`;
          yield { type: 'reasoning', text: `Answer: attempt ${answer.attempt}, because ${why}.` };
          if (answer.text) yield { type: 'content', text: answer.text };
        }
        yield {
          type: 'end',
          model: answer?.policy_version ?? options.policy().version,
          finishReason: toOpenAIFinish(answer?.finishReason ?? 'stop'),
          usage: usageOf(promptTokens, completionTokens),
          corgi: {
            session_id: sessionId,
            ok: part.ok,
            best_score: part.bestScore,
            answer_attempt: answer?.attempt ?? null,
            attempts: attempts.map(({ finishReason: _, ...attempt }) => attempt),
          },
        };
        return;
      }
    }
  }
}
