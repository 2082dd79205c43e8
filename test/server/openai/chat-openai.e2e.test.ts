/**
 * The OpenAI-compatible routes through LangChain's `ChatOpenAI` (baseURL = the server's /v1), against
 * a real server serving the built-in model with sessions in the real PostgreSQL. `modelKwargs`
 * carries the `corgi` extension; `__includeRawResponse` exposes the response's `corgi` object.
 * The built-in model writes poor English: structure and consistency are asserted, never quality.
 */
import type { AIMessageChunk } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltinModelServer, startBuiltinModelServer } from '../../support/builtin-model-server.ts';

let stack: BuiltinModelServer;

beforeAll(async () => {
  stack = await startBuiltinModelServer();
}, 60_000);
afterAll(async () => {
  await stack?.close();
});

const CORGI = {
  constraints: [{ id: 'keywords:existence', kwargs: { keywords: ['zebra'] } }],
  max_attempts: 2,
};
const PROMPT = 'Write a sentence about an animal.';

interface Corgi {
  session_id: string;
  ok: boolean;
  answer_attempt: number | null;
  attempts: { attempt: number; text: string; check: { ok: boolean; score: number } }[];
}

function chatModel(fields: ConstructorParameters<typeof ChatOpenAI>[0] = {}) {
  return new ChatOpenAI({
    model: 'base',
    apiKey: stack.key,
    configuration: { baseURL: `${stack.server.url}/v1` },
    temperature: 0,
    maxTokens: 16,
    maxRetries: 0,
    ...fields,
  });
}

const rawOf = (message: { additional_kwargs: Record<string, unknown> }) =>
  message.additional_kwargs.__raw_response as { corgi?: Corgi; usage?: Record<string, number> };

async function streamAll(model: ChatOpenAI) {
  const chunks: AIMessageChunk[] = [];
  for await (const chunk of await model.stream(PROMPT)) chunks.push(chunk);
  return {
    chunks,
    content: chunks.map((c) => c.content as string).join(''),
    reasoning: chunks
      .map((c) => (c.additional_kwargs.reasoning_content as string | undefined) ?? '')
      .join(''),
  };
}

describe('ChatOpenAI against the server', () => {
  it('invokes and streams a plain completion: the same greedy text, with usage metadata', async () => {
    const message = await chatModel().invoke(PROMPT);
    expect(typeof message.content).toBe('string');
    expect(message.response_metadata.model_name).toBe('base');
    expect(message.usage_metadata?.output_tokens).toBeGreaterThan(0);
    expect(message.usage_metadata?.input_tokens).toBeGreaterThan(5);
    const streamed = await streamAll(chatModel({ streaming: true }));
    expect(streamed.content).toBe(message.content);
    expect(streamed.reasoning).toBe('');
    // ChatOpenAI asks for stream usage by default; the server's last chunk answers it.
    const usage = streamed.chunks.find((c) => c.usage_metadata)?.usage_metadata;
    expect(usage).toMatchObject({
      input_tokens: message.usage_metadata!.input_tokens,
      output_tokens: message.usage_metadata!.output_tokens,
    });
  });

  it('runs a CORGI session through modelKwargs: the answer as content, the attempts as reasoning, stored', async () => {
    const model = chatModel({ modelKwargs: { corgi: CORGI }, __includeRawResponse: true });
    const message = await model.invoke(PROMPT);
    const { corgi } = rawOf(message);
    expect(corgi).toBeDefined();
    const answer = corgi!.attempts.find((a) => a.attempt === corgi!.answer_attempt)!;
    expect(message.content).toBe(answer.text);
    const reasoning = message.additional_kwargs.reasoning_content as string;
    expect(reasoning).toContain('Attempt 1 of 2:\n');
    for (const attempt of corgi!.attempts) expect(reasoning).toContain(attempt.text);
    const stored = await fetch(`${stack.server.url}/v1/sessions/${corgi!.session_id}`, {
      headers: { authorization: `Bearer ${stack.key}` },
    }).then((r) => r.json());
    expect(stored).toMatchObject({ status: 'completed', attempts: corgi!.attempts.length, prompt: PROMPT });

    // Streamed, the content is exactly the invoked answer; the attempts arrive as reasoning first.
    const streamed = await streamAll(
      chatModel({ modelKwargs: { corgi: CORGI }, streaming: true, __includeRawResponse: true }),
    );
    expect(streamed.content).toBe(message.content);
    expect(streamed.reasoning).toContain('Attempt 1 of 2:\n');
    expect(streamed.reasoning).toMatch(/Check: score \d\.\d\d/);
    // LangChain drops the raw usage chunk; the finish chunk carries the corgi object too.
    const last = rawOf([...streamed.chunks].reverse().find((c) => rawOf(c)?.corgi)!);
    expect(last.corgi!.attempts.map((a) => a.text)).toEqual(corgi!.attempts.map((a) => a.text));
    expect(last.corgi!.session_id).not.toBe(corgi!.session_id);
    expect(last.corgi!.ok).toBe(corgi!.ok);
  });

  it('surfaces a bad key as the OpenAI AuthenticationError', async () => {
    const error = await chatModel({ apiKey: 'corgi_wrong' })
      .invoke(PROMPT)
      .catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error.status).toBe(401);
  });

  it('surfaces a bad constraint spec as a BadRequestError naming the field', async () => {
    const bad = { constraints: [{ id: 'length_constraints:number_words', kwargs: { num_words: -1 } }] };
    for (const streaming of [false, true]) {
      const error = await chatModel({ modelKwargs: { corgi: bad }, streaming })
        .invoke(PROMPT)
        .catch((e) => e);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error.error).toMatchObject({
        type: 'invalid_request_error',
        code: 'invalid_constraint',
        param: expect.stringMatching(/^corgi\.constraints\[0\]\.kwargs/),
      });
    }
  });
});
