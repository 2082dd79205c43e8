/**
 * zod schemas for everything clients send: validation and documentation in one place. Types do
 * not validate socket payloads (socket.io's own docs warn about it), so every payload goes
 * through `parseOrThrow`, which names the offending field.
 */
import { z } from 'zod';
import { parseConstraints } from '../checkers/registry.ts';
import { DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS_LIMIT } from '../session/session-runner.ts';
import { HttpError } from './http-error.ts';

/** Longest prompt accepted, in characters. */
export const MAX_PROMPT_CHARS = 8_000;
/** Most constraints in one session. */
export const MAX_CONSTRAINTS = 16;
/** Most tokens one attempt may ask for. */
export const MAX_TOKENS_LIMIT = 512;

export const SamplingSchema = z
  .strictObject({
    temperature: z.number().min(0).max(2).describe('softmax temperature; 0 is greedy').optional(),
    topK: z
      .number()
      .int()
      .min(0)
      .max(10_000)
      .describe('keep the k most likely tokens; 0 disables')
      .optional(),
    topP: z.number().gt(0).max(1).describe('nucleus sampling mass').optional(),
    maxTokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).describe('tokens per attempt').optional(),
    stop: z.array(z.string().min(1).max(64)).max(8).describe('stop sequences').optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .describe('seed for reproducible sampling')
      .optional(),
  })
  .describe('sampling options');

export const SessionStartSchema = z.strictObject({
  prompt: z
    .string()
    .max(MAX_PROMPT_CHARS, `at most ${MAX_PROMPT_CHARS} characters`)
    .describe("the writer's prompt; without one the constraints alone are the instruction")
    .optional(),
  constraints: z.array(z.unknown()).min(1, 'at least one constraint').max(MAX_CONSTRAINTS),
  maxAttempts: z.number().int().min(1).max(MAX_ATTEMPTS_LIMIT).default(DEFAULT_MAX_ATTEMPTS),
  sampling: SamplingSchema.default({}),
});

export const SessionCancelSchema = z.strictObject({ sessionId: z.uuid() });

/**
 * NUL characters and unpaired UTF-16 surrogates: PostgreSQL stores neither (text refuses NUL, jsonb
 * refuses both escapes), so a request carrying one is refused up front rather than failing its insert.
 */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNSTORABLE_MESSAGE = 'must not contain NUL characters or unpaired surrogates (they cannot be stored)';

/** The path of the first string in `value` that PostgreSQL cannot store, or null. */
function findUnstorable(value: unknown, path: (string | number)[] = []): (string | number)[] | null {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path : null;
  if (typeof value !== 'object' || value === null) return null;
  for (const [key, item] of Object.entries(value)) {
    if (UNSTORABLE.test(key)) return [...path, key];
    const found = findUnstorable(item, [...path, Array.isArray(value) ? Number(key) : key]);
    if (found) return found;
  }
  return null;
}

export const RatingSchema = z.strictObject({
  rating: z.number().int().min(-1).max(5).describe('-1 (bad) .. 5 (great)'),
  comment: z
    .string()
    .max(2_000)
    .refine((comment) => !UNSTORABLE.test(comment), UNSTORABLE_MESSAGE)
    .optional(),
});

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)),
    '',
  );
}

/** The refusal of a missing body, saying what to send. */
export const BODY_REQUIRED =
  'body: required: a JSON object (over HTTP, sent with "Content-Type: application/json")';

/** Parses `input` or throws a 400 `HttpError` whose message starts with the offending field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, root = 'body'): z.output<S> {
  // express leaves the body undefined when none came: say what to send.
  if (input === undefined && root === 'body') throw new HttpError(400, 'invalid_request', BODY_REQUIRED);
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = formatPath(issue.path) || root;
  throw new HttpError(400, 'invalid_request', `${field}: ${issue.message}`);
}

/** Throws a 400 naming the first string in `request` that PostgreSQL cannot store. */
export function assertStorable(request: unknown): void {
  const unstorable = findUnstorable(request);
  if (unstorable)
    throw new HttpError(400, 'invalid_request', `${formatPath(unstorable) || 'body'}: ${UNSTORABLE_MESSAGE}`);
}

/** A validated session request with parsed constraints. */
export function parseSessionStart(input: unknown) {
  const request = parseOrThrow(SessionStartSchema, input);
  const constraints = parseConstraints(request.constraints);
  assertStorable(request);
  return { ...request, constraints };
}
export type SessionStartRequest = ReturnType<typeof parseSessionStart>;
