/**
 * The session recorder: `logSession` wraps a session runner's stream and writes each turn to
 * PostgreSQL before passing its part on, so a consumer that forwards parts to a client never shows
 * an attempt that is not yet durable.
 */
import type pg from 'pg';
import { endSession, insertTurn } from '../db/sessions.ts';
import type { SessionPart } from './session-runner.ts';

/**
 * Passes a session's parts through, writing each turn (the instruction, every attempt, every
 * feedback turn) before yielding the part that announces it, and the session's outcome at its end.
 */
export async function* logSession(
  pool: pg.Pool,
  sessionId: string,
  parts: AsyncIterable<SessionPart>,
  hooks: { onWrite?: (milliseconds: number) => void } = {},
): AsyncGenerator<SessionPart> {
  let idx = 0;
  let ended = false;
  try {
    for await (const part of parts) {
      if (part.type === 'user-turn') {
        await insertTurn(pool, sessionId, {
          idx: idx++,
          role: 'user',
          kind: part.kind,
          attempt: part.attempt,
          text: part.text,
        });
      } else if (part.type === 'attempt:end') {
        const started = performance.now();
        await insertTurn(pool, sessionId, {
          idx: idx++,
          role: 'assistant',
          kind: 'attempt',
          attempt: part.attempt,
          text: part.text,
          tokenIds: part.tokenIds,
          logprobs: part.logprobs,
          policyVersion: part.policyVersion,
          check: part.check,
          finishReason: part.finishReason,
          firstTokenMs: part.timings.firstTokenMs,
          generateMs: part.timings.generateMs,
          checkMs: part.timings.checkMs,
        });
        hooks.onWrite?.(performance.now() - started);
      } else if (part.type === 'session:end') {
        ended = true;
        await endSession(pool, sessionId, {
          status: part.cancelled ? 'cancelled' : 'completed',
          ok: part.ok,
          bestScore: part.bestScore,
          attempts: part.attempts,
        });
      } else if (part.type === 'error') {
        ended = true;
        await endSession(pool, sessionId, {
          status: 'failed',
          error: { code: part.code, message: part.message },
        });
      }
      yield part;
    }
  } finally {
    // A consumer that stopped early (client gone) leaves the session cancelled, not running.
    if (!ended) await endSession(pool, sessionId, { status: 'cancelled' }).catch(() => {});
  }
}
