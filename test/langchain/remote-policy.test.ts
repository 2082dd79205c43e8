/**
 * Remote policies against a local fake OpenAI-compatible server (fake-openai-server.ts): streaming,
 * sampling, vLLM token ids and log-probs, errors, cancellation, a whole feedback session, the
 * `openai:` spec in `corgi serve`, and vLLM's runtime LoRA endpoints with an adapter our LoRA code wrote.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConstraints } from '../../src/checkers/registry.ts';
import { attachLora, saveLoraAdapter } from '../../src/model/lora.ts';
import {
  createRemotePolicy,
  loadPolicyFromSpec,
  loadVllmLoraAdapter,
  parsePolicySpec,
  unloadVllmLoraAdapter,
  VllmAdapterError,
} from '../../src/policy/remote-policy.ts';
import {
  type ChatPolicy,
  fixedPolicy,
  type GenerateOptions,
  type Generation,
} from '../../src/policy/types.ts';
import { runSession, type SessionPart } from '../../src/session/session-runner.ts';
import { useBackend } from '../policy/helpers.ts';
import { tinyModel } from '../policy/tiny-policy.ts';
import { corgiEnv, type ServeProcess, startServe, stopGently } from '../support/processes.ts';
import {
  type ChatRequestBody,
  type FakeOpenAIServer,
  type FakeReply,
  fakeLogprob,
  fakeTokenId,
  startFakeOpenAIServer,
} from './fake-openai-server.ts';

const USER = [{ role: 'user' as const, content: 'Write about a dog.' }];

/** What the next chat request gets; tests set it. */
let nextReply: (body: ChatRequestBody) => FakeReply = () => ({ pieces: ['A dog ', 'ran.'] });
let server: FakeOpenAIServer;
beforeAll(async () => {
  server = await startFakeOpenAIServer((body) => nextReply(body));
});
afterAll(() => server.close());

async function generate(policy: ChatPolicy, options: GenerateOptions = {}) {
  const stream = policy.generate(USER, options);
  const pieces: string[] = [];
  for (;;) {
    const next = await stream.next();
    if (next.done) return { pieces, result: next.value as Generation };
    pieces.push(next.value.text);
  }
}

function lastChatBody(): ChatRequestBody {
  return server.requests.filter((r) => r.path === '/v1/chat/completions').at(-1)!.body as ChatRequestBody;
}

