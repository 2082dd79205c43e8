/**
 * Bad input, generated: property-based tests (fast-check) over everything clients send —
 * `corgi check`'s request (the in-process `runCheckRequest`), `POST /v1/check`,
 * `POST /v1/sessions` and socket.io `session:start`. Thousands of inputs, from near-valid (real
 * checker ids and kwarg names with wrong or extreme values) to arbitrary JSON. The properties: no
 * crash, no 5xx, and every rejection is a 4xx whose message starts with the field it refuses.
 *
 * Runs are seeded so CI is deterministic; explore other inputs with FUZZ_SEED=<n> (and FUZZ_RUNS
 * to scale the run counts). A failure prints the shrunk counterexample and the seed to replay it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheckRequest } from '../../src/checkers/check-request.ts';
import { ConstraintError } from '../../src/checkers/errors.ts';
import { listCheckers } from '../../src/checkers/registry.ts';
import type { Database } from '../../src/db/database.ts';
import { selectBackend } from '../../src/model/tfjs/backend.ts';
import type { LlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { servingPolicyLoader } from '../../src/policy/serving-loader.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { MAX_PROMPT_CHARS } from '../../src/server/schemas.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { saveTinyCheckpoint, tinyModel } from '../policy/tiny-policy.ts';
import { openTestDatabase } from '../support/database.ts';
import { ScriptedPolicy } from '../support/scripted-policy.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_251_123);
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);
const runs = (n: number) => ({ seed: SEED, numRuns: Math.max(1, Math.round(n * SCALE)) });

// ---- Arbitraries: near-valid inputs built from the registry, and arbitrary JSON -------------------

const CHECKERS = listCheckers();
const IDS = CHECKERS.map((c) => c.id);
const KWARG_NAMES = [
  ...new Set(
    CHECKERS.flatMap((c) => Object.keys((c.kwargsSchema as { properties?: object }).properties ?? {})),
  ),
];
/** Specs that parse, so the checkers themselves run on generated responses. */
const VALID_SPECS = [
  { id: 'punctuation:no_comma' },
  { id: 'keywords:existence', kwargs: { keywords: ['dog', 'park'] } },
  { id: 'keywords:forbidden_words', kwargs: { forbidden_words: ['cat'] } },
  { id: 'length_constraints:number_words', kwargs: { num_words: 5, relation: 'at least' } },
  { id: 'length_constraints:number_sentences', kwargs: { num_sentences: 2, relation: 'less than' } },
  { id: 'detectable_format:json_format' },
  { id: 'detectable_format:number_bullet_lists', kwargs: { num_bullets: 2 } },
  { id: 'change_case:english_lowercase' },
  { id: 'startend:end_checker', kwargs: { end_phrase: 'Is there anything else?' } },
  { id: 'corgi:concepts', kwargs: { concepts: ['dog', 'throw'] } },
  { id: 'corgi:num_planning', kwargs: { n: 4, last_word: 'park', prefix: 'The dog' } },
  { id: 'corgi:panagram', kwargs: { letters: ['a', 'c', 't'] } },
  { id: 'corgi:sentiment', kwargs: { label: 'positive' } },
  { id: 'corgi:no_repeat_ngram', kwargs: { n: 4 } },
];

