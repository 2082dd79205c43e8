/**
 * Everything between the network and the routes, in one place and one order:
 *
 *   helmet headers → CORS allow-list → foreign-origin refusal → per-IP limit → API key → per-key limit
 *
 * for `/v1/*` and `/metrics` (`/healthz` and the static front end stay open: load balancers and
 * browsers fetch those without keys), and the same checks on every socket.io handshake plus a
 * session rate limit and a revocation re-check on every `session:start`. `createApp` and
 * `startServer` call `installHttp` / `installSockets`; the checks themselves live in auth.ts and
 * limits.ts.
 */
import cors from 'cors';
import type express from 'express';
import helmet from 'helmet';
import type pg from 'pg';
import type { Socket } from 'socket.io';
import { Authenticator, type AuthMode, handshakeToken, principalOf } from './auth.ts';
import { HttpError, toErrorBody } from './http-error.ts';
import { createLimits, type Limits, type RateLimits, rateLimitIdentity } from './limits.ts';
import type { CorgiIo } from './socket.ts';

export interface SecurityOptions {
  /** `startServer` defaults this from the bound host (`defaultAuthMode`). @default 'optional' */
  auth?: AuthMode;
  /**
   * Browser origins (`https://app.example.com`) allowed to call the API from another origin. The
   * server's own origin always is; `*` allows any (never sensible with keys in browsers). @default []
   */
  corsOrigins?: string[];
  rateLimits?: Partial<RateLimits>;
  /**
   * Reverse-proxy hops in front of the server whose `X-Forwarded-For` entries to trust, so per-IP
   * limits and the loopback checks see the real client. @default 0
   */
  trustProxyHops?: number;
  /** How long a verified key is trusted without a lookup (revocation delay across processes). @default 10_000 */
  authCacheTtlMs?: number;
}

export interface Security {
  readonly auth: Authenticator;
  readonly limits: Limits;
  readonly corsOrigins: readonly string[];
  /** The `cors` option for socket.io's polling transport. */
  readonly socketCors: { origin: string[] | boolean };
  installHttp(app: express.Express): void;
  installSockets(io: CorgiIo): void;
  close(): void;
}

/** Is a browser `Origin` acceptable: absent (not a browser), the server's own, or allow-listed. */
export function isOriginAllowed(
  origin: string | undefined,
  hostHeader: string | undefined,
  allowList: readonly string[],
): boolean {
  if (origin === undefined) return true;
  if (allowList.includes('*') || allowList.includes(origin)) return true;
  try {
    return new URL(origin).host === hostHeader;
  } catch {
    return false; // `null` (sandboxed frames, file://) and garbage.
  }
}

/** The client behind `hops` trusted proxies, as express computes `req.ip` for a numeric `trust proxy`. */
export function clientAddress(remote: string, forwardedFor: string | undefined, hops: number): string {
  if (hops <= 0 || !forwardedFor) return remote;
  const chain = [
    remote,
    ...forwardedFor
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean)
      .reverse(),
  ];
  return chain[Math.min(hops, chain.length - 1)];
}

const foreignOrigin = (origin: string) =>
  new HttpError(
    403,
    'forbidden_origin',
    `origin: ${origin} may not call this API; an operator allows it with --cors-origin (env CORGI_CORS_ORIGINS)`,
  );

