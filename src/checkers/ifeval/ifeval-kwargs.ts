/**
 * Building blocks shared by the IFEval checker families: kwargs schemas with IFEval's names and
 * clear messages, the `less than` / `at least` relation, count feedback, and
 * `defineIfevalChecker`, which applies IFEval's evaluation rule that an empty response follows no
 * instruction (evaluation_lib.test_instruction_following_strict: `response.strip() and
 * instruction.check_following(response)`).
 */
import { z } from 'zod';
import { isBlank, pyStrip } from '../../text/python.ts';
import { type Checker, type CheckerDefinition, type CheckOutcome, defineChecker } from '../types.ts';

/** IFEval's comparison relations (instructions._COMPARISON_RELATION). */
export const RELATIONS = ['less than', 'at least'] as const;
export type Relation = (typeof RELATIONS)[number];

/** `less than` or `at least`, required. */
export function relationSchema() {
  return z
    .enum(RELATIONS, {
      error: (issue) =>
        issue.input === undefined
          ? 'required: "less than" or "at least"'
          : `must be "less than" or "at least", got ${JSON.stringify(issue.input)}`,
    })
    .describe('"less than" (count < threshold) or "at least" (count ≥ threshold)');
}

/**
 * A required whole number ≥ 1. IFEval draws a random value when a count is missing or negative;
 * a service must not, so the count is required and a zero or negative one is refused.
 */
export function countSchema(what: string) {
  return z
    .number({
      error: (issue) =>
        issue.input === undefined
          ? `required: ${what} (a whole number ≥ 1)`
          : `must be a whole number ≥ 1 (${what}), got ${JSON.stringify(issue.input)}`,
    })
    .int({ error: (issue) => `must be a whole number ≥ 1 (${what}), got ${JSON.stringify(issue.input)}` })
    .min(1, { error: (issue) => `must be ≥ 1 (${what}), got ${JSON.stringify(issue.input)}` })
    .describe(what);
}

/** A required string that is not empty after Python's `strip()`; stripped when `strip` is set (as IFEval does). */
export function textSchema(what: string, { strip = false }: { strip?: boolean } = {}) {
  const base = z
    .string({
      error: (issue) =>
        issue.input === undefined
          ? `required: ${what}`
          : `must be a string (${what}), got ${JSON.stringify(issue.input)}`,
    })
    .refine((s) => !isBlank(s), { error: `must not be empty or whitespace only (${what})` })
    .describe(what);
  return strip ? base.transform(pyStrip) : base;
}

/** `z.strictObject` whose unknown-key error names the keys IFEval expects. */
export function kwargsObject<T extends z.ZodRawShape>(shape: T) {
  const expected = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown kwarg${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; ${
            expected.length
              ? `expected ${expected.map((k) => `"${k}"`).join(', ')}`
              : 'this instruction takes none'
          }`
        : undefined,
  });
}

/** Kwargs of the instructions that take none: `{}`. */
export const noKwargs = () => kwargsObject({});

/** The relation as IFEval evaluates it: `less than` is `<`, `at least` is `>=`. */
export function meetsRelation(count: number, relation: Relation, threshold: number): boolean {
  return relation === 'less than' ? count < threshold : count >= threshold;
}

/** "at least 300" or "fewer than 300": the bound in plain words for feedback. */
export function describeBound(relation: Relation, threshold: number): string {
  return `${relation === 'less than' ? 'fewer than' : 'at least'} ${threshold}`;
}

/** "1 word", "2 words". */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralForm}`;
}

/** `"a", "b"` for feedback lists. */
export function quoteList(items: readonly string[]): string {
  return items.map((item) => JSON.stringify(item)).join(', ');
}

/**
 * Score for a count that must reach `at least` a threshold: the fraction reached. `less than` has
 * no natural fraction, so it is pass/fail. `ok` is always IFEval's verdict.
 */
export function relationScore(count: number, relation: Relation, threshold: number): number {
  if (meetsRelation(count, relation, threshold)) return 1;
  return relation === 'at least' ? count / threshold : 0;
}

export const EMPTY_RESPONSE: CheckOutcome = {
  ok: false,
  score: 0,
  feedback: 'Your response is empty; write an answer that follows the instruction.',
};

/**
 * `defineChecker` plus IFEval's rule that an empty or whitespace-only response follows no
 * instruction (even "no commas").
 */
export function defineIfevalChecker<S extends z.ZodType>(
  checker: CheckerDefinition<S>,
): Checker<z.output<S>> {
  const { check } = checker;
  return defineChecker({
    ...checker,
    check: (response, kwargs) => (isBlank(response) ? EMPTY_RESPONSE : check(response, kwargs)),
  });
}
