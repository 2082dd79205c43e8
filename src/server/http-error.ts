/**
 * The one error type for expected HTTP failures (after Hono's HTTPException). The error
 * middleware answers it as `{"error": {"code", "message"}}` with its status; anything else is
 * logged and answered with a generic 500 so internals never reach the client.
 */

import type { ErrorRequestHandler } from 'express';
import { ConstraintError } from '../checkers/errors.ts';
import { CorgiError } from '../common/errors.ts';
import { defaultLogger, type Logger } from '../common/logger.ts';
import { CheckError } from '../session/check-error.ts';

export class HttpError extends CorgiError {
  readonly headers: Record<string, string>;

  constructor(
    readonly status: number,
    code: string,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(code, message, options);
    this.headers = options.headers ?? {};
  }
}

/** The wire form of an error, shared by HTTP bodies, SSE `error` frames and socket events. */
export interface ErrorBody {
  code: string;
  message: string;
}

/** Maps any thrown value to a status and an error body; unexpected errors are logged to `logger`. */
export function toErrorBody(
  error: unknown,
  logger: Logger = defaultLogger,
): {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
} {
  if (HttpError.isInstance(error)) {
    return {
      status: error.status,
      body: { code: error.code, message: error.message },
      headers: error.headers,
    };
  }
  if (isStorageError(error)) {
    return {
      status: 503,
      body: { code: 'storage_unavailable', message: 'the session store is unavailable; try again shortly' },
      headers: { 'Retry-After': '5' },
    };
  }
  if (ConstraintError.isInstance(error)) {
    return { status: 400, body: { code: error.code, message: error.message }, headers: {} };
  }
  if (CheckError.isInstance(error)) {
    // A response too costly to check stays so on retry (422); a full queue passes (503).
    return error.code === 'check_timeout'
      ? { status: 422, body: { code: error.code, message: error.message }, headers: {} }
      : { status: 503, body: { code: error.code, message: error.message }, headers: { 'Retry-After': '1' } };
  }
  const status = (error as { status?: number; statusCode?: number }).status;
  // express.json() reports malformed or oversized bodies with a 4xx status and a `type`.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const type = (error as { type?: string }).type;
    const code = type === 'entity.too.large' ? 'payload_too_large' : 'invalid_json';
    const { limit } = error as { limit?: number };
    const message =
      type === 'entity.too.large'
        ? `body: request body too large (the limit is ${limit ?? 'a fixed number of'} bytes)`
        : 'body: malformed JSON';
    return { status, body: { code, message }, headers: {} };
  }
  logger.child('server').error('unexpected error', { error });
  return { status: 500, body: { code: 'internal', message: 'internal server error' }, headers: {} };
}

/** The app's last middleware: every error becomes `{"error": {code, message}}`. */
export function errorMiddleware(logger: Logger = defaultLogger): ErrorRequestHandler {
  return function errorMiddleware(error, _req, res, _next) {
    const { status, body, headers } = toErrorBody(error, logger);
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(status).set(headers).json({ error: body });
  };
}

/** Connection-level failures of PostgreSQL (down, restarting, unreachable), not bad queries. */
export function isStorageError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== 'string') {
    return /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|Query read timeout/i.test(
      (error as Error)?.message ?? '',
    );
  }
  // Node socket errors, SQLSTATE classes 08 (connection exception) and 57P (operator intervention),
  // and 57014 (query_canceled: a statement_timeout, the database too slow to answer).
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57014'].includes(code) || /^(08|57P)/.test(code)
  );
}
