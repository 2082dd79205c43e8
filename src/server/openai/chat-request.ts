/**
 * The body of `POST /v1/chat/completions`, as OpenAI's clients send it, validated once and turned
 * into what the policy or the session service takes. Errors name the field in OpenAI's own terms
 * (`top_p`, `messages[1].content`, `corgi.constraints[0].kwargs.keywords`).
 *
 * - Supported: `model`, `messages`, `temperature`, `top_p`, `top_k` (as vLLM), `max_tokens` /
 *   `max_completion_tokens`, `stop`, `seed`, `n` (1 only), `stream`, `stream_options.include_usage`,
 *   and `corgi: {constraints, max_attempts?}`.
 * - Accepted without effect: `user`, `metadata`, `store`, `service_tier`, `prompt_cache_key`,
 *   `prompt_cache_retention`, `safety_identifier`, `parallel_tool_calls`, and `null` for any field.
 * - Refused unless neutral (tools, logprobs, penalties, JSON mode, audio …): the model cannot honour
 *   them, and answering as if it had would mislead the client.
 * - Anything else is refused as unknown, as OpenAI does.
 */
import { z } from 'zod';
import { parseConstraints } from '../../checkers/registry.ts';
import type { ChatMessage, SamplingOptions } from '../../policy/types.ts';
import { DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS_LIMIT } from '../../session/session-runner.ts';
import { HttpError } from '../http-error.ts';
import {
  assertStorable,
  BODY_REQUIRED,
  MAX_CONSTRAINTS,
  MAX_PROMPT_CHARS,
  MAX_TOKENS_LIMIT,
  parseOrThrow,
  type SessionStartRequest,
} from '../schemas.ts';

const invalid = (message: string) => new HttpError(400, 'invalid_request', message);

/** The `corgi` extension: a CORGI session instead of one plain generation. */
export const CorgiOptionsSchema = z.strictObject({
  constraints: z
    .array(z.unknown())
    .min(1, 'at least one constraint')
    .max(MAX_CONSTRAINTS)
    .describe('constraint specs, as everywhere else: [{"id", "kwargs"}]'),
  max_attempts: z
    .number()
    .int()
    .min(1)
    .max(MAX_ATTEMPTS_LIMIT)
    .describe('attempts, the first included')
    .default(DEFAULT_MAX_ATTEMPTS),
});

/** The fields this server reads; `messages` is the only required one. */
const ChatBodySchema = z
  .object({
    model: z.string().max(200).describe('a served version from GET /v1/models; others get the live one'),
    temperature: z.number().min(0).max(2).describe('softmax temperature; 0 is greedy'),
    top_p: z.number().gt(0).max(1).describe('nucleus sampling mass'),
    top_k: z.number().int().min(0).max(10_000).describe('keep the k most likely tokens; 0 disables'),
    max_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).describe('tokens per attempt'),
    max_completion_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).describe('tokens per attempt'),
    stop: z.union(
      [z.string().min(1).max(64), z.array(z.string().min(1).max(64)).max(8)],
      'expected a string or an array of at most 8 strings of 1 to 64 characters',
    ),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
    n: z.number().refine((n) => n === 1, 'only n=1 is supported (one choice per request); send n requests'),
    stream: z.boolean(),
    stream_options: z.object({ include_usage: z.boolean().optional() }),
    corgi: CorgiOptionsSchema,
  })
  .partial()
  .extend({ messages: z.array(z.unknown()).min(1, 'at least one message') });

/** Fields clients send that change nothing here. */
const IGNORED = new Set([
  'user',
  'metadata',
  'store',
  'service_tier',
  'prompt_cache_key',
  'prompt_cache_retention',
  'safety_identifier',
  'parallel_tool_calls',
]);

/** Fields the model cannot honour, with the values that ask for nothing (sent by some clients anyway). */
const UNSUPPORTED: Record<string, (value: unknown) => boolean> = {
  frequency_penalty: (v) => v === 0,
  presence_penalty: (v) => v === 0,
  logit_bias: (v) => typeof v === 'object' && v !== null && Object.keys(v).length === 0,
  logprobs: (v) => v === false,
  top_logprobs: (v) => v === 0,
  response_format: (v) => (v as { type?: unknown })?.type === 'text',
  tools: (v) => Array.isArray(v) && v.length === 0,
  tool_choice: (v) => v === 'none',
  functions: (v) => Array.isArray(v) && v.length === 0,
  function_call: (v) => v === 'none',
  modalities: (v) => Array.isArray(v) && v.every((m) => m === 'text'),
  audio: () => false,
  prediction: () => false,
  reasoning_effort: () => false,
  verbosity: () => false,
  web_search_options: () => false,
};

const ROLES: Record<string, ChatMessage['role']> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  assistant: 'assistant',
};

