import { describe, expect, it } from 'vitest';
import { parseConstraints } from '../../src/checkers/registry.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { CheckError } from '../../src/session/check-error.ts';
import type { CheckFunction } from '../../src/session/check-pool.ts';
import { runSession, type SessionPart } from '../../src/session/session-runner.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const CONSTRAINTS = parseConstraints([{ id: 'keywords:existence', kwargs: { keywords: ['dog'] } }]);

async function collect(parts: AsyncGenerator<SessionPart>): Promise<SessionPart[]> {
  const all: SessionPart[] = [];
  for await (const part of parts) all.push(part);
  return all;
}

describe('runSession with an injected check', () => {
  it('checks every attempt with it', async () => {
    const seen: string[] = [];
    const check: CheckFunction = async (response) => {
      seen.push(response);
      return { ok: seen.length === 2, score: seen.length === 2 ? 1 : 0, feedback: 'again', results: [] };
    };
    const parts = await collect(
      runSession(
        { constraints: CONSTRAINTS, maxAttempts: 3 },
        { policy: fixedPolicy(new ScriptedPolicy(['first try', 'second try'])), check },
      ),
    );
    expect(seen).toEqual(['first try', 'second try']);
    expect(parts.at(-1)).toMatchObject({ type: 'session:end', ok: true, attempts: 2 });
  });

  it('ends the session with an error part carrying check_timeout when the check runs out of budget', async () => {
    const check: CheckFunction = async () => {
      throw new CheckError('check_timeout', 'response: checking took longer than the 5 ms budget');
    };
    const parts = await collect(
      runSession(
        { constraints: CONSTRAINTS, maxAttempts: 3 },
        { policy: fixedPolicy(new ScriptedPolicy(['a long answer'])), check },
      ),
    );
    expect(parts.some((part) => part.type === 'attempt:end')).toBe(false);
    expect(parts.at(-1)).toEqual({
      type: 'error',
      code: 'check_timeout',
      message: 'response: checking took longer than the 5 ms budget',
    });
  });
});
