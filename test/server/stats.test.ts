/**
 * `GET /v1/stats` against rows written straight into an isolated PostgreSQL schema: every
 * number the dashboard draws is checked exactly.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import type { StatsResponse } from '../../src/db/stats.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { openTestDatabase } from '../support/database.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

let db: Database;
let server: RunningServer;
/** The minute (ISO) the rows were written in; every timestamp below is relative to it. */
let baseMinute: Date;

interface FakeSession {
  /** Minutes before `baseMinute` (plus 5 s) the session started. */
  minutesAgo: number;
  source?: 'live' | 'simulated' | 'eval';
  status?: 'running' | 'completed' | 'cancelled' | 'failed';
  maxAttempts: number;
  /** One entry per attempt: [policy version, ok]. */
  attempts: [string, boolean][];
}

async function insertSession(session: FakeSession): Promise<void> {
  const id = randomUUID();
  const createdAt = new Date(baseMinute.getTime() - session.minutesAgo * 60_000 + 5_000);
  await db.pool.query(
    `INSERT INTO sessions (id, source, constraints, max_attempts, status, attempts, created_at)
     VALUES ($1, $2, '[]', $3, $4, $5, $6)`,
    [
      id,
      session.source ?? 'live',
      session.maxAttempts,
      session.status ?? 'completed',
      session.attempts.length,
      createdAt,
    ],
  );
  let idx = 0;
  await db.pool.query(
    `INSERT INTO turns (session_id, idx, role, kind, attempt, text) VALUES ($1, $2, 'user', 'instruction', 1, 'x')`,
    [id, idx++],
  );
  for (const [i, [version, ok]] of session.attempts.entries()) {
    await db.pool.query(
      `INSERT INTO turns (session_id, idx, role, kind, attempt, text, policy_version, check_result)
       VALUES ($1, $2, 'assistant', 'attempt', $3, 'answer', $4, $5)`,
      [id, idx++, i + 1, version, JSON.stringify({ ok, score: ok ? 1 : 0, feedback: null, results: [] })],
    );
    if (!ok && i < session.attempts.length - 1) {
      await db.pool.query(
        `INSERT INTO turns (session_id, idx, role, kind, attempt, text) VALUES ($1, $2, 'user', 'feedback', $3, 'f')`,
        [id, idx++, i + 2],
      );
    }
  }
}

