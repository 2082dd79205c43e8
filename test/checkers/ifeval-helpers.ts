/** Small helpers for the IFEval family tests: parse kwargs with a checker's schema, then check. */
import type { Checker, CheckOutcome } from '../../src/checkers/types.ts';

/** Parses `kwargs` with the checker's schema (throws on invalid kwargs) and checks `response`. */
export function check<K>(checker: Checker<K>, kwargs: unknown, response: string): CheckOutcome {
  return checker.check(response, checker.kwargsSchema.parse(kwargs));
}

/** The checker's sentence for these kwargs. */
export function describeWith<K>(checker: Checker<K>, kwargs: unknown): string {
  return checker.describe(checker.kwargsSchema.parse(kwargs));
}

/** The first kwargs issue as `path: message`, or null when the kwargs are valid. */
export function kwargsError<K>(checker: Checker<K>, kwargs: unknown): string | null {
  const result = checker.kwargsSchema.safeParse(kwargs);
  if (result.success) return null;
  const issue = result.error.issues[0];
  return `${issue.path.join('.')}: ${issue.message}`;
}
