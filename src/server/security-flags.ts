/**
 * `corgi serve`'s security flags (each with an environment variable for container deployments),
 * turned into `SecurityOptions`. Kept apart from serve-command.ts so the server's wiring stays short.
 */
import type { Command } from 'commander';
import { type AuthMode, defaultAuthMode } from './auth.ts';
import { DEFAULT_RATE_LIMITS, type RateLimits } from './limits.ts';
import type { SecurityOptions } from './security.ts';

export interface SecurityFlags {
  /** false with `--no-auth`. */
  auth: boolean;
  requireAuth?: boolean;
  corsOrigin: string;
  rateLimit: string;
  rateLimitIp: string;
  sessionRateLimit: string;
  socketRateLimit: string;
  trustProxy: string;
}

/** Adds the flags to `command` (`corgi serve`), each defaulting to its environment variable in `env`. */
export function addSecurityFlags(command: Command, env: NodeJS.ProcessEnv = process.env): Command {
  return command
    .option(
      '--no-auth',
      'allow calls without an API key even when binding beyond loopback (explicit opt-out)',
    )
    .option('--require-auth', 'require an API key even on loopback (use behind a reverse proxy on this host)')
    .option(
      '--cors-origin <origins>',
      'comma-separated browser origins allowed to call the API cross-origin (env CORGI_CORS_ORIGINS)',
      env.CORGI_CORS_ORIGINS ?? '',
    )
    .option(
      '--rate-limit <perMinute>',
      'API requests per minute per key, or per IP without one; 0 disables (env CORGI_RATE_LIMIT)',
      env.CORGI_RATE_LIMIT ?? String(DEFAULT_RATE_LIMITS.perKeyPerMinute),
    )
    .option(
      '--rate-limit-ip <perMinute>',
      'API requests per minute per client IP; 0 disables (env CORGI_RATE_LIMIT_IP)',
      env.CORGI_RATE_LIMIT_IP ?? String(DEFAULT_RATE_LIMITS.perIpPerMinute),
    )
    .option(
      '--session-rate-limit <perMinute>',
      'sessions started per minute per key (or IP), HTTP and socket.io together; 0 disables (env CORGI_SESSION_RATE_LIMIT)',
      env.CORGI_SESSION_RATE_LIMIT ?? String(DEFAULT_RATE_LIMITS.sessionsPerMinute),
    )
    .option(
      '--socket-rate-limit <perMinute>',
      'socket.io connections per minute per client IP; 0 disables (env CORGI_SOCKET_RATE_LIMIT)',
      env.CORGI_SOCKET_RATE_LIMIT ?? String(DEFAULT_RATE_LIMITS.socketConnectionsPerMinute),
    )
    .option(
      '--trust-proxy <hops>',
      'reverse-proxy hops whose X-Forwarded-For to trust for client addresses (env CORGI_TRUST_PROXY)',
      env.CORGI_TRUST_PROXY ?? '0',
    );
}

function count(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag}: expected an integer ≥ 0, got "${value}"`);
  return n;
}

/** Validates the flags; `host` decides the auth mode unless a flag does. */
export function securityOptionsFromFlags(flags: SecurityFlags, host: string): SecurityOptions {
  if (flags.requireAuth && !flags.auth) throw new Error('--require-auth and --no-auth contradict each other');
  const auth: AuthMode = flags.requireAuth ? 'required' : flags.auth ? defaultAuthMode(host) : 'optional';
  const rateLimits: Partial<RateLimits> = {
    perKeyPerMinute: count('--rate-limit', flags.rateLimit),
    perIpPerMinute: count('--rate-limit-ip', flags.rateLimitIp),
    sessionsPerMinute: count('--session-rate-limit', flags.sessionRateLimit),
    socketConnectionsPerMinute: count('--socket-rate-limit', flags.socketRateLimit),
  };
  const corsOrigins = flags.corsOrigin
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of corsOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new Error(`--cors-origin: "${origin}" is not an origin (scheme://host[:port], no path)`);
    }
  }
  return { auth, rateLimits, corsOrigins, trustProxyHops: count('--trust-proxy', flags.trustProxy) };
}

/** One line for the start-up banner: how callers authenticate. */
export function describeSecurity(options: SecurityOptions): string {
  return options.auth === 'required'
    ? 'API keys required'
    : 'API keys optional (anonymous callers allowed; admin only from loopback)';
}