describe('remote policy (OpenAI-compatible)', () => {
  it('streams the reply chunk by chunk with our sampling defaults and the session’s options', async () => {
    nextReply = () => ({ pieces: ['A dog ', 'ran ', 'home.'] });
    const policy = createRemotePolicy({ baseURL: server.baseURL, model: 'base-model' });
    expect(policy.version).toBe('base-model');
    const { pieces, result } = await generate(policy, { seed: 9, stop: ['\n\n'], maxTokens: 40 });
    expect(pieces).toEqual(['A dog ', 'ran ', 'home.']);
    // Plain OpenAI servers report no token ids: both arrays stay empty, never one without the other.
    expect(result).toEqual({ text: 'A dog ran home.', tokenIds: [], logprobs: [], finishReason: 'stop' });
    const body = lastChatBody();
    expect(body).toMatchObject({
      model: 'base-model',
      messages: [{ role: 'user', content: 'Write about a dog.' }],
      stream: true,
      temperature: 0.7,
      top_p: 1,
      max_tokens: 40,
      seed: 9,
      stop: ['\n\n'],
    });
    expect(body.logprobs).toBeUndefined();
    expect(body.return_tokens_as_token_ids).toBeUndefined();
    expect(server.requests.at(-1)!.headers.authorization).toMatch(/^Bearer /);
  });

  it('reports a reply cut by the token budget as "length"', async () => {
    nextReply = () => ({ pieces: ['A dog'], finishReason: 'length' });
    const { result } = await generate(createRemotePolicy({ baseURL: server.baseURL, model: 'base-model' }));
    expect(result.finishReason).toBe('length');
  });

  it('with vLLM extensions, records each sampled token id and its log-prob', async () => {
    nextReply = () => ({ pieces: ['A', ' dog', ' ran.'] });
    const policy = createRemotePolicy({ baseURL: server.baseURL, model: 'base-model', vllm: true });
    const { result } = await generate(policy, { topK: 20, temperature: 1 });
    expect(result.tokenIds).toEqual([0, 1, 2].map(fakeTokenId));
    expect(result.logprobs).toEqual([0, 1, 2].map(fakeLogprob));
    expect(lastChatBody()).toMatchObject({
      logprobs: true,
      return_tokens_as_token_ids: true,
      top_k: 20,
      temperature: 1,
    });
  });

  it('fails the attempt with the server’s message when the endpoint errors', async () => {
    nextReply = () => ({ pieces: [], error: { status: 500, message: 'CUDA out of memory' } });
    const policy = createRemotePolicy({ baseURL: server.baseURL, model: 'base-model', maxRetries: 0 });
    await expect(generate(policy)).rejects.toThrow(/CUDA out of memory/);
  });

  it('ends the attempt as cancelled when the session is aborted mid-stream', async () => {
    nextReply = () => ({ pieces: ['one ', 'two ', 'three ', 'four ', 'five '], delayMs: 40 });
    const controller = new AbortController();
    const policy = createRemotePolicy({ baseURL: server.baseURL, model: 'base-model' });
    const stream = policy.generate(USER, { signal: controller.signal });
    const first = await stream.next();
    expect(first.value).toMatchObject({ text: 'one ' });
    controller.abort();
    let next = await stream.next();
    while (!next.done) next = await stream.next();
    expect(next.value.finishReason).toBe('cancelled');
    expect(next.value.text.startsWith('one ')).toBe(true);
  });

  it('runs a whole feedback session through the session runner', async () => {
    // The fake answers by attempt: wrong first, right once it has seen the feedback.
    nextReply = (body) =>
      body.messages.some((m) => m.content.startsWith('Feedback:'))
        ? { pieces: ['The dog ', 'ran in the park.'] }
        : { pieces: ['The cat ', 'sat.'] };
    const policy = await loadPolicyFromSpec(`openai:${server.baseURL}#base-model`);
    const constraints = parseConstraints([
      { id: 'keywords:existence', kwargs: { keywords: ['dog', 'park'] } },
    ]);
    const parts: SessionPart[] = [];
    for await (const part of runSession(
      { prompt: 'Write one sentence.', constraints },
      { policy: fixedPolicy(policy) },
    )) {
      parts.push(part);
    }
    const ends = parts.filter((p) => p.type === 'attempt:end');
    expect(ends.map((p) => [p.text, p.check.ok, p.policyVersion])).toEqual([
      ['The cat sat.', false, 'base-model'],
      ['The dog ran in the park.', true, 'base-model'],
    ]);
    expect(parts.at(-1)).toMatchObject({ type: 'session:end', ok: true, attempts: 2 });
    expect(lastChatBody().messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
  });
});

describe('policy specs', () => {
  it('parses openai: and vllm: specs and checkpoint directories', () => {
    expect(parsePolicySpec('openai:http://h:8000/v1#meta-llama/Llama-3.2-1B-Instruct')).toEqual({
      kind: 'openai',
      baseURL: 'http://h:8000/v1',
      model: 'meta-llama/Llama-3.2-1B-Instruct',
      vllm: false,
    });
    expect(parsePolicySpec('vllm:https://gpu.example/v1/#v3')).toMatchObject({
      baseURL: 'https://gpu.example/v1',
      model: 'v3',
      vllm: true,
    });
    expect(parsePolicySpec('models/base')).toMatchObject({ kind: 'local' });
  });

  it.each([
    ['openai:http://h:8000/v1', /--policy: expected openai:<baseURL>#<model>/],
    ['openai:http://h:8000/v1#', /--policy: expected openai:<baseURL>#<model>/],
    ['openai:ftp://h/v1#m', /--policy: expected an http\(s\) URL/],
    ['vllm:not a url#m', /--policy: expected an http\(s\) URL/],
  ])('refuses %s, naming the option', (spec, message) => {
    expect(() => parsePolicySpec(spec, '--policy')).toThrow(message);
  });

  it('refuses a directory without a checkpoint', async () => {
    await expect(loadPolicyFromSpec('/nonexistent/ckpt', { field: '--policy' })).rejects.toThrow(
      '--policy: no checkpoint at /nonexistent/ckpt',
    );
  });
});

describe('vLLM runtime LoRA adapters', () => {
  let root: string;
  let adapterDir: string;
  beforeAll(async () => {
    await useBackend('wasm');
    root = mkdtempSync(join(tmpdir(), 'corgi-vllm-test-'));
    // An adapter as our trainer writes it (PEFT files), so the server sees the real layout.
    const model = tinyModel(1);
    attachLora(model, { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'], seed: 1 });
    adapterDir = join(root, 'v3');
    await saveLoraAdapter(model, adapterDir);
    model.dispose();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('loads an adapter our LoRA code wrote, then serves sessions from it by name', async () => {
    expect(
      await loadVllmLoraAdapter({ baseURL: server.baseURL, loraName: 'v3', loraPath: adapterDir }),
    ).toEqual({
      alreadyLoaded: false,
    });
    expect(server.requests.at(-1)).toMatchObject({
      path: '/v1/load_lora_adapter',
      body: { lora_name: 'v3', lora_path: adapterDir },
    });
    expect(server.adapters.get('v3')?.config).toMatchObject({ peft_type: 'LORA', r: 4 });

    nextReply = () => ({ pieces: ['adapted'] });
    const { result } = await generate(createRemotePolicy({ baseURL: server.baseURL, model: 'v3' }));
    expect(result.text).toBe('adapted');
    expect(lastChatBody().model).toBe('v3');

    // A retried promotion finds it loaded already: not an error.
    expect(
      await loadVllmLoraAdapter({ baseURL: server.baseURL, loraName: 'v3', loraPath: adapterDir }),
    ).toEqual({
      alreadyLoaded: true,
    });
    await unloadVllmLoraAdapter({ baseURL: server.baseURL, loraName: 'v3' });
    expect(server.adapters.has('v3')).toBe(false);
    await expect(
      generate(createRemotePolicy({ baseURL: server.baseURL, model: 'v3', maxRetries: 0 })),
    ).rejects.toThrow(/does not exist/);
  });

  it('reports what the server refused, with its status', async () => {
    const missing = loadVllmLoraAdapter({
      baseURL: server.baseURL,
      loraName: 'v4',
      loraPath: join(root, 'nope'),
    });
    await expect(missing).rejects.toThrow(VllmAdapterError);
    await expect(missing).rejects.toThrow(/vLLM refused to load adapter "v4" \(404\): No adapter found for/);
    await expect(unloadVllmLoraAdapter({ baseURL: server.baseURL, loraName: 'v9' })).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining('cannot be found'),
    });
  });
});

describe('corgi serve with CORGI_POLICY=openai:...', () => {
  const root = mkdtempSync(join(tmpdir(), 'corgi-serve-remote-'));
  let serve: ServeProcess | undefined;
  afterAll(async () => {
    await stopGently(serve);
    rmSync(root, { recursive: true, force: true });
  });

  it('serves sessions from the endpoint and logs them under the remote model’s name', async () => {
    nextReply = () => ({ pieces: ['No ', 'commas ', 'here.'] });
    const env = corgiEnv(join(root, 'data'), {
      CORGI_POLICY: `openai:${server.baseURL}#base-model`,
      CORGI_BACKEND: 'cpu',
    });
    serve = await startServe([], env, { timeoutMs: 60_000 });
    const { url } = serve;
    expect(serve.stderr()).toMatch(/policy base-model/);
    const response = await fetch(`${url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Write about a dog.', constraints: [{ id: 'punctuation:no_comma' }] }),
    });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toMatchObject({ ok: true, attempts: 1 });
    const stored = await (await fetch(`${url}/v1/sessions/${body.sessionId}`)).json();
    expect(stored.turns[1]).toMatchObject({
      role: 'assistant',
      text: 'No commas here.',
      policyVersion: 'base-model',
    });
  }, 90_000);
});
