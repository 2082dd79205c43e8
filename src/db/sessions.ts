/**
 * Sessions, turns and ratings in PostgreSQL. The session runner's stream is written through these
 * queries by `logSession` (src/session/recorder.ts).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { ConstraintSpec, ParsedConstraint } from '../checkers/types.ts';
import type { SamplingOptions } from '../policy/types.ts';

export type SessionSource = 'live' | 'simulated' | 'eval';
/** `interrupted`: the server process running it died before it ended (see `sweepOrphanedSessions`). */
export type SessionStatus = 'running' | 'completed' | 'cancelled' | 'failed' | 'interrupted';

export interface NewSession {
  id?: string;
  apiKeyId?: string | null;
  source?: SessionSource;
  prompt?: string;
  constraints: readonly (ConstraintSpec | ParsedConstraint)[];
  maxAttempts: number;
  sampling?: SamplingOptions;
  /** The server process running it (src/server/presence.ts), so a dead one's sessions can be swept. */
  serverId?: string | null;
}

/** The stored form of constraints: id and kwargs only. */
const storedConstraints = (constraints: NewSession['constraints']) =>
  constraints.map(({ id, kwargs }) => ({ id, kwargs: kwargs ?? {} }));

export async function createSession(pool: pg.Pool, session: NewSession): Promise<string> {
  const id = session.id ?? randomUUID();
  await pool.query(
    `INSERT INTO sessions (id, api_key_id, source, prompt, constraints, max_attempts, sampling, server_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      id,
      session.apiKeyId ?? null,
      session.source ?? 'live',
      session.prompt === undefined ? null : storableText(session.prompt),
      storableJson(storedConstraints(session.constraints)),
      session.maxAttempts,
      storableJson(session.sampling ?? {}),
      session.serverId ?? null,
    ],
  );
  return id;
}

export interface TurnRow {
  idx: number;
  role: 'user' | 'assistant';
  kind: 'instruction' | 'feedback' | 'attempt';
  attempt: number;
  text: string;
  tokenIds?: number[] | null;
  logprobs?: number[] | null;
  policyVersion?: string | null;
  check?: unknown;
  finishReason?: string | null;
  firstTokenMs?: number | null;
  generateMs?: number | null;
  checkMs?: number | null;
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000, which a sampling model can emit (byte tokens):
 * stored as U+FFFD, so the turn is kept rather than the session failing.
 */
export function storableText(text: string): string {
  return text.replaceAll('\u0000', '\uFFFD');
}

function storableJson(value: unknown): string {
  return JSON.stringify(value).replaceAll('\\u0000', '\\ufffd');
}

export async function insertTurn(pool: pg.Pool, sessionId: string, turn: TurnRow): Promise<void> {
  await pool.query(
    `INSERT INTO turns (session_id, idx, role, kind, attempt, text, token_ids, logprobs, policy_version,
                        check_result, finish_reason, first_token_ms, generate_ms, check_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
    [
      sessionId,
      turn.idx,
      turn.role,
      turn.kind,
      turn.attempt,
      storableText(turn.text),
      turn.tokenIds ?? null,
      turn.logprobs ?? null,
      turn.policyVersion ?? null,
      turn.check === undefined ? null : storableJson(turn.check),
      turn.finishReason ?? null,
      turn.firstTokenMs ?? null,
      turn.generateMs ?? null,
      turn.checkMs ?? null,
    ],
  );
  await pool.query('UPDATE sessions SET attempts = GREATEST(attempts, $2) WHERE id = $1', [
    sessionId,
    turn.attempt,
  ]);
}

export interface SessionEnd {
  status: SessionStatus;
  ok?: boolean | null;
  bestScore?: number | null;
  attempts?: number;
  error?: { code: string; message: string } | null;
}

export async function endSession(pool: pg.Pool, sessionId: string, end: SessionEnd): Promise<void> {
  await pool.query(
    `UPDATE sessions SET status = $2, ok = $3, best_score = $4, attempts = COALESCE($5, attempts),
                         error = $6, ended_at = now()
     WHERE id = $1`,
    [
      sessionId,
      end.status,
      end.ok ?? null,
      end.bestScore ?? null,
      end.attempts ?? null,
      end.error ? JSON.stringify(end.error) : null,
    ],
  );
}

/** The `application_name` of a server's presence connection: `corgi-serve <server id>`. */
export const PRESENCE_APPLICATION_PREFIX = 'corgi-serve ';

/** The error an interrupted session is left with. */
export const SERVER_GONE = {
  code: 'server_gone',
  message: 'the server process running this session stopped (killed or crashed) before the session ended',
} as const;

/**
 * Ends, as `interrupted` (error `server_gone`), the sessions left `running` by server processes that
 * are gone; returns their ids. A server runs it at start-up (startServer).
 *
 * Which servers are gone: on PostgreSQL, those without a presence connection (application_name
 * `corgi-serve <id>`, held open by every running server, src/server/presence.ts) in
 * `pg_stat_activity`. A killed process's connections close with it (the kernel closes its sockets),
 * so the answer needs no heartbeat or timeout, and sessions held by other live servers sharing the
 * database are left alone. Sessions with no recorded server are never swept there. The embedded
 * database belongs to one process (its lock file), so every running session not of `serverId` is a
 * dead process's.
 */
export async function sweepOrphanedSessions(
  pool: pg.Pool,
  { serverId, embedded }: { serverId: string; embedded: boolean },
): Promise<string[]> {
  const end = `status = 'interrupted', ended_at = now(), error = $2::jsonb`;
  const error = JSON.stringify(SERVER_GONE);
  const { rows } = embedded
    ? await pool.query<{ id: string }>(
        `UPDATE sessions SET ${end} WHERE status = 'running' AND server_id IS DISTINCT FROM $1 RETURNING id`,
        [serverId, error],
      )
    : await pool.query<{ id: string }>(
        `UPDATE sessions SET ${end}
         WHERE status = 'running' AND server_id IS NOT NULL AND server_id <> $1
           AND server_id NOT IN (
             SELECT substr(application_name, length($3) + 1) FROM pg_stat_activity
             WHERE starts_with(application_name, $3))
         RETURNING id`,
        [serverId, error, PRESENCE_APPLICATION_PREFIX],
      );
  return rows.map((row) => row.id);
}

export interface StoredTurn extends Required<Omit<TurnRow, 'check'>> {
  check: unknown;
  createdAt: string;
}

export interface StoredSession {
  id: string;
  source: SessionSource;
  prompt: string | null;
  constraints: ConstraintSpec[];
  maxAttempts: number;
  sampling: SamplingOptions;
  status: SessionStatus;
  ok: boolean | null;
  bestScore: number | null;
  attempts: number;
  error: { code: string; message: string } | null;
  createdAt: string;
  endedAt: string | null;
  turns: StoredTurn[];
}

/**
 * A session with every turn, or null when it does not exist or (with `apiKeyId`) belongs to
 * another key.
 */
export async function getSession(
  pool: pg.Pool,
  sessionId: string,
  owner?: { apiKeyId: string | null },
): Promise<StoredSession | null> {
  const { rows } = await pool.query(
    `SELECT * FROM sessions WHERE id = $1 AND ($2::boolean IS NOT TRUE OR api_key_id IS NOT DISTINCT FROM $3)`,
    [sessionId, owner !== undefined, owner?.apiKeyId ?? null],
  );
  if (rows.length === 0) return null;
  const row = rows[0];
  const turns = await pool.query('SELECT * FROM turns WHERE session_id = $1 ORDER BY idx', [sessionId]);
  return {
    id: row.id,
    source: row.source,
    prompt: row.prompt,
    constraints: row.constraints,
    maxAttempts: row.max_attempts,
    sampling: row.sampling,
    status: row.status,
    ok: row.ok,
    bestScore: row.best_score,
    attempts: row.attempts,
    error: row.error,
    createdAt: new Date(row.created_at).toISOString(),
    endedAt: row.ended_at ? new Date(row.ended_at).toISOString() : null,
    turns: turns.rows.map((t) => ({
      idx: t.idx,
      role: t.role,
      kind: t.kind,
      attempt: t.attempt,
      text: t.text,
      tokenIds: t.token_ids,
      logprobs: t.logprobs,
      policyVersion: t.policy_version,
      check: t.check_result,
      finishReason: t.finish_reason,
      firstTokenMs: t.first_token_ms,
      generateMs: t.generate_ms,
      checkMs: t.check_ms,
      createdAt: new Date(t.created_at).toISOString(),
    })),
  };
}

export async function addRating(
  pool: pg.Pool,
  sessionId: string,
  rating: { rating: number; comment?: string; apiKeyId?: string | null },
): Promise<void> {
  await pool.query('INSERT INTO ratings (session_id, api_key_id, rating, comment) VALUES ($1, $2, $3, $4)', [
    sessionId,
    rating.apiKeyId ?? null,
    rating.rating,
    rating.comment ?? null,
  ]);
}

export interface SessionSummary {
  id: string;
  source: SessionSource;
  prompt: string | null;
  constraintIds: string[];
  status: SessionStatus;
  ok: boolean | null;
  bestScore: number | null;
  attempts: number;
  createdAt: string;
}

/** The owner's most recent sessions, newest first; `before` pages back through older ones. */
export async function listSessions(
  pool: pg.Pool,
  owner: { apiKeyId: string | null },
  page: { limit: number; before?: string },
): Promise<SessionSummary[]> {
  const { rows } = await pool.query(
    `SELECT id, source, prompt, constraints, status, ok, best_score, attempts, created_at
     FROM sessions
     WHERE api_key_id IS NOT DISTINCT FROM $1 AND source = 'live' AND ($2::timestamptz IS NULL OR created_at < $2)
     ORDER BY created_at DESC
     LIMIT $3`,
    [owner.apiKeyId, page.before ?? null, page.limit],
  );
  return rows.map((row) => ({
    id: row.id,
    source: row.source,
    prompt: row.prompt,
    constraintIds: (row.constraints as ConstraintSpec[]).map((c) => c.id),
    status: row.status,
    ok: row.ok,
    bestScore: row.best_score,
    attempts: row.attempts,
    createdAt: new Date(row.created_at).toISOString(),
  }));
}

/**
 * Live sessions logged since the newest policy version was registered (all of them before the
 * first), when that was, and the database's clock (the background trainer's trigger).
 */
export async function liveSessionsSinceLastVersion(
  pool: pg.Pool,
): Promise<{ since: Date | null; sessions: string; now: Date }> {
  const { rows } = await pool.query<{ since: Date | null; sessions: string; now: Date }>(
    `WITH last AS (SELECT max(created_at) AS since FROM policy_versions)
     SELECT last.since, now() AS now,
            (SELECT count(*) FROM sessions s
              WHERE s.source = 'live' AND (last.since IS NULL OR s.created_at > last.since)) AS sessions
       FROM last`,
  );
  return rows[0]!;
}
