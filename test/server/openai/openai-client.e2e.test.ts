/**
 * The OpenAI-compatible routes through the official `openai` npm client, against a real server
 * serving the built-in model with sessions in the real PostgreSQL. The built-in model writes poor
 * English: these tests assert structure and consistency, never quality.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../../src/db/api-keys.ts';
import { openDatabase } from '../../../src/db/database.ts';
import { registerCandidate } from '../../../src/db/policy-versions.ts';
import { fixedPolicy } from '../../../src/policy/types.ts';
import { startServer } from '../../../src/server/server.ts';
import { type BuiltinModelServer, startBuiltinModelServer } from '../../support/builtin-model-server.ts';
import { CuttableProxy } from '../../support/cuttable-proxy.ts';
import { TEST_DATABASE_URL } from '../../support/database.ts';

let stack: BuiltinModelServer;
let client: OpenAI;

beforeAll(async () => {
  stack = await startBuiltinModelServer();
  client = new OpenAI({ baseURL: `${stack.server.url}/v1`, apiKey: stack.key, maxRetries: 0 });
}, 60_000);
afterAll(async () => {
  await stack?.close();
});

/** A constraint the built-in model rarely meets, so sessions usually take every attempt. */
const ZEBRA = [{ id: 'keywords:existence', kwargs: { keywords: ['zebra'] } }];
const PROMPT = [{ role: 'user' as const, content: 'Write a sentence about an animal.' }];

interface CorgiAttempt {
  attempt: number;
  text: string;
  check: { ok: boolean; score: number; feedback: string | null };
  policy_version: string;
}
interface Corgi {
  session_id: string;
  ok: boolean;
  best_score: number;
  answer_attempt: number | null;
  attempts: CorgiAttempt[];
}

/** The answer rule, restated: the first attempt that passed, else the earliest best-scoring one. */
function expectedAnswer(attempts: CorgiAttempt[]): CorgiAttempt {
  const passed = attempts.find((a) => a.check.ok);
  if (passed) return passed;
  const best = Math.max(...attempts.map((a) => a.check.score));
  return attempts.find((a) => a.check.score === best)!;
}

async function storedSession(sessionId: string) {
  const response = await fetch(`${stack.server.url}/v1/sessions/${sessionId}`, {
    headers: { authorization: `Bearer ${stack.key}` },
  });
  expect(response.status).toBe(200);
  return response.json();
}

