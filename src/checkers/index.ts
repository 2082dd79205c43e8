export { type CheckRequest, parseCheckRequest, runCheckRequest } from './check-request.ts';
export { ConstraintError } from './errors.ts';
export { joinFeedback } from './feedback.ts';
export {
  type CheckerInfo,
  type CheckResult,
  type ConstraintResult,
  checkAll,
  checkers,
  getChecker,
  listCheckers,
  parseConstraint,
  parseConstraints,
} from './registry.ts';
export type { Checker, CheckOutcome, ConstraintSpec, ParsedConstraint } from './types.ts';
