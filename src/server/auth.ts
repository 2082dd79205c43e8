/**
 * API-key authentication for HTTP (`Authorization: Bearer <key>`) and socket.io
 * (`auth: {token: <key>}`), and the admin scope.
 *
 * Two modes:
 * - `required` — every API call and socket needs a live key. The default whenever the server binds
 *   beyond loopback; `corgi serve --require-auth` forces it on loopback too (do that behind a
 *   reverse proxy on the same host, whose requests all come from loopback).
 * - `optional` — the loopback default (and `corgi serve --no-auth`, the explicit opt-out). A
 *   request without a key is anonymous; a request *with* a key still needs it to be live, so a
 *   revoked or mistyped key never silently becomes anonymous and loses its sessions.
 *
 * Anonymous callers on the same machine are trusted like its operator (anyone there can already
 * run `corgi keys create --admin`), so they get the admin scope — but only if the Host header names
 * loopback too: a web page that rebinds its own DNS name to 127.0.0.1 reaches us with its name in
 * Host, and is refused (DNS rebinding). Anonymous callers from elsewhere (`--no-auth` off loopback)
 * never get the admin scope.
 */
import { isIP } from 'node:net';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type pg from 'pg';
import { findApiKey, type VerifiedKey } from '../db/api-keys.ts';
import { HttpError } from './http-error.ts';

export type AuthMode = 'required' | 'optional';

/** Who is calling: a key, or an anonymous caller (`apiKeyId: null`) where the mode allows one. */
export interface Principal {
  apiKeyId: string | null;
  /** The key's name, for logs; null when anonymous. */
  name: string | null;
  /** May use the admin routes (promote, rollback, keys). */
  admin: boolean;
}

/** True for addresses and host names that stay on this machine. */
export function isLoopback(host: string | undefined): boolean {
  if (!host) return false;
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (bare === '::1') return true;
  // IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is how dual-stack sockets report IPv4 peers.
  const v4 = bare.startsWith('::ffff:') ? bare.slice(7) : bare;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** The host name of a Host header (`127.0.0.1:3000` → `127.0.0.1`, `[::1]:80` → `::1`). */
function hostName(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  const bracketed = /^\[([^\]]+)\]/.exec(hostHeader);
  return bracketed ? bracketed[1] : hostHeader.replace(/:\d*$/, '');
}

/** The mode a server bound to `host` gets unless a flag says otherwise. */
export function defaultAuthMode(host: string): AuthMode {
  return isLoopback(host) ? 'optional' : 'required';
}

const unauthorized = (message: string) =>
  new HttpError(401, 'unauthorized', message, { headers: { 'WWW-Authenticate': 'Bearer realm="corgi"' } });

/**
 * Verifies keys against the database, remembering live ones for `ttlMs` so a busy key costs one
 * lookup per TTL instead of one per request, and so keys already in use keep working through a
 * short database outage. The price: a revocation reaches other processes within `ttlMs`
 * (this process forgets the key at once through `forget`).
 */
export class ApiKeyVerifier {
  private readonly cache = new Map<string, { key: VerifiedKey; expires: number }>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly ttlMs = 10_000,
    /** Bounds the cache: a flood of distinct keys evicts the oldest instead of growing memory. */
    private readonly maxEntries = 10_000,
  ) {}

  /** The live key for `key`, or null (unknown or revoked). Throws when the database is unreachable. */
  async verify(key: string): Promise<VerifiedKey | null> {
    const cached = this.cache.get(key);
    if (cached && cached.expires > Date.now()) return cached.key;
    this.cache.delete(key);
    const found = await findApiKey(this.pool, key);
    // Unknown keys are not cached: the per-IP rate limit bounds how often they can be tried.
    if (found) {
      if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, { key: found, expires: Date.now() + this.ttlMs });
    }
    return found;
  }

  /** Drops a revoked key from the cache. */
  forget(id: string): void {
    for (const [key, entry] of this.cache) if (entry.key.id === id) this.cache.delete(key);
  }
}

/** The credential a request carries, or null; a malformed Authorization header is refused. */
function bearerToken(header: string | undefined): string | null {
  if (header === undefined || header === '') return null;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthorized('authorization: expected "Bearer <key>"');
  return match[1];
}

