/**
 * The dashboard's series (`GET /v1/stats`), each computed in one SQL query: live sessions started
 * per minute, success@k by the policy version that generated a session's first attempt, and the
 * trainer's logged reward and KL per step (the latest `MAX_TRAINING_STEPS`, oldest first).
 */
import type pg from 'pg';

/** The most training steps one response carries (the newest ones). */
export const MAX_TRAINING_STEPS = 2_000;

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
