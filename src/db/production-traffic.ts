/**
 * What the trainer reads of production traffic (src/training/rl/production.ts): the requests of logged
 * live sessions, and completed live sessions with logged token ids, their latest rating and their
 * turns, for replay.
 */
import type pg from 'pg';
import type { ConstraintSpec } from '../checkers/types.ts';
import type { SamplingOptions } from '../policy/types.ts';

/** Logged live sessions' requests, newest first, one per distinct prompt + constraints. */
export async function readProductionRequests(
  pool: pg.Pool,
  limit: number,
): Promise<{ id: string; prompt: string | null; constraints: ConstraintSpec[] }[]> {
  const { rows } = await pool.query<{ id: string; prompt: string | null; constraints: ConstraintSpec[] }>(
    `SELECT DISTINCT ON (coalesce(prompt, ''), constraints) id, prompt, constraints, created_at
       FROM sessions WHERE source = 'live'
      ORDER BY coalesce(prompt, ''), constraints, created_at DESC
      LIMIT $1`,
    [limit],
  );
  return rows;
}

/** A completed live session to replay, with its latest rating. */
export interface ReplaySessionRow {
  id: string;
  best_score: number | null;
  sampling: SamplingOptions | null;
  rating: number | null;
}

/**
 * Completed live sessions with at least one attempt that logged token ids, newest first, a page
 * of `limit` after `offset`.
 */
export async function readReplaySessions(
  pool: pg.Pool,
  { limit, offset }: { limit: number; offset: number },
): Promise<ReplaySessionRow[]> {
  const { rows } = await pool.query<ReplaySessionRow>(
    `SELECT s.id, s.best_score, s.sampling,
            (SELECT r.rating FROM ratings r WHERE r.session_id = s.id
              ORDER BY r.created_at DESC, r.id DESC LIMIT 1) AS rating
       FROM sessions s
      WHERE s.source = 'live' AND s.status = 'completed'
        AND EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id AND t.role = 'assistant'
                      AND cardinality(t.token_ids) > 0)
      ORDER BY s.created_at DESC, s.id DESC
      LIMIT $1 OFFSET $2`,
    [limit, offset],
  );
  return rows;
}

/** A turn to replay, with the checkpoint of the policy version that generated it (if registered). */
export interface ReplayTurnRow {
  session_id: string;
  role: 'user' | 'assistant';
  attempt: number;
  text: string;
  token_ids: number[] | null;
  logprobs: number[] | null;
  policy_version: string | null;
  finish_reason: string | null;
  checkpoint_path: string | null;
}

/** Every turn of `sessionIds`, by session then position. */
export async function readReplayTurns(
  pool: pg.Pool,
  sessionIds: readonly string[],
): Promise<ReplayTurnRow[]> {
  const { rows } = await pool.query<ReplayTurnRow>(
    `SELECT t.session_id, t.role, t.attempt, t.text, t.token_ids, t.logprobs, t.policy_version,
            t.finish_reason, v.checkpoint_path
       FROM turns t LEFT JOIN policy_versions v ON v.version = t.policy_version
      WHERE t.session_id = ANY($1)
      ORDER BY t.session_id, t.idx`,
    [sessionIds],
  );
  return rows;
}
