/**
 * Live sessions: validates nothing (callers pass a parsed request), records the session row,
 * runs the shared session runner through the turn logger, keeps an AbortController per running
 * session for cancel and disconnect, and feeds the metrics. Socket.io, SSE and JSON responses
 * all consume the same part stream from here.
 */

import type pg from 'pg';
import { defaultLogger, type Logger } from '../common/logger.ts';
import { createSession, endSession } from '../db/sessions.ts';
import type { PolicySource } from '../policy/types.ts';
import type { CheckFunction } from '../session/check-pool.ts';
import { logSession } from '../session/recorder.ts';
import { renderInstruction } from '../session/render.ts';
import { runSession, type SessionPart } from '../session/session-runner.ts';
import { DeferredWrites } from './deferred-writes.ts';
import { HttpError, isStorageError } from './http-error.ts';
import type { ServerMetrics } from './metrics.ts';
import type { SessionStartRequest } from './schemas.ts';
import type { StorageHealth } from './storage-health.ts';

export interface Owner {
  /** The API key that made the request; null for unauthenticated loopback use. */
  apiKeyId: string | null;
}

interface RunningSession {
  owner: Owner;
  controller: AbortController;
}

export class SessionService {
  private readonly running = new Map<string, RunningSession>();
  /** Final statuses the store refused while it was down, written once it is back. */
  readonly deferredWrites: DeferredWrites;

  constructor(
    private readonly deps: {
      pool: pg.Pool;
      policy: PolicySource;
      metrics: ServerMetrics;
      /** This server process's id, recorded on its sessions (presence.ts). */
      serverId?: string;
      /** Retry interval for deferred writes. @default 2_000 */
      retryMs?: number;
      /** How attempts are checked (the server's check pool). @default checkInProcess */
      check?: CheckFunction;
      /** Refuses new sessions at once while the database is known to be unavailable. */
      health?: StorageHealth;
      /** @default defaultLogger (logger.ts) */
      logger?: Logger;
    },
  ) {
    this.logger = deps.logger ?? defaultLogger;
    this.deferredWrites = new DeferredWrites({ retryMs: deps.retryMs, logger: this.logger });
  }

  /** Where the session transports log unexpected errors. */
  readonly logger: Logger;

  /** Sessions in flight right now. */
  get activeCount(): number {
    return this.running.size;
  }

  /**
   * Records the session, then returns its id and its part stream. The stream must be consumed
   * (it drives generation); aborting `signal` cancels the session.
   */
  async start(
    request: SessionStartRequest,
    owner: Owner,
    signal?: AbortSignal,
  ): Promise<{ sessionId: string; parts: AsyncGenerator<SessionPart> }> {
    const { pool, policy, metrics } = this.deps;
    // A prompt the model cannot take is the caller's error (400), found before anything is recorded.
    const current = policy.current();
    const measured = current.measurePrompt?.(
      [{ role: 'user', content: renderInstruction(request.prompt, request.constraints) }],
      request.sampling,
    );
    if (measured && measured.tokens > measured.limit) {
      throw new HttpError(
        400,
        'prompt_too_long',
        `prompt: the instruction (prompt plus constraint sentences) takes ${measured.tokens} tokens; policy ` +
          `${current.version} accepts at most ${measured.limit} with room for the answer. Shorten the prompt ` +
          '(or lower sampling.maxTokens)',
      );
    }
    await this.deps.health?.ensureAvailable();
    let sessionId: string;
    try {
      sessionId = await createSession(pool, {
        apiKeyId: owner.apiKeyId,
        source: 'live',
        prompt: request.prompt,
        constraints: request.constraints,
        maxAttempts: request.maxAttempts,
        sampling: request.sampling,
        serverId: this.deps.serverId ?? null,
      });
    } catch (error) {
      // Only an unreachable store is a 503; anything else is a bug to log (a 500), not an outage.
      if (!isStorageError(error)) throw error;
      const health = this.deps.health;
      if (health) {
        health.noteError(error);
        throw health.unavailableError(error);
      }
      throw new HttpError(503, 'storage_unavailable', 'the session store is unavailable; try again shortly', {
        cause: error,
        headers: { 'Retry-After': '5' },
      });
    }
    const controller = new AbortController();
    const abort = () => controller.abort();
    signal?.addEventListener('abort', abort, { once: true });
    this.running.set(sessionId, { owner, controller });
    metrics.sessionsStarted.inc();
    metrics.activeSessions.inc();

    const running = this.running;
    const deferredWrites = this.deferredWrites;
    const health = this.deps.health;
    const parts = logSession(
      pool,
      sessionId,
      runSession(
        {
          prompt: request.prompt,
          constraints: request.constraints,
          maxAttempts: request.maxAttempts,
          sampling: request.sampling,
        },
        { policy, signal: controller.signal, ...(this.deps.check ? { check: this.deps.check } : {}) },
      ),
      { onWrite: (ms) => metrics.dbWriteLatency.observe(ms / 1000) },
    );

    async function* instrumented(): AsyncGenerator<SessionPart> {
      let outcome = 'cancelled';
      try {
        for await (const part of parts) {
          if (part.type === 'attempt:end') {
            metrics.attempts.inc();
            metrics.tokens.inc(part.tokenIds.length);
            if (part.timings.firstTokenMs !== null)
              metrics.timeToFirstToken.observe(part.timings.firstTokenMs / 1000);
            if (part.timings.generateMs > 0) {
              metrics.tokensPerSecond.observe(part.tokenIds.length / (part.timings.generateMs / 1000));
            }
            metrics.checkLatency.observe(part.timings.checkMs / 1000);
          } else if (part.type === 'session:end') {
            outcome = part.cancelled ? 'cancelled' : part.ok ? 'ok' : 'failed_constraints';
          } else if (part.type === 'error') {
            outcome = 'error';
          }
          yield part;
        }
      } catch (error) {
        if (isStorageError(error)) {
          outcome = 'error';
          health?.noteError(error);
          // What the client saw acknowledged is stored; record how the session ended once the store is back.
          const failed = {
            code: 'storage_unavailable',
            message: 'the session store became unavailable mid-session',
          };
          deferredWrites.add(() => endSession(pool, sessionId, { status: 'failed', error: failed }));
        }
        throw error;
      } finally {
        signal?.removeEventListener('abort', abort);
        running.delete(sessionId);
        metrics.activeSessions.dec();
        metrics.sessionsEnded.inc({ outcome });
      }
    }
    return { sessionId, parts: instrumented() };
  }

  /** Cancels a running session of `owner`'s; false when there is none. */
  cancel(sessionId: string, owner: Owner): boolean {
    const session = this.running.get(sessionId);
    if (!session || session.owner.apiKeyId !== owner.apiKeyId) return false;
    session.controller.abort();
    return true;
  }

  /** Cancels every running session and stops retrying deferred writes (shutdown). */
  cancelAll(): void {
    for (const session of this.running.values()) session.controller.abort();
    this.deferredWrites.stop();
  }
}
