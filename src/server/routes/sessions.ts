/**
 * `POST /v1/sessions` (a JSON result, or Server-Sent Events with `Accept: text/event-stream`),
 * `GET /v1/sessions/:id` (every turn) and `POST /v1/sessions/:id/rating`.
 */
import { Router } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import { addRating, getSession, listSessions } from '../../db/sessions.ts';
import { toClientEvent } from '../events.ts';
import { HttpError, toErrorBody } from '../http-error.ts';
import { parseOrThrow, parseSessionStart, RatingSchema } from '../schemas.ts';
import type { Owner, SessionService } from '../session-service.ts';

const SessionIdSchema = z.uuid('must be a session id (UUID)');
const ListQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.iso.datetime({ offset: true }).optional(),
});

export function sessionRoutes(deps: {
  pool: pg.Pool;
  sessions: SessionService;
  ownerOf: (req: unknown) => Owner;
}) {
  const router = Router();

  router.post('/v1/sessions', async (req, res) => {
    const request = parseSessionStart(req.body);
    const owner = deps.ownerOf(req);
    // The client going away cancels the session (the partial turn is kept as cancelled).
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const { sessionId, parts } = await deps.sessions.start(request, owner, gone.signal);

    if (req.accepts(['application/json', 'text/event-stream']) === 'text/event-stream') {
      res.status(200).set({
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.flushHeaders();
      const send = (event: string, data: unknown) =>
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      send('session:start', { sessionId });
      try {
        for await (const part of parts) {
          const message = toClientEvent(sessionId, part);
          if (message) send(message.event, message.data);
        }
      } catch (error) {
        send('session:error', { sessionId, ...toErrorBody(error, deps.sessions.logger).body });
      }
      res.end();
      return;
    }

    const attempts: {
      attempt: number;
      policyVersion: string;
      text: string;
      check: unknown;
      feedback?: string;
    }[] = [];
    let end: { ok: boolean; bestScore: number; attempts: number } | undefined;
    for await (const part of parts) {
      if (part.type === 'attempt:end') {
        attempts.push({
          attempt: part.attempt,
          policyVersion: part.policyVersion,
          text: part.text,
          check: part.check,
        });
      } else if (part.type === 'user-turn' && part.kind === 'feedback') {
        attempts[attempts.length - 1].feedback = part.text;
      } else if (part.type === 'session:end') {
        end = part;
      } else if (part.type === 'error') {
        throw new HttpError(500, part.code, part.message);
      }
    }
    res.json({
      sessionId,
      ok: end?.ok ?? false,
      bestScore: end?.bestScore ?? 0,
      attempts: attempts.length,
      turns: attempts,
    });
  });

  router.get('/v1/sessions', async (req, res) => {
    const page = parseOrThrow(ListQuerySchema, req.query, 'query');
    res.json({ sessions: await listSessions(deps.pool, deps.ownerOf(req), page) });
  });

  router.get('/v1/sessions/:id', async (req, res) => {
    const sessionId = parseOrThrow(SessionIdSchema, req.params.id, 'id');
    const session = await getSession(deps.pool, sessionId, deps.ownerOf(req));
    if (!session) throw new HttpError(404, 'not_found', `id: no session ${sessionId}`);
    res.json(session);
  });

  router.post('/v1/sessions/:id/rating', async (req, res) => {
    const sessionId = parseOrThrow(SessionIdSchema, req.params.id, 'id');
    const rating = parseOrThrow(RatingSchema, req.body);
    const owner = deps.ownerOf(req);
    if (!(await getSession(deps.pool, sessionId, owner)))
      throw new HttpError(404, 'not_found', `id: no session ${sessionId}`);
    await addRating(deps.pool, sessionId, { ...rating, apiKeyId: owner.apiKeyId });
    res.status(201).json({ sessionId, rating: rating.rating });
  });

  return router;
}
