import type { CallbackHandlerMethods } from '@langchain/core/callbacks/base';
import { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { BaseMessage } from '@langchain/core/messages';
import type { ChatResult } from '@langchain/core/outputs';
import { ChatPromptTemplate } from '@langchain/core/prompts';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConstraintError } from '../../src/checkers/errors.ts';
import type { Database } from '../../src/db/database.ts';
import { getSession } from '../../src/db/sessions.ts';
import { CorgiChatModel } from '../../src/langchain/corgi-chat-model.ts';
import { type CheckerFeedbackPart, withCheckerFeedback } from '../../src/langchain/with-checker-feedback.ts';
import { openTestDatabase } from '../support/database.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const CONSTRAINTS = [{ id: 'keywords:existence', kwargs: { keywords: ['dog', 'park'] } }];
const PROMPT = 'Write one sentence.';
const INSTRUCTION = "Write one sentence.\n\nInclude keywords ['dog', 'park'] in the response.";
const MISSING_BOTH = 'Your response is missing the keywords "dog", "park"; include each of them.';

/** A scripted LangChain model whose answers fail, half pass, then pass. */
function fakeModel(responses = ['The cat sat.', 'The dog sat.', 'The dog ran in the park.']) {
  return new FakeListChatModel({ responses });
}

/** Records the messages of every chat model call (the callbacks reach the wrapped model). */
function recordCalls(): { calls: string[][]; handler: CallbackHandlerMethods } {
  const calls: string[][] = [];
  return {
    calls,
    handler: {
      handleChatModelStart(_llm: unknown, messages: BaseMessage[][]) {
        calls.push(messages[0].map((m) => `${m.getType()}: ${m.text}`));
      },
    },
  };
}

class FailingModel extends BaseChatModel {
  _llmType() {
    return 'failing';
  }
  async _generate(): Promise<ChatResult> {
    throw new Error('the endpoint is down');
  }
}

let db: Database;
beforeAll(async () => {
  db = await openTestDatabase();
});
afterAll(async () => {
  await db.close();
});

