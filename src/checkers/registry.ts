/**
 * The one checker registry: every constraint id the product understands, how its kwargs are
 * validated, and `checkAll`, which scores a response against several constraints and joins
 * their feedback the way the CORGI paper does.
 */
import { z } from 'zod';
import { ConstraintError } from './errors.ts';
import { joinFeedback } from './feedback.ts';
import { idsConflict } from './ifeval/conflicts.ts';
import { ifevalCheckers } from './ifeval/ifeval-checkers.ts';
import { labelOf } from './labels.ts';
import { paperCheckers } from './paper/paper-checkers.ts';
import type { Checker, CheckOutcome, ConstraintSpec, ParsedConstraint } from './types.ts';

/** Every registered checker by id, IFEval's 25 first, then the paper's tasks. */
export const checkers: ReadonlyMap<string, Checker> = new Map(
  [...ifevalCheckers, ...paperCheckers].map((checker) => [checker.id, checker as Checker]),
);

/** A checker by id, or a `ConstraintError` naming `field` when the id is unknown. */
export function getChecker(id: string, field = 'id'): Checker {
  const checker = checkers.get(id);
  if (!checker) {
    throw new ConstraintError(field, `unknown constraint id "${id}"; GET /v1/checkers lists the known ones`);
  }
  return checker;
}

/** Renders a zod issue path as a JSON path suffix: `["keywords", 0]` → `.keywords[0]`. */
function formatPath(path: readonly PropertyKey[]): string {
  return path.map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`)).join('');
}

/**
 * Validates one constraint spec. `field` is where it sits in the request, so errors read
 * `constraints[1].kwargs.num_words: expected number, received string`.
 */
export function parseConstraint(spec: unknown, field = 'constraint'): ParsedConstraint {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new ConstraintError(field, 'expected an object like {"id": "...", "kwargs": {...}}');
  }
  const { id, kwargs, ...rest } = spec as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0)
    throw new ConstraintError(`${field}.${extra[0]}`, 'unknown field; a constraint has id and kwargs');
  if (typeof id !== 'string') throw new ConstraintError(`${field}.id`, 'expected a string');
  const checker = getChecker(id, `${field}.id`);
  const parsed = checker.kwargsSchema.safeParse(kwargs ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConstraintError(`${field}.kwargs${formatPath(issue.path)}`, issue.message);
  }
  return { id, kwargs: parsed.data, checker };
}

/**
 * Validates a list of constraint specs, then rejects combinations IFEval's conflict table forbids.
 * Already parsed constraints pass through unchanged.
 */
export function parseConstraints(specs: unknown, field = 'constraints'): ParsedConstraint[] {
  if (!Array.isArray(specs)) throw new ConstraintError(field, 'expected an array of constraints');
  if (specs.length === 0) throw new ConstraintError(field, 'expected at least one constraint');
  const parsed = specs.map((spec, i) => (isParsed(spec) ? spec : parseConstraint(spec, `${field}[${i}]`)));
  for (let j = 1; j < parsed.length; j++) {
    for (let i = 0; i < j; i++) {
      if (idsConflict(parsed[i].id, parsed[j].id)) {
        throw new ConstraintError(
          `${field}[${j}].id`,
          `"${parsed[j].id}" conflicts with ${field}[${i}] ("${parsed[i].id}"); IFEval does not combine these instructions`,
          { code: 'conflicting_constraints' },
        );
      }
    }
  }
  return parsed;
}

function isParsed(spec: unknown): spec is ParsedConstraint {
  // A function never comes out of JSON, so a client's `{"id": ..., "checker": 1}` is parsed, not trusted.
  return (
    typeof spec === 'object' &&
    spec !== null &&
    typeof (spec as { checker?: { check?: unknown } }).checker?.check === 'function'
  );
}

/** One constraint's part of a `CheckResult`. */
export interface ConstraintResult extends CheckOutcome {
  id: string;
}

/** The check result contract: the combined verdict plus one entry per constraint. */
export interface CheckResult extends CheckOutcome {
  results: ConstraintResult[];
}

/**
 * Scores a response against constraints: score is the mean of the constraint scores, ok is
 * true only when every constraint is ok, feedback joins the failing constraints' messages.
 * Throws `ConstraintError` for invalid constraints; a response that misses is a result.
 */
export function checkAll(
  response: string,
  constraints: readonly (ConstraintSpec | ParsedConstraint)[],
): CheckResult {
  if (typeof response !== 'string') throw new ConstraintError('response', 'expected a string');
  const parsed = parseConstraints(constraints);
  const results: ConstraintResult[] = parsed.map(({ id, kwargs, checker }) => ({
    id,
    ...checker.check(response, kwargs),
  }));
  const score = results.reduce((sum, r) => sum + r.score, 0) / results.length;
  const ok = results.every((r) => r.ok);
  const feedback = joinFeedback(results.filter((r) => !r.ok && r.feedback).map((r) => r.feedback!));
  return { ok, score, feedback: ok ? null : feedback, results };
}

/** What `GET /v1/checkers` and `corgi checkers` list for each checker. */
export interface CheckerInfo {
  id: string;
  /** The checker's name in words ("No commas"), from `CHECKER_LABELS`. */
  label: string;
  description: string;
  kwargsSchema: unknown;
  /** Kwargs that are regular expressions (a plain word list must be escaped for them). */
  patternKwargs: string[];
}

/** Every checker's id, description and kwargs JSON Schema, in registry order. */
export function listCheckers(): CheckerInfo[] {
  return [...checkers.values()].map((checker) => {
    const { label, patternKwargs = [] } = labelOf(checker.id);
    return {
      id: checker.id,
      label,
      description: checker.description,
      kwargsSchema: z.toJSONSchema(checker.kwargsSchema, { io: 'input', unrepresentable: 'any' }),
      patternKwargs,
    };
  });
}
