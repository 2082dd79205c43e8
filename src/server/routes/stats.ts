/**
 * `GET /v1/stats`: the numbers behind the `/dashboard` page, each computed in one SQL query.
 *
 * - `sessionsPerMinute`: live sessions started in each of the last `minutes` minutes (default 60),
 *   oldest first, every minute present (zero when none started).
 * - `successAtK`: per policy version, over completed live sessions, the fraction whose first k
 *   attempts include an ok one, for k = 1 .. the largest `max_attempts` among that version's
 *   sessions (a session that stopped early counts as not satisfied at the later ks, as in
 *   `corgi eval`'s `success_at`). A session belongs to the version that generated its first
 *   attempt: a hot swap mid-session does not split it.
 * - `trainingSteps`: the trainer's logged `reward` and `kl` per step (null when a step did not
 *   log that metric as a number), the latest `MAX_TRAINING_STEPS`, oldest first.
 *
 * Scope: the session series count only the caller's own sessions (its API key's, or the anonymous
 * ones for an anonymous caller), unless the caller is an admin (an admin key, or anonymous on
 * loopback), who sees every tenant's. Training steps describe the shared policy, not a tenant's
 * traffic, and are the same for everyone.
 */
import { Router } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import { readStats, type StatsScope } from '../../db/stats.ts';
import { principalOf } from '../auth.ts';
import { parseOrThrow } from '../schemas.ts';

const StatsQuerySchema = z.strictObject({
  minutes: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_440)
    .describe('width of the sessions-per-minute window')
    .default(60),
});

/**
 * `GET /v1/stats?minutes=60`: sessions per minute, success@k by policy version, training curves;
 * the session series scoped to the caller unless it is an admin.
 */
export function statsRoutes(deps: { pool: pg.Pool }): Router {
  const router = Router();
  router.get('/v1/stats', async (req, res) => {
    const { minutes } = parseOrThrow(StatsQuerySchema, req.query, 'query');
    const caller = principalOf(req);
    const scope: StatsScope = caller.admin ? 'all' : { apiKeyId: caller.apiKeyId };
    res.set('Cache-Control', 'no-store').json(await readStats(deps.pool, { minutes, scope }));
  });
  return router;
}
