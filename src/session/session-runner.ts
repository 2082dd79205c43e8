/**
 * The session runner: the CORGI loop, written once. For a prompt and its constraints it
 * generates, checks (`checkAll`, in the server's check pool or on this thread), and while the answer falls short and attempts remain,
 * sends the checker's feedback back as a new user turn and generates again.
 *
 * The live server, the trainer's rollouts and `corgi eval` all run sessions through
 * `runSession`. It yields one union of parts (after the AI SDK's stream parts) that feeds
 * socket.io, Server-Sent Events, JSON responses and the trainer alike; failures become parts.
 * A consumer that persists turns does so before pulling the next part, so whatever a client
 * sees acknowledged is already written.
 */
import type { CheckResult } from '../checkers/registry.ts';
import type { ParsedConstraint } from '../checkers/types.ts';
import type {
  ChatMessage,
  FinishReason,
  Generation,
  PolicySource,
  SamplingOptions,
} from '../policy/types.ts';
import { CheckError } from './check-error.ts';
import { type CheckFunction, checkInProcess } from './check-pool.ts';
import { renderFeedback, renderInstruction } from './render.ts';

/** The paper trains with 4 attempts: one answer and three retries. */
export const DEFAULT_MAX_ATTEMPTS = 4;
export const MAX_ATTEMPTS_LIMIT = 10;

export interface SessionRequest {
  /** The writer's prompt; without one the constraints alone are the instruction. */
  prompt?: string;
  /** Already validated (see `parseConstraints`). */
  constraints: readonly ParsedConstraint[];
  /** 1–10. @default 4 */
  maxAttempts?: number;
  sampling?: SamplingOptions;
}

export interface SessionOptions {
  policy: PolicySource;
  /** Aborting (cancel, client gone) stops the current generation and ends the session. */
  signal?: AbortSignal;
  /** Milliseconds clock, injectable for tests. @default performance.now */
  now?: () => number;
  /**
   * Checks each attempt: the server passes its check pool (a time budget, off the event loop).
   * A check that fails (`check_timeout`, `checks_busy`) ends the session with an `error` part of
   * that code. @default checkInProcess (`checkAll` on this thread, no budget)
   */
  check?: CheckFunction;
}

export interface AttemptTimings {
  /** From the attempt's start to its first streamed token (null when none came). */
  firstTokenMs: number | null;
  generateMs: number;
  checkMs: number;
}

/** The parts a session streams, in order. */
export type SessionPart =
  | { type: 'user-turn'; attempt: number; kind: 'instruction' | 'feedback'; text: string }
  | { type: 'attempt:start'; attempt: number; policyVersion: string }
  | { type: 'token'; attempt: number; text: string; tokenIds: number[]; logprobs: number[] }
  | {
      type: 'attempt:end';
      attempt: number;
      policyVersion: string;
      text: string;
      tokenIds: number[];
      logprobs: number[];
      finishReason: FinishReason;
      /** The prompt tokens this attempt was decoded from, when the policy reports them. */
      promptTokens?: number;
      check: CheckResult;
      timings: AttemptTimings;
    }
  | { type: 'session:end'; ok: boolean; bestScore: number; attempts: number; cancelled: boolean }
  | { type: 'error'; code: string; message: string };

export type AttemptEndPart = Extract<SessionPart, { type: 'attempt:end' }>;

/**
 * Runs one session to its end, yielding every part. Never throws for a policy failure: it
 * yields an `error` part and stops.
 */
export async function* runSession(
  request: SessionRequest,
  options: SessionOptions,
): AsyncGenerator<SessionPart> {
  const { policy, signal } = options;
  const now = options.now ?? (() => performance.now());
  const maxAttempts = request.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT) {
    throw new RangeError(`maxAttempts must be an integer in 1..${MAX_ATTEMPTS_LIMIT}, got ${maxAttempts}`);
  }
  const instruction = renderInstruction(request.prompt, request.constraints);
  const messages: ChatMessage[] = [{ role: 'user', content: instruction }];
  yield { type: 'user-turn', attempt: 1, kind: 'instruction', text: instruction };

  let bestScore = 0;
  let attempts = 0;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (signal?.aborted) break;
    // Ask for the policy at every attempt boundary: a hot swap lands here, never mid-attempt.
    const current = policy.current();
    attempts = attempt;
    yield { type: 'attempt:start', attempt, policyVersion: current.version };

    const started = now();
    let firstTokenMs: number | null = null;
    let generation: Generation;
    try {
      const stream = current.generate(messages, { ...seedFor(request.sampling, attempt), signal });
      for (;;) {
        const next = await stream.next();
        if (next.done) {
          generation = next.value;
          break;
        }
        firstTokenMs ??= now() - started;
        yield { type: 'token', attempt, ...next.value };
      }
    } catch (error) {
      yield { type: 'error', code: 'generation_failed', message: (error as Error).message ?? String(error) };
      return;
    }
    const generateMs = now() - started;

    const checkStarted = now();
    let check: CheckResult;
    try {
      // Not aborted with the session: a cancelled attempt is still checked and stored (the budget bounds it).
      check = await (options.check ?? checkInProcess)(generation.text, request.constraints);
    } catch (error) {
      const code = CheckError.isInstance(error) ? error.code : 'check_failed';
      yield { type: 'error', code, message: (error as Error).message ?? String(error) };
      return;
    }
    const checkMs = now() - checkStarted;
    bestScore = Math.max(bestScore, check.score);
    yield {
      type: 'attempt:end',
      attempt,
      policyVersion: current.version,
      text: generation.text,
      tokenIds: generation.tokenIds,
      logprobs: generation.logprobs,
      finishReason: generation.finishReason,
      promptTokens: generation.promptTokens,
      check,
      timings: { firstTokenMs, generateMs, checkMs },
    };
    if (check.ok) {
      yield { type: 'session:end', ok: true, bestScore, attempts, cancelled: false };
      return;
    }
    if (generation.finishReason === 'cancelled' || signal?.aborted) break;
    if (attempt < maxAttempts) {
      const feedback = renderFeedback(check.feedback ?? 'The answer does not satisfy the constraints.');
      messages.push({ role: 'assistant', content: generation.text }, { role: 'user', content: feedback });
      yield { type: 'user-turn', attempt: attempt + 1, kind: 'feedback', text: feedback };
    }
  }
  yield { type: 'session:end', ok: false, bestScore, attempts, cancelled: signal?.aborted ?? false };
}

/** Each attempt of a seeded session gets its own seed, so retries are reproducible yet differ. */
function seedFor(sampling: SamplingOptions | undefined, attempt: number): SamplingOptions {
  if (sampling?.seed === undefined) return { ...sampling };
  return { ...sampling, seed: sampling.seed + attempt - 1 };
}