async function collectStream(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  const chunks: (OpenAI.Chat.Completions.ChatCompletionChunk & { corgi?: Corgi })[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  const deltas = chunks.flatMap((c) => c.choices.map((choice) => choice.delta));
  return {
    chunks,
    content: deltas.map((d) => d.content ?? '').join(''),
    reasoning: deltas.map((d) => (d as { reasoning_content?: string }).reasoning_content ?? '').join(''),
    finishReason: chunks.flatMap((c) => c.choices).find((choice) => choice.finish_reason)?.finish_reason,
  };
}

describe('GET /v1/models', () => {
  it('lists the served policy first, then every registered version, and retrieves one', async () => {
    await registerCandidate(stack.db.pool, {
      version: 'candidate-1',
      checkpointPath: '/nowhere/candidate-1',
    });
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models[0]).toMatchObject({ id: 'base', object: 'model', owned_by: 'corgi', serving: true });
    expect(models[0].created).toBeGreaterThan(1_700_000_000);
    expect(models.find((m) => m.id === 'candidate-1')).toMatchObject({
      object: 'model',
      serving: false,
      status: 'candidate',
    });
    expect(await client.models.retrieve('base')).toMatchObject({ id: 'base', serving: true });
    await expect(client.models.retrieve('no-such-model')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe('plain chat completions (no corgi)', () => {
  const request = { model: 'base', messages: PROMPT, temperature: 0, max_tokens: 16 };

  it('answers with one generation, its finish reason and its token usage', async () => {
    const completion = await client.chat.completions.create(request);
    expect(completion).toMatchObject({ object: 'chat.completion', model: 'base' });
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0].message.role).toBe('assistant');
    expect(typeof completion.choices[0].message.content).toBe('string');
    expect(['stop', 'length']).toContain(completion.choices[0].finish_reason);
    expect(completion).not.toHaveProperty('corgi');
    const usage = completion.usage!;
    expect(usage.prompt_tokens).toBeGreaterThan(5);
    expect(usage.completion_tokens).toBeGreaterThan(0);
    expect(usage.completion_tokens).toBeLessThanOrEqual(16);
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
  });

  it('streams exactly the non-streamed answer for the same greedy request, usage last when asked', async () => {
    const whole = await client.chat.completions.create(request);
    const streamed = await collectStream(
      await client.chat.completions.create({
        ...request,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(streamed.chunks.length).toBeGreaterThan(3);
    expect(streamed.chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'base')).toBe(
      true,
    );
    expect(streamed.content).toBe(whole.choices[0].message.content);
    expect(streamed.reasoning).toBe('');
    expect(streamed.finishReason).toBe(whole.choices[0].finish_reason);
    expect(streamed.chunks.at(-1)).toMatchObject({ choices: [], usage: whole.usage });
  });

  it('follows the sampling options: a seed repeats a sampled answer, max_completion_tokens bounds it', async () => {
    const sampled = { model: 'base', messages: PROMPT, temperature: 1, seed: 7, max_completion_tokens: 8 };
    const a = await client.chat.completions.create(sampled);
    const b = await client.chat.completions.create(sampled);
    expect(b.choices[0].message.content).toBe(a.choices[0].message.content);
    expect(a.usage!.completion_tokens).toBeLessThanOrEqual(8);
  });
});

describe('chat completions with corgi constraints', () => {
  const request = {
    model: 'base',
    messages: PROMPT,
    temperature: 0,
    max_tokens: 16,
    corgi: { constraints: ZEBRA, max_attempts: 2 },
  };

  it('runs a CORGI session: the answer, every attempt with its check, usage over all attempts, and the session stored', async () => {
    const completion = (await client.chat.completions.create(
      request as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming,
    )) as OpenAI.Chat.Completions.ChatCompletion & { corgi: Corgi };
    const { corgi } = completion;
    expect(completion.id).toBe(`chatcmpl-${corgi.session_id}`);
    expect(completion.model).toBe('base');
    expect(corgi.attempts.length).toBeGreaterThanOrEqual(1);
    expect(corgi.attempts.length).toBeLessThanOrEqual(2);
    expect(corgi.attempts.map((a) => a.attempt)).toEqual(corgi.attempts.map((_, i) => i + 1));
    for (const attempt of corgi.attempts) {
      expect(attempt.policy_version).toBe('base');
      expect(attempt.check).toMatchObject({ ok: expect.any(Boolean), score: expect.any(Number) });
    }
    // The session ends at the first pass, so only the last attempt may have passed.
    expect(corgi.attempts.slice(0, -1).every((a) => !a.check.ok)).toBe(true);
    expect(corgi.ok).toBe(corgi.attempts.at(-1)!.check.ok);
    expect(corgi.best_score).toBe(Math.max(...corgi.attempts.map((a) => a.check.score)));
    const answer = expectedAnswer(corgi.attempts);
    expect(corgi.answer_attempt).toBe(answer.attempt);
    expect(completion.choices[0].message.content).toBe(answer.text);
    const reasoning = (completion.choices[0].message as { reasoning_content?: string }).reasoning_content!;
    expect(reasoning).toContain('Attempt 1 of 2:\n');
    for (const attempt of corgi.attempts) expect(reasoning).toContain(attempt.text);

    // The session is in PostgreSQL, readable over the sessions API with the same key.
    const stored = await storedSession(corgi.session_id);
    expect(stored).toMatchObject({
      id: corgi.session_id,
      status: 'completed',
      ok: corgi.ok,
      attempts: corgi.attempts.length,
      prompt: PROMPT[0].content,
    });
    const storedAttempts = stored.turns.filter((t: { role: string }) => t.role === 'assistant');
    expect(storedAttempts.map((t: { text: string }) => t.text)).toEqual(corgi.attempts.map((a) => a.text));
    const { rows } = await stack.db.pool.query(
      `SELECT sum(array_length(token_ids, 1))::int AS tokens, min(api_key_id::text) AS key
       FROM turns JOIN sessions ON sessions.id = turns.session_id
       WHERE session_id = $1 AND role = 'assistant'`,
      [corgi.session_id],
    );
    expect(completion.usage!.completion_tokens).toBe(rows[0].tokens);
    expect(rows[0].key).not.toBeNull();
    // Every attempt's prompt counts: the second one also reads the first attempt and the feedback.
    expect(completion.usage!.prompt_tokens).toBeGreaterThan(10 * corgi.attempts.length);

    // The session is the key's alone (tenants), and it shows in the server's metrics like any session.
    const other = await createApiKey(stack.db.pool, { name: 'another-tenant' });
    const foreign = await fetch(`${stack.server.url}/v1/sessions/${corgi.session_id}`, {
      headers: { authorization: `Bearer ${other.key}` },
    });
    expect(foreign.status).toBe(404);
    const metrics = await fetch(`${stack.server.url}/metrics`, {
      headers: { authorization: `Bearer ${stack.key}` },
    }).then((r) => r.text());
    expect(metrics).toMatch(/^corgi_chat_completions_total\{mode="corgi"\} [1-9]/m);
    expect(metrics).toMatch(/^corgi_sessions_started_total [1-9]/m);
  });

  it('streams attempts and feedback as reasoning and then exactly the non-streamed answer as content', async () => {
    const whole = (await client.chat.completions.create(
      request as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming,
    )) as OpenAI.Chat.Completions.ChatCompletion & { corgi: Corgi };
    const streamed = await collectStream(
      await client.chat.completions.create({
        ...request,
        stream: true,
        stream_options: { include_usage: true },
      } as OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming),
    );
    expect(streamed.content).toBe(whole.choices[0].message.content);
    expect(streamed.finishReason).toBe(whole.choices[0].finish_reason);
    const last = streamed.chunks.at(-1)!;
    expect(last.usage).toEqual(whole.usage);
    expect(last.corgi!.session_id).not.toBe(whole.corgi.session_id);
    // The finish chunk before it carries the same object.
    expect(streamed.chunks.at(-2)!.corgi).toEqual(last.corgi);
    expect(last.corgi!.attempts.map((a) => a.text)).toEqual(whole.corgi.attempts.map((a) => a.text));
    // Progress came before the answer: every reasoning chunk precedes the first content chunk.
    const kinds = streamed.chunks
      .flatMap((c) => c.choices.map((choice) => choice.delta as Record<string, unknown>))
      .map((d) => (d.content ? 'content' : d.reasoning_content ? 'reasoning' : 'other'));
    if (kinds.includes('content'))
      expect(kinds.lastIndexOf('reasoning')).toBeLessThan(kinds.indexOf('content'));
    expect(streamed.reasoning).toContain('Attempt 1 of 2:\n');
    expect(streamed.reasoning).toMatch(/Check: score \d\.\d\d/);
    if (whole.corgi.attempts.length === 2)
      expect(streamed.reasoning).toMatch(/Feedback: .*zebra.*Please try again\./);
    // Without include_usage, the finish chunk is the last one.
    const plain = await collectStream(
      await client.chat.completions.create({
        ...request,
        stream: true,
      } as OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming),
    );
    expect(plain.content).toBe(whole.choices[0].message.content);
    expect(plain.chunks.at(-1)!.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
    expect(plain.chunks.at(-1)!.corgi!.ok).toBe(whole.corgi.ok);
  });

  it('takes constraints alone (an empty prompt): the constraints render the instruction', async () => {
    const completion = (await client.chat.completions.create({
      ...request,
      messages: [{ role: 'user', content: '' }],
      corgi: { constraints: ZEBRA, max_attempts: 1 },
    } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming)) as OpenAI.Chat.Completions.ChatCompletion & {
      corgi: Corgi;
    };
    const stored = await storedSession(completion.corgi.session_id);
    expect(stored.prompt).toBeNull();
    expect(stored.turns[0].text).toMatch(/zebra/);
  });

  it('cancels the session when the client goes away mid-stream', async () => {
    const stream = await client.chat.completions.create({
      ...request,
      max_tokens: 200,
      corgi: { constraints: ZEBRA, max_attempts: 10 },
      stream: true,
    } as OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming);
    let sessionId = '';
    for await (const chunk of stream) {
      sessionId = chunk.id.replace(/^chatcmpl-/, '');
      if ((chunk.choices[0]?.delta as { reasoning_content?: string }).reasoning_content) break;
    }
    stream.controller.abort();
    await expect
      .poll(async () => (await storedSession(sessionId)).status, { timeout: 10_000 })
      .toBe('cancelled');
  });
});

describe('errors in OpenAI shape, through the client', () => {
  it('refuses an unknown API key with AuthenticationError', async () => {
    const stranger = new OpenAI({ baseURL: `${stack.server.url}/v1`, apiKey: 'corgi_wrong', maxRetries: 0 });
    const error = await stranger.chat.completions.create({ model: 'base', messages: PROMPT }).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error.status).toBe(401);
    expect(error.error).toMatchObject({ type: 'authentication_error', code: 'unauthorized', param: null });
    expect(error.message).toMatch(/unknown or revoked API key/);
    await expect(stranger.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it.each([
    [
      'a bad kwarg',
      { corgi: { constraints: [{ id: 'keywords:existence', kwargs: { keywords: 3 } }] } },
      'corgi.constraints[0].kwargs.keywords',
      'invalid_constraint',
    ],
    [
      'an unknown checker',
      { corgi: { constraints: [{ id: 'no:such' }] } },
      'corgi.constraints[0].id',
      'invalid_constraint',
    ],
    ['no constraints', { corgi: { constraints: [] } }, 'corgi.constraints', 'invalid_request'],
    [
      'too many attempts',
      { corgi: { constraints: ZEBRA, max_attempts: 11 } },
      'corgi.max_attempts',
      'invalid_request',
    ],
    ['an unknown corgi field', { corgi: { constraints: ZEBRA, maxAttempts: 2 } }, 'corgi', 'invalid_request'],
    [
      'a system message with corgi',
      { messages: [{ role: 'system', content: 'Be brief.' }, ...PROMPT], corgi: { constraints: ZEBRA } },
      'messages',
      'invalid_request',
    ],
    ['n = 2', { n: 2 }, 'n', 'invalid_request'],
    ['top_p = 0', { top_p: 0 }, 'top_p', 'invalid_request'],
    ['tools', { tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools', 'invalid_request'],
    [
      'an image part',
      { messages: [{ role: 'user', content: [{ type: 'image_url' }] }] },
      'messages[0].content[0].type',
      'invalid_request',
    ],
    ['an unknown field', { temprature: 0.5 }, 'temprature', 'invalid_request'],
  ])('refuses %s with BadRequestError naming the field', async (_what, change, param, code) => {
    const error = await client.chat.completions
      .create({
        model: 'base',
        messages: PROMPT,
        ...change,
      } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming)
      .catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.error).toMatchObject({ type: 'invalid_request_error', param, code });
    expect(error.message).toContain(`${param}: `);
  });

  it('refuses a registered version this server does not serve with NotFoundError', async () => {
    await registerCandidate(stack.db.pool, {
      version: 'candidate-2',
      checkpointPath: '/nowhere/candidate-2',
    });
    const error = await client.chat.completions
      .create({ model: 'candidate-2', messages: PROMPT, max_tokens: 4 })
      .catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error.error).toMatchObject({ code: 'model_not_found', param: 'model' });
    // A name the registry does not know is served by the live policy, as OpenAI-compatible servers do.
    const served = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: PROMPT,
      max_tokens: 4,
    });
    expect(served.model).toBe('base');
  });

  it('refuses over the session limit with RateLimitError and Retry-After', async () => {
    const limited = await startServer({
      db: stack.db,
      policy: fixedPolicy(stack.policy),
      port: 0,
      security: { rateLimits: { sessionsPerMinute: 1 } },
    });
    try {
      const limitedClient = new OpenAI({ baseURL: `${limited.url}/v1`, apiKey: stack.key, maxRetries: 0 });
      const body = { model: 'base', messages: PROMPT, max_tokens: 4 };
      await limitedClient.chat.completions.create(body);
      const error = await limitedClient.chat.completions.create(body).catch((e) => e);
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      expect(error.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limited' });
      expect(Number(error.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });

  it('answers 503 storage_unavailable (InternalServerError) while the session store is down', async () => {
    // This server reaches PostgreSQL through a proxy the test cuts, as if PostgreSQL stopped.
    const target = new URL(TEST_DATABASE_URL);
    const proxy = new CuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.open();
    target.host = `127.0.0.1:${proxy.port}`;
    const proxied = await openDatabase({ url: target.toString(), schema: stack.db.schema, migrate: false });
    const server = await startServer({ db: proxied, policy: fixedPolicy(stack.policy), port: 0 });
    try {
      const proxiedClient = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: stack.key, maxRetries: 0 });
      const body = {
        model: 'base',
        messages: PROMPT,
        max_tokens: 4,
        corgi: { constraints: ZEBRA, max_attempts: 1 },
      } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;
      await proxiedClient.chat.completions.create(body); // the key is verified (and cached) while up
      await proxy.cut();
      const error = await proxiedClient.chat.completions.create(body).catch((e) => e);
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      expect(error.status).toBe(503);
      expect(error.error).toMatchObject({ type: 'server_error', code: 'storage_unavailable', param: null });
      expect(error.headers.get('retry-after')).toBe('5');
      // A plain completion needs no store: it is still served.
      const plain = await proxiedClient.chat.completions.create({
        model: 'base',
        messages: PROMPT,
        max_tokens: 4,
      });
      expect(plain.choices[0].message.role).toBe('assistant');
    } finally {
      await proxy.restore();
      await server.close();
      await proxied.close();
      await proxy.cut();
    }
  });
});
