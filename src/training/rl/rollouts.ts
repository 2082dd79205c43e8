/**
 * Rollouts: simulated feedback sessions for the trainer, run through the same `runSession` the
 * live server and `corgi eval` use, so what the policy is trained on is exactly what users see.
 * Each prompt is rolled out `groupSize` times (the group its advantages are relative to), every
 * session of the step in flight at once so the policy decodes them as one batch.
 */
import { setMaxListeners } from 'node:events';
import { parseConstraints } from '../../checkers/registry.ts';
import type { ConstraintSpec, ParsedConstraint } from '../../checkers/types.ts';
import type { ChatMessage, ChatPolicy, FinishReason } from '../../policy/types.ts';
import { fixedPolicy } from '../../policy/types.ts';
import type { CheckFunction } from '../../session/check-pool.ts';
import { runSession } from '../../session/session-runner.ts';

/** A prompt to roll out: a task instance, or a logged production session's request. */
export interface RolloutPrompt {
  id: string;
  /** For per-task metrics: the task name, or "production". */
  task: string;
  constraints: ConstraintSpec[];
  prompt?: string;
}

export interface RolloutAttempt {
  /** The conversation the attempt answered (instruction, earlier attempts, feedback). */
  messages: ChatMessage[];
  text: string;
  tokenIds: number[];
  logprobs: number[];
  finishReason: FinishReason;
  score: number;
  ok: boolean;
  policyVersion: string;
}

export interface RolloutSession {
  prompt: RolloutPrompt;
  attempts: RolloutAttempt[];
  ok: boolean;
  /** 1-based attempt that satisfied every constraint, or null. */
  solvedAt: number | null;
  /** A generation failure ends the session early; its attempts so far are still samples. */
  error?: string;
}

export interface RolloutOptions {
  groupSize: number;
  /** K: attempts per session (1 is the single-attempt baseline). */
  attempts: number;
  temperature: number;
  maxTokens: number;
  /** Session i of the step samples with seed + i: a rerun draws the same sessions. */
  seed: number;
  signal?: AbortSignal;
  /**
   * How attempts are checked: a process that runs a check pool (the server's embedded trainer)
   * passes it, so the rollouts' checks share its workers and budget. @default checkInProcess
   */
  check?: CheckFunction;
}

/** Rolls out every prompt `groupSize` times; result[p][g] is prompt p's g-th session. */
export async function rollOut(
  policy: ChatPolicy,
  prompts: readonly RolloutPrompt[],
  options: RolloutOptions,
): Promise<RolloutSession[][]> {
  const inner = new AbortController();
  setMaxListeners(0, inner.signal);
  const forward = () => inner.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', forward, { once: true });
  try {
    return await Promise.all(
      prompts.map((prompt, p) => {
        // Validated once per prompt, not once per session of its group.
        const constraints = parseConstraints(prompt.constraints, `${prompt.id}.constraints`);
        return Promise.all(
          Array.from({ length: options.groupSize }, (_, g) =>
            rollOutSession(policy, prompt, constraints, {
              ...options,
              seed: options.seed + (p * options.groupSize + g) * options.attempts,
              signal: inner.signal,
            }),
          ),
        );
      }),
    );
  } finally {
    options.signal?.removeEventListener('abort', forward);
  }
}

async function rollOutSession(
  policy: ChatPolicy,
  prompt: RolloutPrompt,
  constraints: readonly ParsedConstraint[],
  options: RolloutOptions,
): Promise<RolloutSession> {
  const messages: ChatMessage[] = [];
  const session: RolloutSession = { prompt, attempts: [], ok: false, solvedAt: null };
  const parts = runSession(
    {
      ...(prompt.prompt !== undefined ? { prompt: prompt.prompt } : {}),
      constraints,
      maxAttempts: options.attempts,
      sampling: { temperature: options.temperature, maxTokens: options.maxTokens, seed: options.seed },
    },
    {
      policy: fixedPolicy(policy),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.check ? { check: options.check } : {}),
    },
  );
  for await (const part of parts) {
    if (part.type === 'user-turn') {
      messages.push({ role: 'user', content: part.text });
    } else if (part.type === 'attempt:end') {
      session.attempts.push({
        messages: [...messages],
        text: part.text,
        tokenIds: part.tokenIds,
        logprobs: part.logprobs,
        finishReason: part.finishReason,
        score: part.check.score,
        ok: part.check.ok,
        policyVersion: part.policyVersion,
      });
      messages.push({ role: 'assistant', content: part.text });
      if (part.check.ok && session.solvedAt === null) session.solvedAt = part.attempt;
    } else if (part.type === 'session:end') {
      session.ok = part.ok;
    } else if (part.type === 'error') {
      session.error = part.message;
    }
  }
  return session;
}
