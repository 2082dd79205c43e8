import { ConstraintError } from '../../src/checkers/errors.ts';
import { getChecker, parseConstraint } from '../../src/checkers/registry.ts';
import type { CheckOutcome } from '../../src/checkers/types.ts';

/**
 * Test helpers for one registered checker: parse kwargs through the registry (as requests are),
 * check a response, and capture the `ConstraintError` that invalid kwargs raise.
 */
export function checkerHarness<K>(id: string) {
  const parse = (kwargs: Record<string, unknown>): K => parseConstraint({ id, kwargs }).kwargs as K;
  return {
    parse,
    check: (response: string, kwargs: Record<string, unknown>): CheckOutcome =>
      getChecker(id).check(response, parse(kwargs)),
    kwargsError(kwargs: unknown): ConstraintError {
      try {
        parseConstraint({ id, kwargs }, 'constraints[0]');
      } catch (error) {
        if (ConstraintError.isInstance(error)) return error;
        throw error;
      }
      throw new Error(`expected ${id} to refuse ${JSON.stringify(kwargs)}`);
    },
  };
}