const text = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  // Any UTF-16 code units: NUL characters and unpaired surrogates, which PostgreSQL cannot store.
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.lorem({ maxCount: 40, mode: 'sentences' }),
  fc.constantFrom('', ' ', '\u0000', '{"a": 1}', '* a\n* b', 'P.S. hi', 'The dog threw a ball in the park.'),
);
const kwargValue = fc.oneof(
  fc.integer({ min: -3, max: 40 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 30 }),
  fc.constantFrom('dog', 'en', 'xx', 'less than', 'at least', 'about', 'positive', 'noun', 'verb', 'P.S.'),
  fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('dog', 'park', 'throw', 'noun')), {
    maxLength: 5,
  }),
  fc.jsonValue({ maxDepth: 2 }),
);
const kwargs = fc.dictionary(
  fc.oneof(fc.constantFrom(...KWARG_NAMES), fc.string({ maxLength: 10 })),
  kwargValue,
  {
    maxKeys: 4,
  },
);
const constraint = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...VALID_SPECS) },
  { weight: 4, arbitrary: fc.record({ id: fc.constantFrom(...IDS), kwargs }, { requiredKeys: ['id'] }) },
  {
    weight: 1,
    arbitrary: fc.record(
      { id: fc.oneof(fc.string(), fc.jsonValue()), kwargs: fc.jsonValue(), checker: fc.jsonValue() },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);
const constraints = fc.oneof(
  { weight: 6, arbitrary: fc.array(constraint, { minLength: 1, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.array(constraint, { minLength: 0, maxLength: 20 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

/** Both forms of a check request, near-valid and not, plus arbitrary values. */
const checkRequest = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record(
      { response: fc.oneof({ weight: 5, arbitrary: text }, fc.jsonValue()), constraints },
      { requiredKeys: [] },
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        response: text,
        instruction_id_list: fc.oneof(
          fc.array(fc.oneof(fc.constantFrom(...IDS), fc.string()), { maxLength: 4 }),
          fc.jsonValue(),
        ),
        kwargs: fc.oneof(
          fc.array(fc.oneof(kwargs, fc.constant(null), fc.jsonValue()), { maxLength: 4 }),
          fc.jsonValue(),
        ),
        key: fc.integer(),
        prompt: fc.string(),
      },
      { requiredKeys: ['instruction_id_list'] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

const sampling = fc.record(
  {
    temperature: fc.oneof(fc.double({ min: 0, max: 2, noNaN: true }), fc.double(), fc.jsonValue()),
    topK: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer(), fc.string()),
    topP: fc.oneof(fc.double({ min: 0.01, max: 1, noNaN: true }), fc.double()),
    maxTokens: fc.oneof(fc.integer({ min: 1, max: 512 }), fc.integer()),
    stop: fc.oneof(fc.array(fc.string({ maxLength: 70 }), { maxLength: 10 }), fc.jsonValue()),
    seed: fc.oneof(fc.nat(), fc.integer(), fc.double()),
    bogus: fc.jsonValue(),
  },
  { requiredKeys: [] },
);
const prompt = fc.oneof(
  { weight: 8, arbitrary: text },
  { weight: 1, arbitrary: fc.jsonValue() },
  // Right around the prompt-size limit.
  {
    weight: 1,
    arbitrary: fc.integer({ min: MAX_PROMPT_CHARS - 2, max: MAX_PROMPT_CHARS + 2 }).map((n) => 'a'.repeat(n)),
  },
);
/** Bodies that pass validation, so sessions run too (and the scripted model answers). */
const validSessionRequest = fc.record(
  {
    prompt: text,
    constraints: fc.array(fc.constantFrom(...VALID_SPECS), { minLength: 1, maxLength: 3 }),
    // Few attempts: each one is a database round trip, and the schema's bound is fuzzed below.
    maxAttempts: fc.integer({ min: 1, max: 3 }),
    sampling: fc.record(
      {
        temperature: fc.double({ min: 0, max: 2, noNaN: true }),
        maxTokens: fc.integer({ min: 1, max: 512 }),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['prompt', 'constraints'] },
);
/** `POST /v1/sessions` and `session:start` bodies. */
const sessionRequest = fc.oneof(
  { weight: 3, arbitrary: validSessionRequest },
  {
    weight: 8,
    arbitrary: fc.record(
      {
        prompt,
        constraints,
        maxAttempts: fc.oneof(fc.integer({ min: 0, max: 11 }), fc.jsonValue()),
        sampling: fc.oneof({ weight: 4, arbitrary: sampling }, fc.jsonValue()),
        extra: fc.jsonValue(),
      },
      { requiredKeys: [] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

// ---- Properties -----------------------------------------------------------------------------------

/** Field names a rejection may start with besides the input's own keys. */
const ROOTS = [
  'body',
  'request',
  '""',
  'prompt',
  'constraints',
  'maxAttempts',
  'sampling',
  'response',
  'instruction_id_list',
  'kwargs',
];

/**
 * True when `message` starts with `<field>: ` and the field is the body itself, a field of the
 * request schema, or one of the input's keys (possibly with a path into it).
 */
function namesField(message: string, input: unknown): boolean {
  const keys = typeof input === 'object' && input !== null && !Array.isArray(input) ? Object.keys(input) : [];
  return [...ROOTS, ...keys].some(
    (root) =>
      message.startsWith(`${root}: `) || message.startsWith(`${root}.`) || message.startsWith(`${root}[`),
  );
}

describe('corgi check input (runCheckRequest, in process)', () => {
  it('returns a check result or throws a ConstraintError naming the field, for any input', () => {
    fc.assert(
      fc.property(checkRequest, (body) => {
        let result: ReturnType<typeof runCheckRequest>;
        try {
          result = runCheckRequest(body);
        } catch (error) {
          if (!ConstraintError.isInstance(error)) throw error;
          expect(error.field).not.toBe('');
          expect(error.message.startsWith(`${error.field}: `)).toBe(true);
          expect(namesField(error.message, body)).toBe(true);
          return;
        }
        expect(typeof result.ok).toBe('boolean');
        expect(result.score).toBeGreaterThanOrEqual(0);
        expect(result.score).toBeLessThanOrEqual(1);
        expect(result.results.length).toBeGreaterThan(0);
        expect(result.ok ? result.feedback : typeof result.feedback).toBe(result.ok ? null : 'string');
      }),
      runs(6_000),
    );
  });

  it('regression: a client-sent "checker" key is refused, not trusted as an already-parsed constraint', () => {
    // Was a TypeError ("checker.check is not a function"), so a 500 over HTTP.
    expect(() =>
      runCheckRequest({ response: 'x', constraints: [{ id: 'punctuation:no_comma', checker: {} }] }),
    ).toThrow(/^constraints\[0\]\.checker: unknown field/);
    expect(() => runCheckRequest({ response: 'x', '': 1 })).toThrow(/^"": unknown field/);
  });
});

describe('HTTP and socket.io payloads', () => {
  let db: Database;
  let server: RunningServer;
  let socket: Socket;

  beforeAll(async () => {
    db = await openTestDatabase();
    server = await startServer({
      db,
      policy: fixedPolicy(
        new ScriptedPolicy(['A dog, asleep.', 'A dog asleep in the park.'], 'scripted-fuzz'),
      ),
      port: 0,
      // Thousands of calls from one client: the limits are tested elsewhere (auth.test.ts).
      security: {
        rateLimits: {
          perIpPerMinute: 0,
          perKeyPerMinute: 0,
          sessionsPerMinute: 0,
          socketConnectionsPerMinute: 0,
        },
      },
    });
    socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(server.url, { transports: ['websocket'], reconnection: false });
      s.once('connect', () => resolve(s));
      s.once('connect_error', reject);
    });
  });
  afterAll(async () => {
    socket?.close();
    await server?.close();
    await db?.close();
  });

  async function post(
    path: string,
    body: string,
  ): Promise<{ status: number; json: { error?: { code: string; message: string } } }> {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    return { status: response.status, json: await response.json() };
  }

  /** The HTTP property: no 5xx; a 4xx carries a code and a message naming a field of `input`. */
  function expectHandled(
    status: number,
    json: { error?: { code: string; message: string } },
    input: unknown,
  ) {
    expect(status).toBeLessThan(500);
    if (status >= 400) {
      expect(json.error?.code).toMatch(/^[a-z_]+$/);
      expect(namesField(json.error!.message, input)).toBe(true);
    }
  }

  it('POST /v1/check: any JSON body is checked or refused with a 4xx naming the field', async () => {
    await fc.assert(
      fc.asyncProperty(checkRequest, async (body) => {
        const { status, json } = await post('/v1/check', JSON.stringify(body) ?? 'null');
        expectHandled(status, json, body);
        if (status === 200)
          expect(json).toMatchObject({ ok: expect.any(Boolean), score: expect.any(Number) });
      }),
      runs(1_500),
    );
  });

  it('POST /v1/sessions: any JSON body runs a session or is refused with a 4xx naming the field', async () => {
    let sessions = 0;
    await fc.assert(
      fc.asyncProperty(sessionRequest, async (body) => {
        const { status, json } = await post('/v1/sessions', JSON.stringify(body) ?? 'null');
        expectHandled(status, json, body);
        if (status === 200) sessions++;
      }),
      runs(1_000),
    );
    // The generator is not so hostile that nothing valid ever gets through.
    expect(sessions).toBeGreaterThan(50);
  });

  it('any body bytes (not JSON, truncated, other types) get a 4xx naming the body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 100 }),
          fc.json().map((json) => json.slice(0, Math.ceil(json.length / 2))),
        ),
        fc.constantFrom('/v1/check', '/v1/sessions'),
        async (raw, path) => {
          const { status, json } = await post(path, raw);
          expectHandled(status, json, undefined);
        },
      ),
      runs(600),
    );
  });

  it('socket.io session:start: any payload is acked with a session id or an error naming the field, and the socket stays up', async () => {
    let sessions = 0;
    await fc.assert(
      fc.asyncProperty(sessionRequest, async (payload) => {
        const ack = await new Promise<{ sessionId?: string; error?: { code: string; message: string } }>(
          (resolve) => {
            socket.emit('session:start', payload, resolve);
          },
        );
        if (ack.error) {
          expect(ack.error.code).toMatch(/^[a-z_]+$/);
          expect(ack.error.code).not.toMatch(/^(internal|storage_unavailable)$/);
          expect(namesField(ack.error.message, payload)).toBe(true);
          return;
        }
        sessions++;
        // Let the session finish before the next payload, so sessions do not pile up.
        await new Promise<void>((resolve, reject) => {
          const onEnd = (event: { sessionId: string }) => {
            if (event.sessionId !== ack.sessionId) return;
            socket.off('session:end', onEnd);
            resolve();
          };
          socket.on('session:end', onEnd);
          socket.once('disconnect', () => reject(new Error('the server dropped the socket')));
        });
      }),
      runs(1_000),
    );
    expect(sessions).toBeGreaterThan(50);
    expect(socket.connected).toBe(true);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});

describe('prompt-size and token limits', () => {
  let db: Database;
  let server: RunningServer;
  let policy: LlamaCppPolicy;
  let root: string;

  beforeAll(async () => {
    await selectBackend({ preferred: 'cpu', log: () => {} });
    db = await openTestDatabase();
    // A real model and tokenizer with a 256-token window (the tiny tokenizer is about a token per
    // character), served on llama.cpp as `corgi serve` serves a checkpoint directory.
    root = mkdtempSync(join(tmpdir(), 'corgi-fuzz-limits-'));
    const model = tinyModel(1);
    const dir = await saveTinyCheckpoint(model, root, 'tiny-256');
    model.dispose();
    policy = await servingPolicyLoader({ cacheDir: join(root, 'cache'), threads: 1 })(dir, 'tiny-256');
    server = await startServer({ db, policy: fixedPolicy(policy), port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await policy?.dispose();
    await db?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const request = (prompt: string, maxTokens?: number) => ({
    prompt,
    constraints: [{ id: 'punctuation:no_comma' }],
    maxAttempts: 1,
    sampling: { maxTokens: maxTokens ?? 8, seed: 1 },
  });

  it('refuses a prompt longer than the window allows with 400 prompt_too_long, over HTTP and socket.io, storing nothing', async () => {
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM sessions')).rows[0].n;
    const long = 'The dog ran in the park. '.repeat(40);
    const { tokens, limit } = policy.measurePrompt([{ role: 'user', content: long }], { maxTokens: 8 });
    expect(tokens).toBeGreaterThan(limit);

    const response = await fetch(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request(long)),
    });
    expect(response.status).toBe(400);
    const { error } = await response.json();
    expect(error.code).toBe('prompt_too_long');
    expect(error.message).toMatch(
      /^prompt: the instruction .* takes \d+ tokens; policy tiny-256 accepts at most \d+/,
    );

    const socket = connect(server.url, { transports: ['websocket'], reconnection: false });
    const ack = await new Promise<{ error?: { code: string } }>((resolve) =>
      socket.emit('session:start', request(long), resolve),
    );
    socket.close();
    expect(ack.error?.code).toBe('prompt_too_long');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM sessions')).rows[0].n).toBe(before);
  });

  it('serves a prompt that fits, and refuses oversize prompts and token requests by schema', async () => {
    const fits = await fetch(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request('A dog.')),
    });
    expect(fits.status).toBe(200);
    expect((await fits.json()).turns[0].policyVersion).toBe('tiny-256');

    for (const [body, field] of [
      [request('x'.repeat(MAX_PROMPT_CHARS + 1)), /^prompt: /],
      [request('A dog.', 513), /^sampling\.maxTokens: /],
    ] as const) {
      const refused = await fetch(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(refused.status).toBe(400);
      expect((await refused.json()).error.message).toMatch(field);
    }
  });
});
