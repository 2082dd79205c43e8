/**
 * Trajectory export against a real PostgreSQL: sessions written by the session runner and
 * `logSession` (as the server writes them) come back as training records in each format; filters
 * select; keyset pagination returns every session once, in order, one bounded batch at a time.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConstraints } from '../../src/checkers/registry.ts';
import { exportOptionsFromFlags, registerExportCommand } from '../../src/cli/export-command.ts';
import type { Database } from '../../src/db/database.ts';
import { createSession } from '../../src/db/sessions.ts';
import { type ExportRecord, exportSessions } from '../../src/export/export-sessions.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { logSession } from '../../src/session/recorder.ts';
import { runSession } from '../../src/session/session-runner.ts';
import { openTestDatabase } from '../support/database.ts';
import { runCorgi } from '../support/run-corgi.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const CONSTRAINTS = [{ id: 'keywords:existence', kwargs: { keywords: ['dog', 'park'] } }];
const INSTRUCTION = "Write one sentence.\n\nInclude keywords ['dog', 'park'] in the response.";
const FEEDBACK =
  'Feedback: Your response is missing the keywords "dog", "park"; include each of them. Please try again.';

let db: Database;
let root: string;
/** Session ids by what they are. */
const ids: Record<string, string> = {};

/** Runs and logs one session as the server does; returns its id. */
async function logged(
  answers: string[],
  version: string,
  source: 'live' | 'simulated' = 'live',
  maxAttempts = 4,
) {
  const constraints = parseConstraints(CONSTRAINTS);
  const id = await createSession(db.pool, {
    source,
    prompt: 'Write one sentence.',
    constraints,
    maxAttempts,
  });
  const parts = runSession(
    { prompt: 'Write one sentence.', constraints, maxAttempts },
    { policy: fixedPolicy(new ScriptedPolicy(answers, version)) },
  );
  for await (const _ of logSession(db.pool, id, parts));
  return id;
}

async function collect(options: Parameters<typeof exportSessions>[1]): Promise<ExportRecord[]> {
  const records: ExportRecord[] = [];
  for await (const record of exportSessions(db.pool, options)) records.push(record);
  return records;
}

beforeAll(async () => {
  db = await openTestDatabase();
  root = mkdtempSync(join(tmpdir(), 'corgi-export-test-'));
  ids.retried = await logged(['The cat sat.', 'The dog ran in the park.'], 'v1');
  ids.failed = await logged(['The cat sat.', 'A dog.'], 'v1', 'simulated', 2);
  ids.firstTry = await logged(['The dog ran in the park.'], 'v2');
  // Not exported: still running (no end), and one without any attempt.
  ids.running = await createSession(db.pool, { constraints: CONSTRAINTS, maxAttempts: 4 });
  ids.empty = await createSession(db.pool, { constraints: CONSTRAINTS, maxAttempts: 4 });
  await db.pool.query(`UPDATE sessions SET status = 'completed' WHERE id = $1`, [ids.empty]);
  // Spread creation times so --since has something to cut.
  await db.pool.query(`UPDATE sessions SET created_at = '2025-01-01T00:00:00Z' WHERE id = $1`, [ids.retried]);
  await db.pool.query(`UPDATE sessions SET created_at = '2025-02-01T00:00:00Z' WHERE id = $1`, [ids.failed]);
  await db.pool.query(`UPDATE sessions SET created_at = '2025-03-01T00:00:00Z' WHERE id = $1`, [
    ids.firstTry,
  ]);
});
afterAll(async () => {
  await db.close();
  rmSync(root, { recursive: true, force: true });
});

