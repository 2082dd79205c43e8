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
import { principalOf } from '../auth.ts';
import { parseOrThrow } from '../schemas.ts';

/** The most training steps one response carries (the newest ones). */
export const MAX_TRAINING_STEPS = 2_000;

const StatsQuerySchema = z.strictObject({
  minutes: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_440)
    .describe('width of the sessions-per-minute window')
    .default(60),
});

export interface StatsResponse {
  sessionsPerMinute: { minute: string; count: number }[];
  successAtK: { policyVersion: string; sessions: number; successAt: number[] }[];
  trainingSteps: {
    runId: string;
    step: number;
    policyVersion: string | null;
    reward: number | null;
    kl: number | null;
    createdAt: string;
  }[];
}

const SESSIONS_PER_MINUTE_SQL = `
  WITH minutes AS (
    SELECT generate_series(date_trunc('minute', now()) - ($1::int - 1) * interval '1 minute',
                           date_trunc('minute', now()), interval '1 minute') AS minute
  )
  SELECT m.minute, count(s.id)::int AS count
  FROM minutes m
  LEFT JOIN sessions s
    ON s.source = 'live' AND s.created_at >= m.minute AND s.created_at < m.minute + interval '1 minute'
   AND (NOT $2::boolean OR s.api_key_id IS NOT DISTINCT FROM $3::uuid)
  GROUP BY m.minute
  ORDER BY m.minute`;

const SUCCESS_AT_K_SQL = `
  WITH live AS (
    SELECT s.id, s.max_attempts, s.created_at,
           (SELECT t.policy_version FROM turns t
             WHERE t.session_id = s.id AND t.kind = 'attempt' ORDER BY t.idx LIMIT 1) AS policy_version,
           (SELECT min(t.attempt) FROM turns t
             WHERE t.session_id = s.id AND t.kind = 'attempt'
               AND (t.check_result ->> 'ok')::boolean) AS first_ok
    FROM sessions s
    WHERE s.source = 'live' AND s.status = 'completed'
      AND (NOT $1::boolean OR s.api_key_id IS NOT DISTINCT FROM $2::uuid)
  ),
  versions AS (
    SELECT policy_version, count(*)::int AS sessions, max(max_attempts) AS k_max, min(created_at) AS first_seen
    FROM live WHERE policy_version IS NOT NULL
    GROUP BY policy_version
  )
  SELECT v.policy_version, v.sessions,
         array_agg(
           (SELECT count(*) FROM live l WHERE l.policy_version = v.policy_version AND l.first_ok <= k)::float8
             / v.sessions
           ORDER BY k) AS success_at
  FROM versions v CROSS JOIN LATERAL generate_series(1, v.k_max) AS k
  GROUP BY v.policy_version, v.sessions, v.first_seen
  ORDER BY v.first_seen, v.policy_version`;

const TRAINING_STEPS_SQL = `
  SELECT * FROM (
    SELECT id, run_id, step, policy_version, created_at,
           CASE WHEN jsonb_typeof(metrics -> 'reward') = 'number'
                THEN (metrics ->> 'reward')::float8 END AS reward,
           CASE WHEN jsonb_typeof(metrics -> 'kl') = 'number' THEN (metrics ->> 'kl')::float8 END AS kl
    FROM training_steps
    ORDER BY created_at DESC, id DESC
    LIMIT $1
  ) latest
  ORDER BY created_at, id`;

/** Whose sessions the series count: one API key's (null: the anonymous ones), or every tenant's. */
export type StatsScope = { apiKeyId: string | null } | 'all';

/** Reads every dashboard series; exported for the CLI and tests. @default scope 'all' */
export async function readStats(
  pool: pg.Pool,
  { minutes = 60, scope = 'all' }: { minutes?: number; scope?: StatsScope } = {},
): Promise<StatsResponse> {
  const scoped = scope !== 'all';
  const apiKeyId = scope === 'all' ? null : scope.apiKeyId;
  const [perMinute, success, steps] = await Promise.all([
    pool.query(SESSIONS_PER_MINUTE_SQL, [minutes, scoped, apiKeyId]),
    pool.query(SUCCESS_AT_K_SQL, [scoped, apiKeyId]),
    pool.query(TRAINING_STEPS_SQL, [MAX_TRAINING_STEPS]),
  ]);
  return {
    sessionsPerMinute: perMinute.rows.map((row) => ({
      minute: new Date(row.minute).toISOString(),
      count: row.count,
    })),
    successAtK: success.rows.map((row) => ({
      policyVersion: row.policy_version,
      sessions: row.sessions,
      successAt: row.success_at,
    })),
    trainingSteps: steps.rows.map((row) => ({
      runId: row.run_id,
      step: row.step,
      policyVersion: row.policy_version,
      reward: row.reward,
      kl: row.kl,
      createdAt: new Date(row.created_at).toISOString(),
    })),
  };
}

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
