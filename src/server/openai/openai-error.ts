/**
 * Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, for the
 * OpenAI-compatible routes only (OpenAI SDKs read `message` and map the status to an error class;
 * the rest of the API keeps `{"error": {"code", "message"}}`). The status, `code` and `message` are
 * the ones `toErrorBody` gives every other route; `param` is the field the message starts with.
 */
import type { ErrorRequestHandler } from 'express';
import { ConstraintError } from '../../checkers/errors.ts';
import { toErrorBody } from '../http-error.ts';

/** The paths whose errors take OpenAI's shape (sub-paths included). */
export const OPENAI_PATHS = ['/v1/chat/completions', '/v1/models'];

export interface OpenAIErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string;
}

/** OpenAI's `type` for a status (the names llama.cpp's server uses too). */
function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** Our messages start with the offending field (`corgi.constraints[0].kwargs.keywords: …`). */
const LEADING_FIELD = /^([A-Za-z_][\w.[\]-]*): /;

/** Maps any thrown value to a status, an OpenAI-shaped error and headers (via `toErrorBody`). */
export function toOpenAIError(error: unknown): {
  status: number;
  body: { error: OpenAIErrorBody };
  headers: Record<string, string>;
} {
  const { status, body, headers } = toErrorBody(error);
  // Who is calling and how often are not a field of the request.
  const namesField = status >= 400 && status < 500 && ![401, 403, 429].includes(status);
  const param = !namesField
    ? null
    : ConstraintError.isInstance(error)
      ? error.field
      : (LEADING_FIELD.exec(body.message)?.[1] ?? null);
  return {
    status,
    body: { error: { message: body.message, type: errorType(status), param, code: body.code } },
    headers,
  };
}

/** Answers errors of `OPENAI_PATHS` in OpenAI's shape; mount it on those paths before `errorMiddleware`. */
export const openAIErrorMiddleware: ErrorRequestHandler = (error, _req, res, _next) => {
  const { status, body, headers } = toOpenAIError(error);
  if (res.headersSent) {
    res.end();
    return;
  }
  res.status(status).set(headers).json(body);
};