beforeAll(async () => {
  db = await openTestDatabase();
  server = await startServer({ db, policy: fixedPolicy(new ScriptedPolicy(['x'])), port: 0 });
  const { rows } = await db.pool.query(`SELECT date_trunc('minute', now()) AS minute`);
  baseMinute = rows[0].minute;

  const sessions: FakeSession[] = [
    // v1: ok at attempt 1, ok at 3, never ok, ok at 2 (of 2) → success@1..4 = .25 .5 .75 .75
    { minutesAgo: 2, maxAttempts: 4, attempts: [['v1', true]] },
    {
      minutesAgo: 2,
      maxAttempts: 4,
      attempts: [
        ['v1', false],
        ['v1', false],
        ['v1', true],
      ],
    },
    {
      minutesAgo: 10,
      maxAttempts: 4,
      attempts: [
        ['v1', false],
        ['v1', false],
        ['v1', false],
        ['v1', false],
      ],
    },
    // Swapped to v2 after its first attempt: still v1's session.
    {
      minutesAgo: 30,
      maxAttempts: 2,
      attempts: [
        ['v1', false],
        ['v2', true],
      ],
    },
    // v2: ok at 2 (of 3), never ok → success@1..3 = 0 .5 .5
    {
      minutesAgo: 30,
      maxAttempts: 3,
      attempts: [
        ['v2', false],
        ['v2', true],
      ],
    },
    // Two hours ago: outside the window, still in success@k.
    {
      minutesAgo: 120,
      maxAttempts: 3,
      attempts: [
        ['v2', false],
        ['v2', false],
        ['v2', false],
      ],
    },
    // Not counted in success@k: simulated, still running, cancelled. Only the live ones count per minute.
    { minutesAgo: 2, source: 'simulated', maxAttempts: 4, attempts: [['v1', true]] },
    { minutesAgo: 10, status: 'running', maxAttempts: 4, attempts: [['v1', true]] },
    { minutesAgo: 10, status: 'cancelled', maxAttempts: 4, attempts: [['v3', true]] },
  ];
  for (const session of sessions) await insertSession(session);

  const steps: [string, number, string | null, Record<string, unknown>, number][] = [
    ['run-a', 1, 'v1', { reward: 0.25, kl: 0.01, entropy: 2 }, 3],
    ['run-a', 2, 'v1', { reward: 0.5, kl: 0.02 }, 2],
    ['run-a', 3, 'v2', { reward: 0.75 }, 1],
    ['run-b', 1, null, { reward: 'n/a', kl: 0.5 }, 0],
  ];
  for (const [runId, step, version, metrics, minutesAgo] of steps) {
    await db.pool.query(
      `INSERT INTO training_steps (run_id, step, policy_version, metrics, created_at) VALUES ($1, $2, $3, $4, $5)`,
      [runId, step, version, JSON.stringify(metrics), new Date(baseMinute.getTime() - minutesAgo * 60_000)],
    );
  }
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

const getStats = async (query = ''): Promise<{ status: number; body: StatsResponse }> => {
  const response = await fetch(`${server.url}/v1/stats${query}`);
  return { status: response.status, body: await response.json() };
};

const minuteAgo = (minutes: number) => new Date(baseMinute.getTime() - minutes * 60_000).toISOString();

describe('GET /v1/stats', () => {
  it('counts live sessions in each of the last 60 minutes, zeros included', async () => {
    const { status, body } = await getStats();
    expect(status).toBe(200);
    const perMinute = body.sessionsPerMinute;
    expect(perMinute).toHaveLength(60);
    const minutes = perMinute.map((p) => p.minute);
    expect([...minutes].sort()).toEqual(minutes);
    const count = (minutes: number) => perMinute.find((p) => p.minute === minuteAgo(minutes))?.count;
    // A minute boundary passing between insert and query shifts the window by one: look minutes up by key.
    expect([count(2), count(10), count(30), count(3)]).toEqual([2, 3, 2, 0]);
    expect(perMinute.reduce((sum, p) => sum + p.count, 0)).toBe(7);
  });

  it('gives success@k per policy version over completed live sessions, by first-attempt version', async () => {
    const { body } = await getStats();
    expect(body.successAtK).toEqual([
      { policyVersion: 'v2', sessions: 2, successAt: [0, 0.5, 0.5] },
      { policyVersion: 'v1', sessions: 4, successAt: [0.25, 0.5, 0.75, 0.75] },
    ]);
  });

  it('lists reward and kl per training step, null where a step did not log a number', async () => {
    const { body } = await getStats();
    expect(body.trainingSteps.map(({ createdAt, ...step }) => step)).toEqual([
      { runId: 'run-a', step: 1, policyVersion: 'v1', reward: 0.25, kl: 0.01 },
      { runId: 'run-a', step: 2, policyVersion: 'v1', reward: 0.5, kl: 0.02 },
      { runId: 'run-a', step: 3, policyVersion: 'v2', reward: 0.75, kl: null },
      { runId: 'run-b', step: 1, policyVersion: null, reward: null, kl: 0.5 },
    ]);
    expect(body.trainingSteps[0].createdAt).toBe(minuteAgo(3));
  });

  it('takes a window width and names a bad one', async () => {
    const { body } = await getStats('?minutes=5');
    expect(body.sessionsPerMinute).toHaveLength(5);
    expect(body.sessionsPerMinute.at(-1)?.count).toBe(0);
    const bad = await fetch(`${server.url}/v1/stats?minutes=0`);
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/^minutes: /);
  });
});