export function createSecurity(pool: pg.Pool, options: SecurityOptions = {}): Security {
  const corsOrigins = (options.corsOrigins ?? []).filter(Boolean);
  const hops = options.trustProxyHops ?? 0;
  const auth = new Authenticator({
    pool,
    mode: options.auth ?? 'optional',
    cacheTtlMs: options.authCacheTtlMs,
  });
  const limits = createLimits(options.rateLimits ?? {}, (req) =>
    rateLimitIdentity(principalOf(req).apiKeyId, req.ip),
  );

  const installHttp = (app: express.Express) => {
    // A number of hops, as express documents it; `req.ip` then names the client, not the proxy.
    app.set('trust proxy', hops > 0 ? hops : false);
    app.use(
      helmet({
        contentSecurityPolicy: {
          // Plain-HTTP deployments on a LAN would otherwise have every asset upgraded to https and broken.
          directives: { 'upgrade-insecure-requests': null },
        },
      }),
    );
    const guarded = ['/v1', '/metrics'];
    app.use(
      guarded,
      cors({
        origin: (origin, callback) =>
          callback(null, origin !== undefined && isOriginAllowed(origin, undefined, corsOrigins)),
        allowedHeaders: ['Authorization', 'Content-Type', 'Accept'],
        exposedHeaders: ['Retry-After', 'RateLimit', 'RateLimit-Policy'],
        maxAge: 600,
      }),
    );
    app.use(guarded, (req, _res, next) => {
      const origin = req.get('origin');
      if (origin !== undefined && !isOriginAllowed(origin, req.get('host'), corsOrigins))
        throw foreignOrigin(origin);
      next();
    });
    app.use(guarded, limits.perIp, auth.http, limits.perKey);
    // A chat completion costs model time like a session (a CORGI one is one): both count as one.
    app.post(['/v1/sessions', '/v1/chat/completions'], limits.httpSessions);
  };

  const installSockets = (io: CorgiIo) => {
    const tokens = new WeakMap<Socket, string | null>();
    io.use(async (socket, next) => {
      try {
        const { headers } = socket.handshake;
        const origin = typeof headers.origin === 'string' ? headers.origin : undefined;
        if (origin !== undefined && !isOriginAllowed(origin, headers.host, corsOrigins))
          throw foreignOrigin(origin);
        const forwarded = headers['x-forwarded-for'];
        const address = clientAddress(
          socket.handshake.address,
          typeof forwarded === 'string' ? forwarded : undefined,
          hops,
        );
        const refused = await limits.socketConnection(address);
        if (refused) throw new HttpError(429, refused.body.code, refused.body.message);
        const handshake = { ...socket.handshake, address };
        const principal = await auth.resolveHandshake(handshake);
        socket.data.apiKeyId = principal.apiKeyId;
        tokens.set(socket, handshakeToken(handshake));
        next();
      } catch (error) {
        // The client's `connect_error` gets the message, and the `{code, message}` body as `data`.
        const { body } = toErrorBody(error);
        next(Object.assign(new Error(body.message), { data: body }));
      }
    });

    io.on('connection', (socket) => {
      const forwarded = socket.handshake.headers['x-forwarded-for'];
      const address = clientAddress(
        socket.handshake.address,
        typeof forwarded === 'string' ? forwarded : undefined,
        hops,
      );
      // Runs before socket.ts's handler for each incoming packet; a refused `session:start` never reaches it.
      socket.use(async ([event, ...args], next) => {
        if (event !== 'session:start') return next();
        const ack =
          typeof args.at(-1) === 'function' ? (args.at(-1) as (response: unknown) => void) : undefined;
        const refuse = (error: unknown) => {
          const { body } = toErrorBody(error);
          ack?.({ error: body });
          socket.emit('session:error', body);
        };
        try {
          // A socket outlives its key's revocation: look the key up again (cached for a few seconds).
          const token = tokens.get(socket) ?? null;
          if (token !== null && !(await auth.verifier.verify(token))) {
            refuse(new HttpError(401, 'unauthorized', 'authorization: unknown or revoked API key'));
            socket.disconnect(true);
            return;
          }
          const refused = await limits.sessionStart(rateLimitIdentity(socket.data.apiKeyId ?? null, address));
          if (refused) {
            refuse(new HttpError(429, refused.body.code, refused.body.message));
            return;
          }
        } catch (error) {
          refuse(error);
          return;
        }
        next();
      });
    });
  };

  return {
    auth,
    limits,
    corsOrigins,
    socketCors: {
      origin: corsOrigins.includes('*') ? true : corsOrigins.length > 0 ? [...corsOrigins] : false,
    },
    installHttp,
    installSockets,
    close: () => limits.close(),
  };
}
