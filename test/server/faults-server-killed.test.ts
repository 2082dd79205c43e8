/**
 * A server process is killed mid-session. Two real `corgi serve` processes (A and B) share a
 * PostgreSQL database of their own; socket.io clients and a Server-Sent Events client run sessions
 * on them; A is SIGKILLed while it holds sessions.
 *
 * To make the kill land mid-session on every run, the test holds a gate in the database: a trigger
 * on `turns` that makes the insert of a feedback turn wait for an advisory lock the test holds. A
 * session whose first attempt misses its constraint therefore writes its instruction and first
 * attempt, the client receives that `attempt:end`, and the session then waits, running, inside its
 * server, for as long as the test likes. The database is set to abort the queries of clients that
 * are gone (`client_connection_check_interval`), so the killed server's waiting insert dies with it.
 *
 * Shown: A's clients see the disconnect (socket.io) or a cut stream (SSE), never a `session:end`;
 * every attempt a client received is stored exactly as received, and the session that had ended is
 * `completed`; A's sessions stay `running` until a server starts (C), which marks them
 * `interrupted` (`server_gone`), while B's session, running all the while, is left alone by C's
 * sweep and completes once the gate opens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storableText } from '../../src/db/sessions.ts';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import {
  corgiEnv,
  createScratchDatabase,
  killHard,
  type ScratchDatabase,
  type ServeProcess,
  startServe,
  stopGently,
} from '../support/processes.ts';

/** The advisory lock the gate trigger waits for. */
const GATE_KEY = 7_007_007;
/** A word the tiny random model never writes: every attempt fails, so every session needs feedback. */
const UNMET = [{ id: 'keywords:existence', kwargs: { keywords: ['zyzzyva'] } }];
const MET_OR_NOT = [{ id: 'punctuation:no_comma' }];

interface ClientView {
  sessionId: string | null;
  attemptEnds: { attempt: number; text: string; check: unknown }[];
  ended: boolean;
  errors: unknown[];
  disconnected: string | null;
}

const root = mkdtempSync(join(tmpdir(), 'corgi-server-killed-'));
let scratch: ScratchDatabase;
let gate: pg.Client;
let env: NodeJS.ProcessEnv;
let policyDir: string;
let a: ServeProcess | undefined;
let b: ServeProcess | undefined;
let c: ServeProcess | undefined;
const sockets: Socket[] = [];

beforeAll(async () => {
  scratch = await createScratchDatabase('corgi_server_killed');
  // A backend whose client is gone notices within 250 ms even while it waits (PostgreSQL ≥ 14).
  await scratch.admin.query(`ALTER DATABASE ${scratch.name} SET client_connection_check_interval = '250ms'`);
  const model = tinyModel(5);
  policyDir = await saveTinyCheckpoint(model, root, 'tiny-v1');
  model.dispose();
  // The gate holds inserts for as long as the test likes: no query or statement deadline here.
  env = corgiEnv(join(root, 'data'), {
    DATABASE_URL: scratch.url,
    CORGI_BACKEND: 'wasm',
    CORGI_DB_QUERY_TIMEOUT_MS: '0',
    CORGI_DB_STATEMENT_TIMEOUT_MS: '0',
  });
  const flags = ['--policy', policyDir, '--session-rate-limit', '0'];
  // One after the other: the first applies the migrations and records tiny-v1 as the live version.
  a = await startServe(flags, env);
  b = await startServe(flags, env);
  gate = new pg.Client({ connectionString: scratch.url });
  await gate.connect();
  await gate.query(`
    CREATE FUNCTION fault_test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(${GATE_KEY});
      RETURN NEW;
    END $$;
    CREATE TRIGGER fault_test_gate BEFORE INSERT ON turns
      FOR EACH ROW WHEN (NEW.kind = 'feedback') EXECUTE FUNCTION fault_test_gate();`);
  await gate.query('SELECT pg_advisory_lock($1)', [GATE_KEY]);
}, 300_000);

afterAll(async () => {
  for (const socket of sockets) socket.close();
  await gate?.end().catch(() => {});
  await Promise.all([a && killHard(a), stopGently(b), stopGently(c)]);
  await scratch?.drop();
  rmSync(root, { recursive: true, force: true });
});

