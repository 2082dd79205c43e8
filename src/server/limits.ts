/**
 * Rate limits (express-rate-limit, fixed one-minute windows, in-process counters):
 * - per client IP, on every API call, before the key is looked up (so guessing keys is bounded too);
 * - per API key (anonymous callers: per IP), on every API call;
 * - sessions started per key (anonymous: per IP), counted across HTTP and socket.io together, so
 *   switching transport does not double the allowance; sessions are what costs model time;
 * - socket.io connections per IP.
 * A refusal is 429 `{"error": {"code": "rate_limited", "message"}}` (OpenAI's error shape on the
 * OpenAI-compatible routes) with `Retry-After` (seconds);
 * over socket.io, the `session:start` ack and a `session:error` carry the same body plus
 * `retryAfter`. Counters live in each process: with several servers behind a balancer each one
 * enforces its own limits (an allowance is per server).
 */
import type express from 'express';
import { ipKeyGenerator, MemoryStore, type Options, rateLimit } from 'express-rate-limit';
import { type ErrorBody, HttpError } from './http-error.ts';

const WINDOW_MS = 60_000;

export interface RateLimits {
  /** API requests per minute per client IP; 0 disables. @default 600 */
  perIpPerMinute: number;
  /** API requests per minute per API key (anonymous callers: per IP); 0 disables. @default 300 */
  perKeyPerMinute: number;
  /** Sessions started per minute per key (anonymous: per IP), HTTP and socket.io together; 0 disables. @default 30 */
  sessionsPerMinute: number;
  /** socket.io connections per minute per IP; 0 disables. @default 60 */
  socketConnectionsPerMinute: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  perIpPerMinute: 600,
  perKeyPerMinute: 300,
  sessionsPerMinute: 30,
  socketConnectionsPerMinute: 60,
};

/** A refusal: the error body and how many seconds until the window resets. */
export interface RateLimited {
  body: ErrorBody;
  retryAfterSeconds: number;
}

/** The bucket a caller counts against: its key, or its IP (IPv6 grouped by /56, as express-rate-limit advises). */
export function rateLimitIdentity(apiKeyId: string | null, ip: string | undefined): string {
  return apiKeyId ? `key:${apiKeyId}` : `ip:${ipKeyGenerator(ip ?? 'unknown')}`;
}

function refusal(limit: number, what: string, resetTime: Date | undefined): RateLimited {
  const retryAfterSeconds = Math.max(
    1,
    Math.ceil(((resetTime?.getTime() ?? Date.now() + WINDOW_MS) - Date.now()) / 1000),
  );
  return {
    body: {
      code: 'rate_limited',
      message: `rate limit: at most ${limit} ${what} per minute; retry in ${retryAfterSeconds} s`,
    },
    retryAfterSeconds,
  };
}

function toHttpError({ body, retryAfterSeconds }: RateLimited): HttpError {
  return new HttpError(429, body.code, body.message, {
    headers: { 'Retry-After': String(retryAfterSeconds) },
  });
}

/**
 * A counter usable outside express (socket.io events): `hit(identity)` counts one and returns
 * a refusal once the identity is over `limit` in the current window, else null.
 */
export class WindowCounter {
  private readonly store = new MemoryStore();

  constructor(
    readonly limit: number,
    private readonly what: string,
  ) {
    this.store.init({ windowMs: WINDOW_MS } as Options);
  }

  async hit(identity: string): Promise<RateLimited | null> {
    if (this.limit <= 0) return null;
    const { totalHits, resetTime } = await this.store.increment(identity);
    return totalHits > this.limit ? refusal(this.limit, this.what, resetTime) : null;
  }

  /** Stops the store's cleanup timer. */
  shutdown(): void {
    void this.store.shutdown();
  }
}

/** An express middleware limiting `limit` requests per minute per `identity(req)`. */
function requestLimiter(
  limit: number,
  what: string,
  identity: (req: express.Request) => string,
): express.RequestHandler {
  if (limit <= 0) return (_req, _res, next) => next();
  return rateLimit({
    windowMs: WINDOW_MS,
    limit,
    // RateLimit / RateLimit-Policy (IETF draft 8) for well-behaved clients; Retry-After is set on refusal.
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: identity,
    // Its heuristic cannot see through `identity`; `rateLimitIdentity` applies ipKeyGenerator itself.
    validate: { keyGeneratorIpFallback: false },
    // Through the error middleware, so each route family answers in its own error shape.
    handler: (req, _res, next) => {
      const resetTime = (req as express.Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      next(toHttpError(refusal(limit, what, resetTime)));
    },
  });
}

export interface Limits {
  readonly rates: RateLimits;
  /** Per IP, before authentication. */
  perIp: express.RequestHandler;
  /** Per key (or IP), after authentication; `identityOf` reads the authenticated caller. */
  perKey: express.RequestHandler;
  /** In front of `POST /v1/sessions`; shares its counter with socket.io's `session:start`. */
  httpSessions: express.RequestHandler;
  /** socket.io `session:start`: null to go ahead, or the refusal. */
  sessionStart(identity: string): Promise<RateLimited | null>;
  /** socket.io handshakes per IP. */
  socketConnection(ip: string | undefined): Promise<RateLimited | null>;
  close(): void;
}

export function createLimits(
  rates: Partial<RateLimits>,
  identityOf: (req: express.Request) => string,
): Limits {
  const all = { ...DEFAULT_RATE_LIMITS, ...rates };
  const sessions = new WindowCounter(all.sessionsPerMinute, 'sessions started');
  const connections = new WindowCounter(all.socketConnectionsPerMinute, 'socket.io connections');
  const ipIdentity = (req: express.Request) => rateLimitIdentity(null, req.ip);
  return {
    rates: all,
    perIp: requestLimiter(all.perIpPerMinute, 'requests per client IP', ipIdentity),
    perKey: requestLimiter(all.perKeyPerMinute, 'requests per API key', identityOf),
    httpSessions: async (req, _res, next) => {
      const refused = await sessions.hit(identityOf(req));
      next(refused ? toHttpError(refused) : undefined);
    },
    sessionStart: (identity) => sessions.hit(identity),
    socketConnection: (ip) => connections.hit(rateLimitIdentity(null, ip)),
    close: () => {
      sessions.shutdown();
      connections.shutdown();
    },
  };
}
