export { ConstraintError } from './errors.ts';
export {
  type CheckResult,
  type CheckerInfo,
  type ConstraintResult,
  checkAll,
  checkers,
  getChecker,
  joinFeedback,
  listCheckers,
  parseConstraint,
  parseConstraints,
} from './registry.ts';
export type { CheckOutcome, Checker, ConstraintSpec, ParsedConstraint } from './types.ts';
