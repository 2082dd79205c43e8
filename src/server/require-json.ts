/**
 * Refuses a request body that is not declared as JSON. Without this, express.json() skips such a
 * body and the route sees none, so the client would read "body: required" about a body it did send.
 */
import type { RequestHandler } from 'express';
import { HttpError } from './http-error.ts';

/** 415 `unsupported_media_type` naming the header, for any body not sent as `application/json`. */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  // `req.is` is null without a body, false for one of another type; an empty one is no body either.
  if (req.is('application/json') === false && req.get('content-length') !== '0') {
    const sent = req.get('content-type');
    throw new HttpError(
      415,
      'unsupported_media_type',
      `content-type: Content-Type must be application/json, got ${sent ? `"${sent}"` : 'none'}`,
    );
  }
  next();
};
