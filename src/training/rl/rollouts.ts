/**
 * Rollouts: simulated feedback sessions for the trainer, run through the same `runSession` the
 * live server and `corgi eval` use, so what the policy is trained on is exactly what users see.
 * Each prompt is rolled out `groupSize` times (the group its advantages are relative to).
 *
 * `concurrency` sessions are in flight at once, started in (prompt, group) order. Every session
 * draws with seeds of its own, so what varies between two runs is only llama.cpp's arithmetic:
 * sessions decoded together share batches, and which tokens share a batch (and which cached prefix
 * a retry finds) depends on timing and moves the logits in their last bits, now and then flipping a
 * draw. One session at a time on one sequence takes timing out of it: the same seed gives the same
 * sessions, bit for bit.
 */
import { parseConstraints } from '../../checkers/registry.ts';
import type { ConstraintSpec, ParsedConstraint } from '../../checkers/types.ts';
import { runConcurrently } from '../../common/concurrency.ts';
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
  /** Sessions in flight at once (see the file comment). @default every session of the call */
  concurrency?: number;
  signal?: AbortSignal;
  /**
   * How attempts are checked: a process that runs a check pool (the server's embedded trainer)
   * passes it, so the rollouts' checks share its workers and budget. @default checkInProcess
   */
  check?: CheckFunction;
}

/**
 * Rolls out every prompt `groupSize` times; result[p][g] is prompt p's g-th session. Aborting
 * (`signal`) ends the sessions in flight and starts no more; every session is still in the result.
 */
export async function rollOut(
  policy: ChatPolicy,
  prompts: readonly RolloutPrompt[],
  options: RolloutOptions,
): Promise<RolloutSession[][]> {
  // Validated before any session starts: every prompt once, not once per session of its group.
  const constraints = prompts.map((prompt) =>
    parseConstraints(prompt.constraints, `${prompt.id}.constraints`),
  );
  const total = prompts.length * options.groupSize;
  const concurrency = options.concurrency ?? total;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  const promptOf = (i: number) => Math.floor(i / options.groupSize);
  const sessions: RolloutSession[] = new Array(total);
  await runConcurrently(
    total,
    concurrency,
    async (i, signal) => {
      sessions[i] = await rollOutSession(policy, prompts[promptOf(i)]!, constraints[promptOf(i)]!, {
        ...options,
        seed: options.seed + i * options.attempts,
        signal,
      });
    },
    options.signal,
  );
  // After an abort, the sessions that never started are there too, empty and marked.
  for (let i = 0; i < total; i++) {
    sessions[i] ??= {
      prompt: prompts[promptOf(i)]!,
      attempts: [],
      ok: false,
      solvedAt: null,
      error: 'cancelled before it started',
    };
  }
  return prompts.map((_, p) => sessions.slice(p * options.groupSize, (p + 1) * options.groupSize));
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
