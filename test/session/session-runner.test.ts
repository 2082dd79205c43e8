import { describe, expect, it } from 'vitest';
import { parseConstraints } from '../../src/checkers/registry.ts';
import type { ChatPolicy } from '../../src/policy/types.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { runSession, type SessionPart } from '../../src/session/session-runner.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const noComma = parseConstraints([
  { id: 'punctuation:no_comma' },
  { id: 'keywords:existence', kwargs: { keywords: ['dog'] } },
]);

async function collect(stream: AsyncIterable<SessionPart>): Promise<SessionPart[]> {
  const parts: SessionPart[] = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

const ofType = <T extends SessionPart['type']>(parts: SessionPart[], type: T) =>
  parts.filter((p): p is Extract<SessionPart, { type: T }> => p.type === type);

describe('runSession', () => {
  it('retries with the feedback as a new user turn until the answer passes', async () => {
    const policy = new ScriptedPolicy(['A cat, sleeping.', 'A dog, sleeping.', 'A dog sleeping.']);
    const parts = await collect(
      runSession({ prompt: 'Write about a pet.', constraints: noComma }, { policy: fixedPolicy(policy) }),
    );

    const ends = ofType(parts, 'attempt:end');
    expect(ends.map((e) => [e.attempt, e.check.ok, e.check.score])).toEqual([
      [1, false, 0],
      [2, false, 0.5],
      [3, true, 1],
    ]);
    expect(parts.at(-1)).toEqual({
      type: 'session:end',
      ok: true,
      bestScore: 1,
      attempts: 3,
      cancelled: false,
    });
    // Tokens stream before each verdict and add up to the attempt's text.
    for (const end of ends) {
      const streamed = ofType(parts, 'token').filter((t) => t.attempt === end.attempt);
      expect(streamed.map((t) => t.text).join('')).toBe(end.text);
    }
    // The third call saw the whole conversation, feedback turns worded as the paper does.
    const third = policy.calls[2].messages;
    expect(third.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user']);
    expect(third[0].content).toMatch(/^Write about a pet\.\n\n/);
    expect(third[2].content).toMatch(/^Feedback: .+ Please try again\.$/);
    expect(third[2].content).toContain('In addition, ');
    expect(third[4].content).toBe(`Feedback: ${ends[1].check.feedback} Please try again.`);
    expect(ofType(parts, 'user-turn').map((t) => t.kind)).toEqual(['instruction', 'feedback', 'feedback']);
  });

  it('stops after maxAttempts and reports the best score reached', async () => {
    const policy = new ScriptedPolicy(['A dog, yes.', 'No, no.']);
    const parts = await collect(
      runSession({ constraints: noComma, maxAttempts: 2 }, { policy: fixedPolicy(policy) }),
    );
    expect(parts.at(-1)).toEqual({
      type: 'session:end',
      ok: false,
      bestScore: 0.5,
      attempts: 2,
      cancelled: false,
    });
    expect(ofType(parts, 'user-turn')).toHaveLength(2);
  });

  it('asks the policy source again at every attempt, so a swap lands between attempts', async () => {
    const versions = [new ScriptedPolicy(['a, b'], 'v1'), new ScriptedPolicy(['a dog'], 'v2')];
    let calls = 0;
    const source = { current: (): ChatPolicy => versions[Math.min(calls++, 1)] };
    const parts = await collect(runSession({ constraints: noComma }, { policy: source }));
    expect(ofType(parts, 'attempt:start').map((p) => p.policyVersion)).toEqual(['v1', 'v2']);
    expect(ofType(parts, 'attempt:end').map((p) => p.policyVersion)).toEqual(['v1', 'v2']);
  });

  it('stops generating when cancelled and ends the session as cancelled', async () => {
    const controller = new AbortController();
    const policy = new ScriptedPolicy(['one two three four five six'], 'v1', 5);
    const parts: SessionPart[] = [];
    for await (const part of runSession(
      { constraints: noComma },
      { policy: fixedPolicy(policy), signal: controller.signal },
    )) {
      parts.push(part);
      if (part.type === 'token' && parts.filter((p) => p.type === 'token').length === 2) controller.abort();
    }
    const [end] = ofType(parts, 'attempt:end');
    expect(end.finishReason).toBe('cancelled');
    expect(end.text).toBe('one two ');
    expect(parts.at(-1)).toMatchObject({ type: 'session:end', ok: false, attempts: 1, cancelled: true });
    expect(policy.calls).toHaveLength(1);
  });

  it('turns a policy failure into an error part', async () => {
    const broken: ChatPolicy = {
      version: 'broken',
      // biome-ignore lint/correctness/useYield: the failure happens before the first token.
      async *generate() {
        throw new Error('out of memory');
      },
    };
    const parts = await collect(runSession({ constraints: noComma }, { policy: fixedPolicy(broken) }));
    expect(parts.at(-1)).toEqual({ type: 'error', code: 'generation_failed', message: 'out of memory' });
  });

  it('gives each attempt of a seeded session its own seed', async () => {
    const policy = new ScriptedPolicy(['a, b']);
    await collect(
      runSession(
        { constraints: noComma, maxAttempts: 3, sampling: { seed: 7, temperature: 1 } },
        { policy: fixedPolicy(policy) },
      ),
    );
    expect(policy.calls.map((c) => [c.options.seed, c.options.temperature])).toEqual([
      [7, 1],
      [8, 1],
      [9, 1],
    ]);
  });

  it('refuses maxAttempts outside 1..10', async () => {
    const policy = fixedPolicy(new ScriptedPolicy(['x']));
    await expect(collect(runSession({ constraints: noComma, maxAttempts: 11 }, { policy }))).rejects.toThrow(
      /1\.\.10/,
    );
  });
});
