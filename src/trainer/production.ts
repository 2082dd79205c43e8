/**
 * What the trainer learns from production traffic (README "Learning from production"):
 *
 * - Prompts: the requests (prompt + constraints) of logged live sessions join the task pool; the
 *   trainer rolls them out on-policy like any task prompt, so the checkers are their reward.
 * - Replays: logged live sessions themselves, with the token ids and behaviour log-probs every
 *   assistant turn was stored with. They were sampled by an older policy, so they are trained
 *   off-policy with truncated importance weights min(c, π/μ) (corgi-objective.ts). Their reward is
 *   the session's best checker score plus `rating_weight` × the writer's rating (ratingBonus).
 */
import type pg from 'pg';
import type { ConstraintSpec } from '../checkers/types.ts';
import type { ChatMessage } from '../policy/types.ts';
import { ratingBonus } from './corgi-objective.ts';
import type { RolloutPrompt } from './rollouts.ts';

/** Logged live sessions' requests, newest first, one per distinct prompt + constraints. */
export async function loadProductionPrompts(pool: pg.Pool, limit = 5000): Promise<RolloutPrompt[]> {
  const { rows } = await pool.query<{ id: string; prompt: string | null; constraints: ConstraintSpec[] }>(
    `SELECT DISTINCT ON (coalesce(prompt, ''), constraints) id, prompt, constraints, created_at
       FROM sessions WHERE source = 'live'
      ORDER BY coalesce(prompt, ''), constraints, created_at DESC
      LIMIT $1`,
    [limit],
  );
  return rows.map((row) => ({
    id: `production/${row.id}`,
    task: 'production',
    constraints: row.constraints,
    ...(row.prompt !== null ? { prompt: row.prompt } : {}),
  }));
}

/** A logged session as replayable attempts. */
export interface LoggedSession {
  id: string;
  bestScore: number;
  rating: number | null;
  /** The session's maxTokens, to fit the prompt as generation did. */
  maxTokens: number;
  attempts: { messages: ChatMessage[]; tokenIds: number[]; logprobs: number[] }[];
  /** Best score plus `weight` × the rating bonus. */
  reward(weight: number): number;
}

/**
 * Completed live sessions with token ids and log-probs on their attempts, oldest first (a stable
 * order, so consecutive steps page through them with `offset`), with their latest rating.
 */
export async function loadLoggedSessions(
  pool: pg.Pool,
  { limit, offset = 0 }: { limit: number; offset?: number },
): Promise<LoggedSession[]> {
  const { rows: sessions } = await pool.query<{
    id: string;
    best_score: number | null;
    sampling: { maxTokens?: number };
    rating: number | null;
  }>(
    `SELECT s.id, s.best_score, s.sampling,
            (SELECT r.rating FROM ratings r WHERE r.session_id = s.id ORDER BY r.created_at DESC LIMIT 1) AS rating
       FROM sessions s
      WHERE s.source = 'live' AND s.status = 'completed'
        AND EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id AND t.role = 'assistant' AND t.token_ids IS NOT NULL)
      ORDER BY s.created_at, s.id
      LIMIT $1 OFFSET $2`,
    [limit, offset],
  );
  if (sessions.length === 0) return [];
  const { rows: turns } = await pool.query<{
    session_id: string;
    role: 'user' | 'assistant';
    text: string;
    token_ids: number[] | null;
    logprobs: number[] | null;
  }>(
    'SELECT session_id, role, text, token_ids, logprobs FROM turns WHERE session_id = ANY($1) ORDER BY session_id, idx',
    [sessions.map((s) => s.id)],
  );
  const turnsOf = new Map<string, typeof turns>();
  for (const turn of turns) {
    const list = turnsOf.get(turn.session_id);
    if (list) list.push(turn);
    else turnsOf.set(turn.session_id, [turn]);
  }
  return sessions.map((s) => {
    const messages: ChatMessage[] = [];
    const attempts: LoggedSession['attempts'] = [];
    for (const turn of turnsOf.get(s.id) ?? []) {
      if (turn.role === 'assistant' && turn.token_ids && turn.logprobs)
        attempts.push({ messages: [...messages], tokenIds: turn.token_ids, logprobs: turn.logprobs });
      messages.push({ role: turn.role, content: turn.text });
    }
    const bestScore = s.best_score ?? 0;
    const rating = s.rating;
    return {
      id: s.id,
      bestScore,
      rating,
      maxTokens: s.sampling?.maxTokens ?? 128,
      attempts,
      reward: (weight: number) => bestScore + weight * ratingBonus(rating),
    };
  });
}
