import { describe, expect, it } from 'vitest';
import type { ConstraintSpec } from '../../../src/checkers/types.ts';
import { type RolloutPrompt, rollOut } from '../../../src/training/rl/rollouts.ts';
import { ScriptedPolicy } from '../../support/scripted-policy.ts';

const keyword = (word: string): ConstraintSpec => ({
  id: 'keywords:existence',
  kwargs: { keywords: [word] },
});
// Attempt k answers ANSWERS[k-1]: "beta" is met at attempt 2, "zeta" never.
const ANSWERS = ['alpha', 'alpha beta', 'alpha beta gamma'];
const PROMPTS: RolloutPrompt[] = [
  { id: 'p/0', task: 'kw', constraints: [keyword('beta')] },
  { id: 'p/1', task: 'kw', constraints: [keyword('zeta')] },
];
const OPTIONS = { groupSize: 2, attempts: 3, temperature: 0.7, maxTokens: 8, seed: 100 };

describe('rollOut', () => {
  it('runs one session at a time in (prompt, group) order, each attempt with a seed of its own', async () => {
    const policy = new ScriptedPolicy(ANSWERS);
    const sessions = await rollOut(policy, PROMPTS, { ...OPTIONS, concurrency: 1 });
    expect(sessions.map((group) => group.map((s) => [s.prompt.id, s.solvedAt]))).toEqual([
      [
        ['p/0', 2],
        ['p/0', 2],
      ],
      [
        ['p/1', null],
        ['p/1', null],
      ],
    ]);
    // Session i of the call draws with seed + i·attempts, its attempt j with j − 1 more; in order.
    expect(policy.calls.map((call) => call.options.seed)).toEqual([
      100, 101, 103, 104, 106, 107, 108, 109, 110, 111,
    ]);
  });

  it('gives the same sessions whatever the concurrency', async () => {
    const texts = async (concurrency?: number) =>
      (await rollOut(new ScriptedPolicy(ANSWERS, 'v', 1), PROMPTS, { ...OPTIONS, concurrency }))
        .flat()
        .map((s) => s.attempts.map((a) => a.text));
    const one = await texts(1);
    expect(await texts(3)).toEqual(one);
    expect(await texts()).toEqual(one);
    await expect(
      rollOut(new ScriptedPolicy(ANSWERS), PROMPTS, { ...OPTIONS, concurrency: 0 }),
    ).rejects.toThrow(/concurrency must be a positive integer, got 0/);
  });

  it('on abort ends the session in flight, starts no more, and still returns every session', async () => {
    const controller = new AbortController();
    const policy = new ScriptedPolicy(ANSWERS, 'v', 20); // 200 ms of sessions in all
    const run = rollOut(policy, PROMPTS, { ...OPTIONS, concurrency: 1, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop')), 2);
    const sessions = (await run).flat();
    expect(sessions).toHaveLength(4);
    expect(sessions[0]!.prompt.id).toBe('p/0');
    const unstarted = sessions.filter((s) => s.error === 'cancelled before it started');
    expect(unstarted.length).toBeGreaterThanOrEqual(1);
    for (const s of unstarted) expect(s.attempts).toEqual([]);
    expect(sessions.at(-1)).toMatchObject({ prompt: { id: 'p/1' }, ok: false, solvedAt: null });
  });

  it('starts nothing when its signal is aborted already', async () => {
    const policy = new ScriptedPolicy(ANSWERS);
    const sessions = await rollOut(policy, PROMPTS, { ...OPTIONS, signal: AbortSignal.abort() });
    expect(policy.calls).toHaveLength(0);
    expect(sessions.flat().map((s) => s.error)).toEqual(Array(4).fill('cancelled before it started'));
  });
});