describe('corgi export', () => {
  it('writes TRL conversational records: messages, per-turn masks, reward and constraints', async () => {
    const records = await collect({ format: 'trl' });
    expect(records.map((r) => r.session_id)).toEqual([ids.retried, ids.failed, ids.firstTry]);
    expect(records[0]).toEqual({
      messages: [
        { role: 'user', content: INSTRUCTION },
        { role: 'assistant', content: 'The cat sat.' },
        { role: 'user', content: FEEDBACK },
        { role: 'assistant', content: 'The dog ran in the park.' },
      ],
      trainable: [false, true, false, true],
      reward: 1,
      scores: [0, 1],
      ok: true,
      constraints: JSON.stringify(CONSTRAINTS),
      session_id: ids.retried,
      policy_versions: ['v1'],
    });
    expect(records[1]).toMatchObject({
      reward: 0.5,
      scores: [0, 0.5],
      ok: false,
      trainable: [false, true, false, true],
    });
  });

  it('writes OpenRLHF records: loss masks per message, the prompt and a label to re-check', async () => {
    const [record] = await collect({ format: 'openrlhf', policyVersion: 'v2' });
    expect(record).toEqual({
      messages: [
        { role: 'user', content: INSTRUCTION, loss_mask: 0 },
        { role: 'assistant', content: 'The dog ran in the park.', loss_mask: 1 },
      ],
      prompt: INSTRUCTION,
      label: JSON.stringify(CONSTRAINTS),
      datasource: 'keywords:existence',
      reward: 1,
      scores: [1],
      ok: true,
      session_id: ids.firstTry,
      policy_versions: ['v2'],
    });
  });

  it('writes full JSONL records with each attempt’s tokens, log-probs, version and verdict', async () => {
    const [record] = await collect({ format: 'jsonl', minScore: 1, sources: ['live'], batchSize: 1 });
    expect(record).toMatchObject({
      session_id: ids.retried,
      source: 'live',
      created_at: '2025-01-01T00:00:00.000Z',
      prompt: 'Write one sentence.',
      constraints: CONSTRAINTS,
      max_attempts: 4,
      reward: 1,
      scores: [0, 1],
      ok: true,
      attempts: 2,
      policy_versions: ['v1'],
    });
    const messages = record.messages as Record<string, unknown>[];
    expect(messages[0]).toEqual({
      role: 'user',
      content: INSTRUCTION,
      trainable: false,
      kind: 'instruction',
      attempt: 1,
    });
    expect(messages[1]).toEqual({
      role: 'assistant',
      content: 'The cat sat.',
      trainable: true,
      kind: 'attempt',
      attempt: 1,
      policy_version: 'v1',
      score: 0,
      ok: false,
      feedback: 'Your response is missing the keywords "dog", "park"; include each of them.',
      finish_reason: 'stop',
      token_ids: [0, 1, 2],
      logprobs: [-0.5, -0.5, -0.5],
    });
    expect(messages[2]).toMatchObject({ role: 'user', kind: 'feedback', attempt: 2, content: FEEDBACK });
  });

  it('filters by time, policy version, score and source', async () => {
    const sessionIds = async (options: object) =>
      (await collect({ format: 'trl', ...options })).map((r) => r.session_id);
    expect(await sessionIds({ since: '2025-01-15' })).toEqual([ids.failed, ids.firstTry]);
    expect(await sessionIds({ since: new Date('2025-03-01T00:00:00Z') })).toEqual([ids.firstTry]);
    expect(await sessionIds({ policyVersion: 'v1' })).toEqual([ids.retried, ids.failed]);
    expect(await sessionIds({ minScore: 0.9 })).toEqual([ids.retried, ids.firstTry]);
    expect(await sessionIds({ sources: ['simulated'] })).toEqual([ids.failed]);
    expect(await sessionIds({ policyVersion: 'v9' })).toEqual([]);
  });

  it('refuses bad options, naming the field or flag', async () => {
    await expect(collect({ format: 'csv' as never })).rejects.toThrow(/^format: /);
    await expect(collect({ format: 'trl', minScore: 2 })).rejects.toThrow(/^minScore: Too big/);
    await expect(collect({ format: 'trl', since: 'yesterday' })).rejects.toThrow(
      /^since: expected an ISO date/,
    );
    expect(() => exportOptionsFromFlags({ format: 'trl', minScore: 'high' })).toThrow(/^--min-score: /);
    expect(() => exportOptionsFromFlags({ format: 'trl', source: 'live,web' })).toThrow(/^--source: /);
    const cli = await runCorgi(['export', '--format', 'xml']);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/--format: Invalid option: expected one of "trl"\|"openrlhf"\|"jsonl"/);
  });

  it('pages through many sessions in bounded batches, each exactly once, microsecond ties included', async () => {
    // 1,203 sessions in one millisecond (microseconds apart, many equal): a Date cursor would
    // round them together and skip or repeat; OFFSET would rescan. Each gets an instruction and an attempt.
    await db.pool.query(`
      WITH made AS (
        INSERT INTO sessions (id, source, prompt, constraints, max_attempts, status, ok, best_score, attempts, created_at)
        SELECT gen_random_uuid(), 'simulated', 'bulk ' || i, '[{"id": "punctuation:no_comma", "kwargs": {}}]', 1,
               'completed', true, 1, 1, timestamptz '2030-01-01 00:00:00.123000+00' + (i % 7) * interval '1 microsecond'
        FROM generate_series(1, 1203) AS i
        RETURNING id, prompt)
      INSERT INTO turns (session_id, idx, role, kind, attempt, text, policy_version, check_result)
      SELECT id, n, CASE n WHEN 0 THEN 'user' ELSE 'assistant' END, CASE n WHEN 0 THEN 'instruction' ELSE 'attempt' END,
             1, prompt || ' #' || n, CASE n WHEN 0 THEN NULL ELSE 'bulk-v1' END,
             CASE n WHEN 0 THEN NULL ELSE '{"ok": true, "score": 1, "feedback": null}'::jsonb END
      FROM made, generate_series(0, 1) AS n`);
    const { rows } = await db.pool.query(
      `SELECT id FROM sessions WHERE created_at >= '2030-01-01' ORDER BY created_at, id`,
    );
    const batches: number[] = [];
    const seen: string[] = [];
    for await (const record of exportSessions(
      db.pool,
      { format: 'trl', since: '2030-01-01', batchSize: 100 },
      { onBatch: (n) => batches.push(n) },
    )) {
      seen.push(record.session_id as string);
      expect(record.trainable).toEqual([false, true]);
    }
    expect(seen).toHaveLength(1203);
    expect(seen).toEqual(rows.map((r) => r.id));
    expect(batches).toEqual([...Array(12).fill(100), 3]);
    await db.pool.query(`DELETE FROM sessions WHERE created_at >= '2030-01-01'`);
  });

  it('writes an export file atomically through the command', async () => {
    const program = new Command().exitOverride();
    registerExportCommand(program, { openDatabase: async () => ({ pool: db.pool, close: async () => {} }) });
    const out = join(root, 'sessions.trl.jsonl');
    await program.parseAsync(['export', '--format', 'trl', '--out', out], { from: 'user' });
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((r) => r.session_id)).toEqual([ids.retried, ids.failed, ids.firstTry]);
    expect(() => readFileSync(`${out}.partial`)).toThrow(/ENOENT/);
  });
});
