import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConstraintError } from '../../../src/checkers/errors.ts';
import { HttpError } from '../../../src/server/http-error.ts';
import { parseChatRequest } from '../../../src/server/openai/chat-request.ts';
import { MAX_PROMPT_CHARS } from '../../../src/server/schemas.ts';

const USER = { role: 'user', content: 'Write about a dog.' };
const CORGI = { constraints: [{ id: 'punctuation:no_comma' }] };

/** The message of the error `parseChatRequest(body)` throws. */
function refusal(body: unknown): string {
  try {
    parseChatRequest(body);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('parseChatRequest', () => {
  it('maps OpenAI sampling fields to the policy options and treats null as not given', () => {
    const request = parseChatRequest({
      model: 'base',
      messages: [USER],
      temperature: 0.5,
      top_p: 0.9,
      max_completion_tokens: 12,
      stop: '\n',
      seed: 3,
      n: 1,
      user: 'someone',
      logit_bias: null,
      frequency_penalty: 0,
      tools: [],
      response_format: { type: 'text' },
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(request).toEqual({
      model: 'base',
      stream: true,
      includeUsage: true,
      mode: 'plain',
      messages: [{ role: 'user', content: 'Write about a dog.' }],
      sampling: { temperature: 0.5, topP: 0.9, maxTokens: 12, stop: ['\n'], seed: 3 },
    });
  });

  it('reads developer messages as system ones and joins text parts', () => {
    const request = parseChatRequest({
      messages: [
        { role: 'developer', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'one' },
            { type: 'text', text: 'two' },
          ],
          name: 'x',
        },
      ],
    });
    expect(request.mode === 'plain' && request.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'one\ntwo' },
    ]);
  });

  it('makes a CORGI session request; an empty prompt leaves the constraints alone as the instruction', () => {
    const request = parseChatRequest({ messages: [{ role: 'user', content: '  ' }], corgi: CORGI, seed: 1 });
    expect(request.mode).toBe('corgi');
    if (request.mode !== 'corgi') return;
    expect(request.session).toMatchObject({ prompt: undefined, maxAttempts: 4, sampling: { seed: 1 } });
    expect(request.session.constraints.map((c) => c.id)).toEqual(['punctuation:no_comma']);
  });

  it.each([
    [undefined, /^body: required/],
    [[USER], /^body: expected a JSON object/],
    [{ messages: [] }, /^messages: /],
    [{ messages: [USER], max_tokens: 5, max_completion_tokens: 6 }, /^max_completion_tokens: .*disagrees/],
    [{ messages: [USER], max_tokens: 513 }, /^max_tokens: /],
    [{ messages: [USER], seed: -1 }, /^seed: /],
    [{ messages: [USER], stop: ['a', ''] }, /^stop\[1\]: /],
    [{ messages: [USER], n: 3 }, /^n: only n=1 is supported/],
    [{ messages: [USER], frequency_penalty: 0.5 }, /^frequency_penalty: not supported/],
    [{ messages: [USER], response_format: { type: 'json_object' } }, /^response_format: not supported/],
    [{ messages: [USER], logprobs: true }, /^logprobs: not supported/],
    [{ messages: [USER], '': 1 }, /^"": unknown field/],
    [{ messages: [{ role: 'tool', content: 'x' }] }, /^messages\[0\]\.role: .*no tools/],
    [
      { messages: [{ role: 'assistant', content: null, tool_calls: [] }] },
      /^messages\[0\]\.tool_calls: .*no tools/,
    ],
    [{ messages: [{ role: 'user' }] }, /^messages\[0\]\.content: expected a string/],
    [
      { messages: [USER, USER], corgi: CORGI },
      /^messages: with "corgi", send exactly one user message.*user, user$/,
    ],
    [
      { messages: [{ role: 'user', content: 'x'.repeat(MAX_PROMPT_CHARS + 1) }], corgi: CORGI },
      /^messages\[0\]\.content: at most/,
    ],
    [
      { messages: [{ role: 'user', content: 'a\u0000b' }], corgi: CORGI },
      /^messages\[0\]\.content: must not contain NUL/,
    ],
    [
      { messages: [USER], corgi: { constraints: [{ id: 'keywords:existence' }] } },
      /^corgi\.constraints\[0\]\.kwargs/,
    ],
    [{ messages: [USER], corgi: { ...CORGI, max_attempts: 0 } }, /^corgi\.max_attempts: /],
  ])('refuses %j naming the field', (body, message) => {
    expect(refusal(body)).toMatch(message);
  });
});

/** Near-valid bodies: real field names with right, wrong and extreme values, plus arbitrary JSON. */
const chatBody = fc.oneof(
  fc.record(
    {
      model: fc.oneof(fc.constant('base'), fc.jsonValue()),
      messages: fc.oneof(
        fc.array(
          fc.record(
            {
              role: fc.oneof(
                fc.constantFrom('system', 'developer', 'user', 'assistant', 'tool'),
                fc.jsonValue(),
              ),
              content: fc.oneof(
                fc.string({ maxLength: 40 }),
                fc.array(fc.record({ type: fc.constantFrom('text', 'image_url'), text: fc.jsonValue() })),
                fc.jsonValue(),
              ),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
        fc.jsonValue(),
      ),
      temperature: fc.oneof(fc.double({ min: -1, max: 3 }), fc.jsonValue()),
      max_tokens: fc.oneof(fc.integer({ min: -5, max: 600 }), fc.jsonValue()),
      stop: fc.oneof(fc.string({ maxLength: 70 }), fc.array(fc.string({ maxLength: 70 }), { maxLength: 10 })),
      n: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.jsonValue()),
      frequency_penalty: fc.oneof(fc.constant(0), fc.jsonValue()),
      corgi: fc.oneof(
        fc.record(
          {
            constraints: fc.oneof(
              fc.constant([{ id: 'punctuation:no_comma' }]),
              fc.array(fc.record({ id: fc.string({ maxLength: 30 }), kwargs: fc.jsonValue() }), {
                maxLength: 3,
              }),
              fc.jsonValue(),
            ),
            max_attempts: fc.oneof(fc.integer({ min: -1, max: 12 }), fc.jsonValue()),
          },
          { requiredKeys: [] },
        ),
        fc.jsonValue(),
      ),
    },
    { requiredKeys: [] },
  ),
  fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  fc.jsonValue({ maxDepth: 3 }),
);

describe('parseChatRequest on generated bodies', () => {
  it('accepts the body or refuses it with a 4xx whose message starts with a field of the body', () => {
    fc.assert(
      fc.property(chatBody, (body) => {
        try {
          parseChatRequest(body);
        } catch (error) {
          const status = ConstraintError.isInstance(error) ? 400 : (error as HttpError).status;
          if (!(error instanceof HttpError) && !ConstraintError.isInstance(error)) throw error;
          expect(status).toBe(400);
          const keys =
            typeof body === 'object' && body !== null && !Array.isArray(body) ? Object.keys(body) : [];
          const message = (error as Error).message;
          // A missing required field is named too; odd keys are quoted.
          const roots = ['body', 'messages', ...keys, ...keys.map((key) => JSON.stringify(key))];
          const named = roots.some((root) =>
            [': ', '.', '['].some((next) => message.startsWith(`${root}${next}`)),
          );
          expect(named, message).toBe(true);
        }
      }),
      { seed: 20_261_207, numRuns: 3_000 },
    );
  });
});
