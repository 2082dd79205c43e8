/**
 * A check request as `corgi check` and `POST /v1/check` accept it, in either of two forms:
 *   ours:   {"response": "...", "constraints": [{"id": "...", "kwargs": {...}}, ...]}
 *   IFEval: {"response": "...", "instruction_id_list": ["..."], "kwargs": [{...}, ...]}
 * IFEval's input files also carry `key` and `prompt`; those are accepted and ignored, and IFEval's
 * null-valued kwargs ("not used by this instruction") are dropped.
 */
import { ConstraintError } from './errors.ts';
import { type CheckResult, checkAll, parseConstraints } from './registry.ts';
import type { ParsedConstraint } from './types.ts';

export interface CheckRequest {
  response: string;
  constraints: ParsedConstraint[];
}

/** Errors in the request's shape, not in a constraint: `invalid_request`, as every route's body errors. */
const BODY = { code: 'invalid_request' };

const OUR_FIELDS = new Set(['response', 'constraints']);
const IFEVAL_FIELDS = new Set(['response', 'instruction_id_list', 'kwargs', 'key', 'prompt']);

/** Validates a decoded JSON request; throws `ConstraintError` naming the offending field. */
export function parseCheckRequest(body: unknown): CheckRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ConstraintError('request', 'expected a JSON object with "response" and "constraints"', BODY);
  }
  const request = body as Record<string, unknown>;
  const ifevalForm = 'instruction_id_list' in request;
  const known = ifevalForm ? IFEVAL_FIELDS : OUR_FIELDS;
  for (const field of Object.keys(request)) {
    if (!known.has(field)) {
      const hint = ifevalForm ? 'response, instruction_id_list, kwargs' : 'response, constraints';
      // An empty key would make the message start with ": "; quote it so the field is visible.
      throw new ConstraintError(
        field === '' ? '""' : field,
        `unknown field; a check request has ${hint}`,
        BODY,
      );
    }
  }
  if (!('response' in request)) throw new ConstraintError('response', 'required', BODY);
  if (typeof request.response !== 'string') throw new ConstraintError('response', 'expected a string', BODY);
  if (!ifevalForm && !('constraints' in request)) throw new ConstraintError('constraints', 'required', BODY);
  const constraints = ifevalForm ? parseIfevalConstraints(request) : parseConstraints(request.constraints);
  return { response: request.response, constraints };
}

function parseIfevalConstraints(request: Record<string, unknown>): ParsedConstraint[] {
  const ids = request.instruction_id_list;
  if (!Array.isArray(ids))
    throw new ConstraintError('instruction_id_list', 'expected an array of instruction ids');
  const kwargsList = request.kwargs ?? ids.map(() => ({}));
  if (!Array.isArray(kwargsList))
    throw new ConstraintError('kwargs', 'expected an array with one object per instruction');
  if (kwargsList.length !== ids.length) {
    throw new ConstraintError(
      'kwargs',
      `expected ${ids.length} entries (one per instruction_id_list entry), got ${kwargsList.length}`,
    );
  }
  const specs = ids.map((id, i) => {
    const kwargs = kwargsList[i] ?? {};
    if (typeof kwargs !== 'object' || Array.isArray(kwargs)) {
      throw new ConstraintError(`kwargs[${i}]`, 'expected an object');
    }
    const present = Object.entries(kwargs as Record<string, unknown>).filter(([, value]) => value !== null);
    return { id, kwargs: Object.fromEntries(present) };
  });
  try {
    return parseConstraints(specs);
  } catch (error) {
    // Report IFEval-form errors in IFEval's own field names.
    if (ConstraintError.isInstance(error)) {
      const field = error.field
        .replace(/^constraints\[(\d+)\]\.id$/, 'instruction_id_list[$1]')
        .replace(/^constraints\[(\d+)\]\.kwargs/, 'kwargs[$1]')
        .replace(/^constraints$/, 'instruction_id_list');
      throw new ConstraintError(field, error.reason, { code: error.code });
    }
    throw error;
  }
}

/** Parses and checks in one call: what `corgi check` does per request. */
export function runCheckRequest(body: unknown): CheckResult {
  const { response, constraints } = parseCheckRequest(body);
  return checkAll(response, constraints);
}
