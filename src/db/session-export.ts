/**
 * The trajectory export's reads (src/export/export-sessions.ts): completed sessions matching the
 * filters in keyset-paginated batches ordered by (created_at, id) — no server cursor, no OFFSET —
 * and one batch's turns in one query. The cursor keeps created_at as PostgreSQL's own text
 * (microseconds; a JS Date would round them and skip or repeat rows that share a millisecond).
 */
import type pg from 'pg';
import type { ConstraintSpec } from '../checkers/types.ts';
import type { SessionSource } from './sessions.ts';

/** A session as the export reads it. */
export interface ExportSessionRow {
  id: string;
  source: SessionSource;
  prompt: string | null;
  constraints: ConstraintSpec[];
  max_attempts: number;
  sampling: Record<string, unknown>;
  ok: boolean | null;
  best_score: number | null;
  created_at: Date;
  cursor_at: string;
}

/** A turn as the export reads it (token ids and log-probs only when asked for). */
export interface ExportTurnRow {
  session_id: string;
  idx: number;
  role: 'user' | 'assistant';
  kind: 'instruction' | 'feedback' | 'attempt';
  attempt: number;
  text: string;
  policy_version: string | null;
  check_result: { ok?: boolean; score?: number; feedback?: string | null } | null;
  finish_reason: string | null;
  token_ids?: number[] | null;
  logprobs?: number[] | null;
}

/** Where the previous batch ended. */
export interface ExportCursor {
  at: string;
  id: string;
}

/** Which sessions to read, and how many at once. */
export interface ExportFilter {
  since?: Date;
  minScore?: number;
  policyVersion?: string;
  sources?: readonly SessionSource[];
  batchSize: number;
}

/** The next batch of completed sessions matching `filter`, after `cursor`, oldest first. */
export async function readExportSessions(
  pool: pg.Pool,
  filter: ExportFilter,
  cursor: ExportCursor | null,
): Promise<ExportSessionRow[]> {
  const params: unknown[] = [
    filter.since ?? null,
    filter.minScore ?? null,
    filter.policyVersion ?? null,
    filter.sources ?? null,
    filter.batchSize,
  ];
  let after = '';
  if (cursor) {
    params.push(cursor.at, cursor.id);
    // The first comparison is implied by the second; it is there so the created_at index applies.
    after = 'AND s.created_at >= $6::timestamptz AND (s.created_at, s.id) > ($6::timestamptz, $7::uuid)';
  }
  const { rows } = await pool.query<ExportSessionRow>(
    `SELECT s.id, s.source, s.prompt, s.constraints, s.max_attempts, s.sampling, s.ok, s.best_score,
            s.created_at, s.created_at::text AS cursor_at
     FROM sessions s
     WHERE s.status = 'completed'
       AND ($1::timestamptz IS NULL OR s.created_at >= $1::timestamptz)
       AND ($2::double precision IS NULL OR s.best_score >= $2::double precision)
       AND ($3::text IS NULL OR EXISTS (
             SELECT 1 FROM turns t
             WHERE t.session_id = s.id AND t.role = 'assistant' AND t.policy_version = $3::text))
       AND ($4::text[] IS NULL OR s.source = ANY($4::text[]))
       ${after}
     ORDER BY s.created_at, s.id
     LIMIT $5`,
    params,
  );
  return rows;
}

/** Every turn of `sessionIds`, by session then position; token ids and log-probs `withTokens`. */
export async function readExportTurns(
  pool: pg.Pool,
  sessionIds: readonly string[],
  { withTokens }: { withTokens: boolean },
): Promise<ExportTurnRow[]> {
  const { rows } = await pool.query<ExportTurnRow>(
    `SELECT session_id, idx, role, kind, attempt, text, policy_version, check_result, finish_reason
            ${withTokens ? ', token_ids, logprobs' : ''}
     FROM turns WHERE session_id = ANY($1::uuid[])
     ORDER BY session_id, idx`,
    [sessionIds],
  );
  return rows;
}