/** One message's text: a string, or text parts (joined by newlines, as vLLM does). */
function messageText(content: unknown, field: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalid(`${field}: expected a string or an array of text parts`);
  return content
    .map((part, j) => {
      const type = (part as { type?: unknown })?.type;
      if (type !== 'text')
        throw invalid(`${field}[${j}].type: only "text" parts are supported, got ${JSON.stringify(type)}`);
      const text = (part as { text?: unknown }).text;
      if (typeof text !== 'string') throw invalid(`${field}[${j}].text: expected a string`);
      return text;
    })
    .join('\n');
}

function parseMessage(message: unknown, i: number): ChatMessage {
  const field = `messages[${i}]`;
  if (typeof message !== 'object' || message === null || Array.isArray(message))
    throw invalid(`${field}: expected an object {"role", "content"}`);
  const { role, content, name: _name, ...rest } = message as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) {
    const why = /tool|function/.test(extra) ? 'this server has no tools' : 'unknown field';
    throw invalid(`${field}.${extra}: ${why}`);
  }
  const mapped = typeof role === 'string' ? ROLES[role] : undefined;
  if (!mapped) {
    throw invalid(
      `${field}.role: expected "system", "developer", "user" or "assistant", got ${JSON.stringify(role)}` +
        (role === 'tool' || role === 'function' ? ' (this server has no tools)' : ''),
    );
  }
  return { role: mapped, content: messageText(content, `${field}.content`) };
}

/** A chat completion request, validated: one generation, or a CORGI session. */
export type ChatRequest = {
  /** The `model` the client named, if any. */
  model?: string;
  stream: boolean;
  includeUsage: boolean;
} & (
  | { mode: 'plain'; messages: ChatMessage[]; sampling: SamplingOptions }
  | { mode: 'corgi'; session: SessionStartRequest }
);

/** Validates a request body; throws a 400 `HttpError` or `ConstraintError` naming the field. */
export function parseChatRequest(input: unknown): ChatRequest {
  if (input === undefined) throw invalid(BODY_REQUIRED);
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw invalid('body: expected a JSON object');
  // `null` means "not given" to many clients; the schema sees only the fields that carry a value.
  const given = Object.fromEntries(Object.entries(input).filter(([, value]) => value !== null));
  const known = new Set(Object.keys(ChatBodySchema.shape));
  const checked: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(given)) {
    if (known.has(key)) checked[key] = value;
    else if (key in UNSUPPORTED) {
      if (!UNSUPPORTED[key](value)) throw invalid(`${key}: not supported by this server`);
    } else if (!IGNORED.has(key)) {
      // A key that is not a plain name is quoted, so the message still starts with a visible field.
      const name = /^[A-Za-z_][\w-]*$/.test(key) ? key : JSON.stringify(key);
      throw invalid(`${name}: unknown field for a chat completion`);
    }
  }
  const body = parseOrThrow(ChatBodySchema, checked);
  if (
    body.max_tokens !== undefined &&
    body.max_completion_tokens !== undefined &&
    body.max_tokens !== body.max_completion_tokens
  ) {
    throw invalid(
      `max_completion_tokens: ${body.max_completion_tokens} disagrees with max_tokens ${body.max_tokens}; send one`,
    );
  }
  const sampling: SamplingOptions = Object.fromEntries(
    Object.entries({
      temperature: body.temperature,
      topP: body.top_p,
      topK: body.top_k,
      maxTokens: body.max_completion_tokens ?? body.max_tokens,
      stop: typeof body.stop === 'string' ? [body.stop] : body.stop,
      seed: body.seed,
    }).filter(([, value]) => value !== undefined),
  );
  const messages = body.messages.map(parseMessage);
  const common = {
    model: body.model,
    stream: body.stream ?? false,
    includeUsage: body.stream_options?.include_usage ?? false,
  };
  if (!body.corgi) return { ...common, mode: 'plain', messages, sampling };

  // The session's conversation is the prompt, the attempts and the checker's feedback: earlier
  // turns or a system message would be shown to the first attempt only and lost from the record.
  if (messages.length !== 1 || messages[0].role !== 'user') {
    throw invalid(
      `messages: with "corgi", send exactly one user message (the prompt; it may be empty, then the ` +
        `constraints alone are the instruction), got ${messages.map((m) => m.role).join(', ')}`,
    );
  }
  const prompt = messages[0].content.trim() ? messages[0].content : undefined;
  if (prompt !== undefined && prompt.length > MAX_PROMPT_CHARS)
    throw invalid(`messages[0].content: at most ${MAX_PROMPT_CHARS} characters with "corgi"`);
  const constraints = parseConstraints(body.corgi.constraints, 'corgi.constraints');
  const session = { prompt, constraints, maxAttempts: body.corgi.max_attempts, sampling };
  assertStorable({ messages: [{ content: prompt ?? '' }], corgi: { constraints: body.corgi.constraints } });
  return { ...common, mode: 'corgi', session };
}