/** The parts of a socket.io handshake authentication reads. */
export interface SocketHandshake {
  auth: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
  /** The client's address (behind trusted proxies, the forwarded one). */
  address: string;
}

/** The key a socket.io handshake carries: `auth.token`, else an Authorization header (Node clients' `extraHeaders`). */
export function handshakeToken(handshake: SocketHandshake): string | null {
  const token = handshake.auth?.token;
  if (token !== undefined && token !== null && typeof token !== 'string') {
    throw unauthorized('auth.token: expected a string API key');
  }
  if (token) return token;
  const header = handshake.headers.authorization;
  return bearerToken(typeof header === 'string' ? header : undefined);
}

const principals = new WeakMap<object, Principal>();

/**
 * The caller of a request that went through `Authenticator.http`. Fails closed: a route mounted
 * without authentication in front of it gets a 401, never an anonymous admin.
 */
export function principalOf(req: object): Principal {
  const principal = principals.get(req);
  if (!principal) throw unauthorized('authorization: this request was not authenticated');
  return principal;
}

/**
 * Admin routes (promote, rollback, keys) put this after authentication: a key without the admin
 * scope gets 403 `forbidden`.
 */
export const requireAdmin: RequestHandler = function requireAdmin(req, _res, next) {
  if (!principalOf(req).admin) {
    throw new HttpError(
      403,
      'forbidden',
      'authorization: this route needs an admin API key (create one with `corgi keys create --name N --admin`)',
    );
  }
  next();
};

export interface AuthenticatorOptions {
  pool: pg.Pool;
  mode: AuthMode;
  /** How long a verified key is trusted without a new lookup. @default 10_000 */
  cacheTtlMs?: number;
}

export class Authenticator {
  readonly mode: AuthMode;
  readonly verifier: ApiKeyVerifier;

  constructor(options: AuthenticatorOptions) {
    this.mode = options.mode;
    this.verifier = new ApiKeyVerifier(options.pool, options.cacheTtlMs);
  }

  /**
   * Who is calling, from the key (if any), the peer address and the Host header; throws a 401 or
   * 403 `HttpError` naming what is wrong.
   */
  async resolve(request: {
    token: string | null;
    remoteAddress: string | undefined;
    hostHeader: string | undefined;
  }): Promise<Principal> {
    if (request.token !== null) {
      const key = await this.verifier.verify(request.token);
      if (!key) throw unauthorized('authorization: unknown or revoked API key');
      return { apiKeyId: key.id, name: key.name, admin: key.admin };
    }
    if (this.mode === 'required') {
      throw unauthorized(
        'authorization: an API key is required; send "Authorization: Bearer <key>" (socket.io: auth.token); ' +
          'an operator creates one with `corgi keys create --name N`',
      );
    }
    if (!isLoopback(request.remoteAddress)) return { apiKeyId: null, name: null, admin: false };
    if (!isLoopback(hostName(request.hostHeader))) {
      throw new HttpError(
        403,
        'forbidden',
        `host: anonymous local access needs a loopback Host (localhost, 127.0.0.1, [::1]), got "${request.hostHeader ?? ''}"; send an API key`,
      );
    }
    return { apiKeyId: null, name: null, admin: true };
  }

  /** Express middleware: resolves the caller and records it for `principalOf`. */
  readonly http: RequestHandler = async (req: Request, _res: Response, next: NextFunction) => {
    const principal = await this.resolve({
      token: bearerToken(req.get('authorization')),
      // `req.ip` honours `trust proxy`, so behind a configured proxy this is the real client.
      remoteAddress: req.ip,
      hostHeader: req.get('host'),
    });
    principals.set(req, principal);
    next();
  };

  /** The principal of a socket.io handshake (`auth.token`, or an Authorization header). */
  async resolveHandshake(handshake: SocketHandshake): Promise<Principal> {
    return this.resolve({
      token: handshakeToken(handshake),
      remoteAddress: handshake.address,
      hostHeader: typeof handshake.headers.host === 'string' ? handshake.headers.host : undefined,
    });
  }
}