describe('withCheckerFeedback', () => {
  it('retries a failing answer with the checker feedback until it passes', async () => {
    const { calls, handler } = recordCalls();
    const result = await withCheckerFeedback(fakeModel(), CONSTRAINTS, { maxAttempts: 4 }).invoke(PROMPT, {
      callbacks: [handler],
    });
    expect(result).toMatchObject({
      type: 'result',
      ok: true,
      bestScore: 1,
      text: 'The dog ran in the park.',
    });
    expect(result.attempts.map((a) => [a.text, a.check.score])).toEqual([
      ['The cat sat.', 0],
      ['The dog sat.', 0.5],
      ['The dog ran in the park.', 1],
    ]);
    expect(result.attempts[0].policyVersion).toBe('FakeListChatModel');
    // The model saw the rendered instruction, then its own answers and the feedback turns.
    expect(calls).toEqual([
      [`human: ${INSTRUCTION}`],
      [`human: ${INSTRUCTION}`, 'ai: The cat sat.', `human: Feedback: ${MISSING_BOTH} Please try again.`],
      [
        `human: ${INSTRUCTION}`,
        'ai: The cat sat.',
        `human: Feedback: ${MISSING_BOTH} Please try again.`,
        'ai: The dog sat.',
        'human: Feedback: Your response is missing the keyword "park"; include it. Please try again.',
      ],
    ]);
    expect(result.logged).toBe(false);
  });

  it('stops at maxAttempts and returns the best attempt', async () => {
    const result = await withCheckerFeedback(fakeModel(['The dog sat.', 'Nothing here.']), CONSTRAINTS, {
      maxAttempts: 2,
    }).invoke(PROMPT);
    expect(result).toMatchObject({ ok: false, bestScore: 0.5, text: 'The dog sat.', cancelled: false });
    expect(result.attempts).toHaveLength(2);
    expect(result.check?.feedback).toContain('"park"');
  });

  it('streams every attempt and verdict as they happen, then the result', async () => {
    const parts: CheckerFeedbackPart[] = [];
    for await (const part of await withCheckerFeedback(fakeModel(), CONSTRAINTS).stream(PROMPT))
      parts.push(part);
    const kinds = parts.filter((p) => p.type !== 'token').map((p) => p.type);
    expect(kinds).toEqual([
      'user-turn',
      'attempt:start',
      'attempt:end',
      'user-turn',
      'attempt:start',
      'attempt:end',
      'user-turn',
      'attempt:start',
      'attempt:end',
      'session:end',
      'result',
    ]);
    const tokens = parts
      .filter((p) => p.type === 'token' && p.attempt === 1)
      .map((p) => (p as { text: string }).text);
    expect(tokens.join('')).toBe('The cat sat.');
    expect(tokens.length).toBeGreaterThan(1); // streamed, not delivered whole
    const verdicts = parts.flatMap((p) => (p.type === 'attempt:end' ? [p.check.ok] : []));
    expect(verdicts).toEqual([false, false, true]);
    const ids = new Set(parts.map((p) => p.sessionId));
    expect(ids.size).toBe(1);
  });

  it('logs the session to PostgreSQL, token ids and log-probs included for our own model', async () => {
    const policy = new ScriptedPolicy(['A cat.', 'A dog in the park.'], 'scripted-v7');
    const guarded = withCheckerFeedback(new CorgiChatModel({ policy }), CONSTRAINTS, {
      logTo: db,
      sampling: { temperature: 0.5, seed: 3 },
    });
    const result = await guarded.invoke(PROMPT);
    expect(result).toMatchObject({ ok: true, logged: true });
    const stored = await getSession(db.pool, result.sessionId);
    expect(stored).toMatchObject({
      status: 'completed',
      ok: true,
      bestScore: 1,
      attempts: 2,
      prompt: PROMPT,
      constraints: CONSTRAINTS,
      sampling: { temperature: 0.5, seed: 3 },
    });
    expect(stored!.turns.map((t) => [t.role, t.kind, t.text])).toEqual([
      ['user', 'instruction', INSTRUCTION],
      ['assistant', 'attempt', 'A cat.'],
      ['user', 'feedback', `Feedback: ${MISSING_BOTH} Please try again.`],
      ['assistant', 'attempt', 'A dog in the park.'],
    ]);
    expect(stored!.turns[3]).toMatchObject({ policyVersion: 'scripted-v7', tokenIds: [0, 1, 2, 3, 4] });
    expect(stored!.turns[3].logprobs).toEqual([-0.5, -0.5, -0.5, -0.5, -0.5]);
    // The sampling reached the policy through LangChain call options; the seed advanced per attempt.
    expect(policy.calls.map((c) => [c.options.temperature, c.options.seed])).toEqual([
      [0.5, 3],
      [0.5, 4],
    ]);
  });

  it('sends a prompt template’s system message ahead of every attempt', async () => {
    const { calls, handler } = recordCalls();
    const chain = ChatPromptTemplate.fromMessages([
      ['system', 'You are terse.'],
      ['human', 'Write about {topic}.'],
    ]).pipe(withCheckerFeedback(fakeModel(['A cat.', 'A dog in a park.']), CONSTRAINTS));
    const result = await chain.invoke({ topic: 'pets' }, { callbacks: [handler] });
    expect(result).toMatchObject({ ok: true, attempts: [{ text: 'A cat.' }, { text: 'A dog in a park.' }] });
    expect(calls.map((c) => c[0])).toEqual(['system: You are terse.', 'system: You are terse.']);
    expect(calls[0][1]).toBe("human: Write about pets.\n\nInclude keywords ['dog', 'park'] in the response.");
  });

  it('pipes its result into the next step', async () => {
    const chain = withCheckerFeedback(fakeModel(), CONSTRAINTS).pipe((r) =>
      r.type === 'result' ? r.text : '',
    );
    expect(await chain.invoke(PROMPT)).toBe('The dog ran in the park.');
  });

  it('takes per-call constraints', async () => {
    const guarded = withCheckerFeedback(fakeModel(['no commas here']), CONSTRAINTS);
    const result = await guarded.invoke({ prompt: PROMPT, constraints: [{ id: 'punctuation:no_comma' }] });
    expect(result).toMatchObject({ ok: true, attempts: [{ text: 'no commas here' }] });
    await expect(guarded.invoke({ prompt: PROMPT, constraints: [{ id: 'no:such' }] })).rejects.toThrow(
      'input.constraints[0].id: unknown constraint id "no:such"',
    );
  });

  it('fails a session whose model fails, and logs it as failed', async () => {
    const guarded = withCheckerFeedback(new FailingModel({}), CONSTRAINTS, { logTo: db.pool });
    const parts: CheckerFeedbackPart[] = [];
    const run = async () => {
      for await (const part of await guarded.stream(PROMPT)) parts.push(part);
    };
    await expect(run()).rejects.toThrow('generation_failed: the endpoint is down');
    const error = parts.at(-1)!;
    expect(error).toMatchObject({ type: 'error', code: 'generation_failed' });
    const stored = await getSession(db.pool, error.sessionId);
    expect(stored).toMatchObject({ status: 'failed', error: { code: 'generation_failed' } });
  });

  it('refuses invalid constraints and attempt counts, naming the field', () => {
    const bad = () =>
      withCheckerFeedback(fakeModel(), [{ id: 'keywords:existence', kwargs: { keywords: 'dog' } }]);
    expect(bad).toThrow(ConstraintError);
    expect(bad).toThrow(/^constraints\[0\]\.kwargs\.keywords: /);
    expect(() => withCheckerFeedback(fakeModel(), CONSTRAINTS, { maxAttempts: 11 })).toThrow(
      'maxAttempts: expected an integer in 1..10, got 11',
    );
  });
});
