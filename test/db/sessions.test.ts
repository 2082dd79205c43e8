import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConstraints } from '../../src/checkers/registry.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { addRating, createSession, getSession } from '../../src/db/sessions.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { logSession } from '../../src/session/recorder.ts';
import { runSession, type SessionPart } from '../../src/session/session-runner.ts';
import { openTestDatabase } from '../support/database.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const constraints = parseConstraints([{ id: 'punctuation:no_comma' }]);

/** Runs a scripted two-attempt session through `logSession` and checks what was stored. */
async function logsEveryTurn(db: Database): Promise<void> {
  const policy = new ScriptedPolicy(['Yes, indeed.', 'Yes indeed.'], 'v7');
  const id = await createSession(db.pool, { prompt: 'Say yes.', constraints, maxAttempts: 4 });
  const seen: SessionPart['type'][] = [];
  for await (const part of logSession(
    db.pool,
    id,
    runSession({ prompt: 'Say yes.', constraints }, { policy: fixedPolicy(policy) }),
  )) {
    seen.push(part.type);
    if (part.type === 'attempt:end') {
      // Durable before the consumer sees it.
      const stored = await getSession(db.pool, id);
      expect(stored?.turns.filter((t) => t.kind === 'attempt')).toHaveLength(part.attempt);
    }
  }
  expect(seen.at(-1)).toBe('session:end');
  const stored = await getSession(db.pool, id);
  expect(stored).toMatchObject({
    status: 'completed',
    ok: true,
    bestScore: 1,
    attempts: 2,
    prompt: 'Say yes.',
  });
  expect(stored!.constraints).toEqual([{ id: 'punctuation:no_comma', kwargs: {} }]);
  expect(stored!.turns.map((t) => [t.idx, t.role, t.kind, t.attempt])).toEqual([
    [0, 'user', 'instruction', 1],
    [1, 'assistant', 'attempt', 1],
    [2, 'user', 'feedback', 2],
    [3, 'assistant', 'attempt', 2],
  ]);
  const [first] = stored!.turns.filter((t) => t.kind === 'attempt');
  expect(first).toMatchObject({ text: 'Yes, indeed.', policyVersion: 'v7', finishReason: 'stop' });
  expect(first.tokenIds).toEqual([0, 1]);
  expect(first.logprobs).toEqual([-0.5, -0.5]);
  expect(first.check).toMatchObject({ ok: false, score: 0 });

  await addRating(db.pool, id, { rating: 5, comment: 'good' });
  const { rows } = await db.pool.query('SELECT rating, comment FROM ratings WHERE session_id = $1', [id]);
  expect(rows).toEqual([{ rating: 5, comment: 'good' }]);
}

describe('sessions in PostgreSQL', () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db?.close();
  });

  it('stores every turn before its part is passed on', () => logsEveryTurn(db));

  it('marks a session cancelled when its consumer stops early', async () => {
    const id = await createSession(db.pool, { constraints, maxAttempts: 4 });
    const policy = new ScriptedPolicy(['a, b, c']);
    for await (const part of logSession(
      db.pool,
      id,
      runSession({ constraints }, { policy: fixedPolicy(policy) }),
    )) {
      if (part.type === 'token') break;
    }
    expect((await getSession(db.pool, id))?.status).toBe('cancelled');
  });

  it('keeps a turn whose text holds NUL characters (stored as U+FFFD)', async () => {
    const id = await createSession(db.pool, { prompt: 'a\u0000b', constraints, maxAttempts: 1 });
    const policy = new ScriptedPolicy(['x\u0000y, z']);
    const parts: SessionPart[] = [];
    for await (const part of logSession(
      db.pool,
      id,
      runSession({ constraints }, { policy: fixedPolicy(policy) }),
    ))
      parts.push(part);
    expect(parts.some((p) => p.type === 'error')).toBe(false);
    const stored = await getSession(db.pool, id);
    expect(stored?.prompt).toBe('a\uFFFDb');
    expect(stored?.turns.find((t) => t.role === 'assistant')?.text).toBe('x\uFFFDy, z');
    expect(stored?.status).toBe('completed');
  });

  it('hides a session from a key that did not create it', async () => {
    const id = await createSession(db.pool, { constraints, maxAttempts: 1, apiKeyId: null });
    expect(await getSession(db.pool, id, { apiKeyId: null })).not.toBeNull();
    expect(await getSession(db.pool, id, { apiKeyId: '00000000-0000-0000-0000-000000000000' })).toBeNull();
  });
});

describe('the embedded database (PGlite over pglite-socket)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corgi-pglite-'));
  let db: Database;
  beforeAll(async () => {
    db = await openDatabase({ url: '', dataDir: dir });
  });
  afterAll(async () => {
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the same migrations and session log as PostgreSQL', async () => {
    expect(db.embedded).toBe(true);
    await logsEveryTurn(db);
  });

  it('keeps its data across a restart', async () => {
    const id = await createSession(db.pool, { constraints, maxAttempts: 2 });
    await db.close();
    db = await openDatabase({ url: '', dataDir: dir });
    expect((await getSession(db.pool, id))?.maxAttempts).toBe(2);
  });
});
