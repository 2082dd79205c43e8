import { describe, expect, it } from 'vitest';
import { ConstraintError } from '../../../src/checkers/errors.ts';
import { HttpError } from '../../../src/server/http-error.ts';
import { toOpenAIError } from '../../../src/server/openai/openai-error.ts';

describe('toOpenAIError', () => {
  it.each([
    [
      new ConstraintError('corgi.constraints[0].kwargs.keywords', 'expected an array'),
      400,
      {
        type: 'invalid_request_error',
        param: 'corgi.constraints[0].kwargs.keywords',
        code: 'invalid_constraint',
      },
    ],
    [
      new HttpError(400, 'invalid_request', 'top_p: too small'),
      400,
      { param: 'top_p', code: 'invalid_request' },
    ],
    [
      new HttpError(401, 'unauthorized', 'authorization: unknown or revoked API key'),
      401,
      { type: 'authentication_error', param: null },
    ],
    [
      new HttpError(403, 'forbidden', 'authorization: admin only'),
      403,
      { type: 'permission_error', param: null },
    ],
    [
      new HttpError(404, 'model_not_found', 'model: no model x'),
      404,
      { type: 'not_found_error', param: 'model' },
    ],
    [
      new HttpError(429, 'rate_limited', 'rate limit: at most 1'),
      429,
      { type: 'rate_limit_error', param: null },
    ],
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      503,
      { type: 'server_error', param: null, code: 'storage_unavailable' },
    ],
  ])('maps %s to status %i and OpenAI fields', (error, status, fields) => {
    const mapped = toOpenAIError(error);
    expect(mapped.status).toBe(status);
    expect(mapped.body.error).toMatchObject(fields);
    // Our messages go through unchanged; an outage is never described by its internals.
    expect(mapped.body.error.message).toBe(
      status === 503 ? 'the session store is unavailable; try again shortly' : (error as Error).message,
    );
  });

  it('keeps the headers the error carries (Retry-After)', () => {
    const error = new HttpError(429, 'rate_limited', 'rate limit: at most 1', {
      headers: { 'Retry-After': '7' },
    });
    expect(toOpenAIError(error).headers).toEqual({ 'Retry-After': '7' });
  });
});