function openSocket(url: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    sockets.push(socket);
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/** Starts a session on a socket of its own and records what the client sees. */
async function socketSession(url: string, constraints: unknown[], maxAttempts: number): Promise<ClientView> {
  const socket = await openSocket(url);
  const view: ClientView = { sessionId: null, attemptEnds: [], ended: false, errors: [], disconnected: null };
  socket.on('attempt:end', ({ attempt, text, check }) => view.attemptEnds.push({ attempt, text, check }));
  socket.on('session:end', () => {
    view.ended = true;
  });
  socket.on('session:error', (error) => view.errors.push(error));
  socket.on('disconnect', (reason) => {
    view.disconnected = reason;
  });
  const ack = await socket.emitWithAck('session:start', {
    prompt: 'Write about the park.',
    constraints,
    maxAttempts,
    sampling: { maxTokens: 6, seed: 3 },
  });
  if (!ack.sessionId) throw new Error(`session:start refused: ${JSON.stringify(ack)}`);
  view.sessionId = ack.sessionId;
  return view;
}

/** A session over Server-Sent Events, read as it streams. */
function sseSession(url: string): { view: ClientView; done: Promise<void> } {
  const view: ClientView = { sessionId: null, attemptEnds: [], ended: false, errors: [], disconnected: null };
  const done = (async () => {
    const response = await fetch(`${url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({
        prompt: 'Write about the dog.',
        constraints: UNMET,
        maxAttempts: 3,
        sampling: { maxTokens: 6, seed: 4 },
      }),
    });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) {
          view.disconnected = 'stream ended';
          return;
        }
        buffer += value;
        let cut = buffer.indexOf('\n\n');
        while (cut >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          cut = buffer.indexOf('\n\n');
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = JSON.parse(/^data: (.+)$/m.exec(block)?.[1] ?? 'null');
          if (event === 'session:start') view.sessionId = data.sessionId;
          else if (event === 'attempt:end')
            view.attemptEnds.push({ attempt: data.attempt, text: data.text, check: data.check });
          else if (event === 'session:end') view.ended = true;
          else if (event === 'session:error') view.errors.push(data);
        }
      }
    } catch (error) {
      view.disconnected = `stream failed: ${(error as Error).message}`;
    }
  })();
  return { view, done };
}

async function sessionRow(id: string) {
  const { rows } = await gate.query('SELECT status, error, ended_at, server_id FROM sessions WHERE id = $1', [
    id,
  ]);
  return rows[0];
}

async function storedTurns(id: string) {
  const { rows } = await gate.query(
    'SELECT idx, kind, attempt, text, check_result FROM turns WHERE session_id = $1 ORDER BY idx',
    [id],
  );
  return rows;
}

/** Every attempt the client received is stored, exactly as it received it. */
async function expectAcknowledgedStored(view: ClientView): Promise<void> {
  const attempts = (await storedTurns(view.sessionId!)).filter((turn) => turn.kind === 'attempt');
  for (const seen of view.attemptEnds) {
    const stored = attempts.find((turn) => turn.attempt === seen.attempt);
    expect(stored, `attempt ${seen.attempt} of ${view.sessionId}`).toBeDefined();
    expect(stored.text).toBe(storableText(seen.text));
    expect(stored.check_result).toEqual(seen.check);
  }
}

const waitingOnGate = async () =>
  Number(
    (
      await gate.query(
        `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity s USING (pid)
         WHERE l.locktype = 'advisory' AND l.objid = $1 AND NOT l.granted AND s.datname = $2`,
        [GATE_KEY, scratch.name],
      )
    ).rows[0].n,
  );

describe('a server process is killed mid-session', () => {
  const views: Record<string, ClientView> = {};
  let sse: ReturnType<typeof sseSession>;

  it('holds sessions on both servers, each stopped after an acknowledged attempt', async () => {
    // One that needs no feedback turn ends before the kill.
    views.finished = await socketSession(a!.url, MET_OR_NOT, 1);
    await expect.poll(() => views.finished.ended, { timeout: 60_000 }).toBe(true);
    views.a1 = await socketSession(a!.url, UNMET, 3);
    views.a2 = await socketSession(a!.url, UNMET, 3);
    sse = sseSession(a!.url);
    views.b1 = await socketSession(b!.url, UNMET, 3);
    const held = () => [views.a1, views.a2, sse.view, views.b1];
    // Each has received its first attempt; its feedback turn waits at the gate.
    await expect
      .poll(() => held().every((view) => view.attemptEnds.length === 1), { timeout: 120_000, interval: 100 })
      .toBe(true);
    await expect.poll(waitingOnGate, { timeout: 60_000, interval: 100 }).toBe(4);
    views.sse = sse.view;
    for (const view of held()) {
      expect(view.ended).toBe(false);
      expect((await sessionRow(view.sessionId!)).status).toBe('running');
    }
    // Each server is present in the database under the id on its sessions.
    const owners = new Set([
      (await sessionRow(views.a1.sessionId!)).server_id,
      (await sessionRow(views.b1.sessionId!)).server_id,
    ]);
    expect(owners.size).toBe(2);
    for (const owner of owners) {
      const { rows } = await gate.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [
        `corgi-serve ${owner}`,
      ]);
      expect(rows).toHaveLength(1);
    }
  }, 240_000);

  it("A's clients see the connection end, never a session:end", async () => {
    await killHard(a!);
    for (const name of ['finished', 'a1', 'a2']) {
      // `transport close` (FIN), or `transport error` should the kernel have reset the connection.
      await expect
        .poll(() => views[name].disconnected, { timeout: 30_000 })
        .toMatch(/^transport (close|error)$/);
    }
    await sse.done;
    expect(views.sse.disconnected).toMatch(/^stream (failed|ended)/);
    for (const name of ['a1', 'a2', 'sse']) expect(views[name].ended).toBe(false);
    // The killed server's insert waiting at the gate was aborted with its connection; B's still waits.
    await expect.poll(waitingOnGate, { timeout: 30_000, interval: 100 }).toBe(1);
  }, 60_000);

  it('keeps everything that was acknowledged; its sessions stay running until a server starts', async () => {
    expect(await sessionRow(views.finished.sessionId!)).toMatchObject({ status: 'completed' });
    for (const name of ['finished', 'a1', 'a2', 'sse']) await expectAcknowledgedStored(views[name]);
    for (const name of ['a1', 'a2', 'sse']) {
      expect(await sessionRow(views[name].sessionId!)).toMatchObject({ status: 'running', ended_at: null });
      // The instruction and the first attempt; the feedback turn never committed.
      expect((await storedTurns(views[name].sessionId!)).map((turn) => turn.kind)).toEqual([
        'instruction',
        'attempt',
      ]);
    }
  });

  it("marks the dead server's sessions interrupted at the next start-up, and leaves B's alone", async () => {
    c = await startServe(['--policy', policyDir], env);
    expect(c.stderr()).toMatch(
      /\[sessions\] 3 session\(s\) left running by a stopped server marked interrupted/,
    );
    for (const name of ['a1', 'a2', 'sse']) {
      const row = await sessionRow(views[name].sessionId!);
      expect(row).toMatchObject({ status: 'interrupted', error: { code: 'server_gone' } });
      expect(row.ended_at).not.toBeNull();
      await expectAcknowledgedStored(views[name]);
    }
    // The API reports it too.
    const stored = await (await fetch(`${c.url}/v1/sessions/${views.a1.sessionId}`)).json();
    expect(stored).toMatchObject({ status: 'interrupted', error: { code: 'server_gone' } });
    expect(await sessionRow(views.finished.sessionId!)).toMatchObject({ status: 'completed' });
    // B is alive: its session is still running, and it goes on once the gate opens.
    expect(await sessionRow(views.b1.sessionId!)).toMatchObject({ status: 'running' });
    await gate.query('SELECT pg_advisory_unlock($1)', [GATE_KEY]);
    await expect.poll(() => views.b1.ended, { timeout: 120_000, interval: 100 }).toBe(true);
    expect(views.b1.attemptEnds).toHaveLength(3);
    expect(views.b1.disconnected).toBeNull();
    expect(await sessionRow(views.b1.sessionId!)).toMatchObject({ status: 'completed' });
    await expectAcknowledgedStored(views.b1);
    // Nothing of A's came back to life once the gate opened.
    for (const name of ['a1', 'a2', 'sse']) {
      expect(await sessionRow(views[name].sessionId!)).toMatchObject({ status: 'interrupted' });
    }
  }, 240_000);
});
