/**
 * One error type for bad constraint input. It names the offending field (a JSON path such as
 * `constraints[1].kwargs.num_words`) so the CLI, HTTP and socket layers can report it as is.
 */
import { CorgiError } from '../common/errors.ts';

export class ConstraintError extends CorgiError {
  /** The offending field, as a path into the request (`constraints[0].kwargs.keywords`). */
  readonly field: string;
  /** Why the field was refused, without the field name. */
  readonly reason: string;

  constructor(field: string, reason: string, options: { code?: string; cause?: unknown } = {}) {
    super(options.code ?? 'invalid_constraint', `${field}: ${reason}`, options);
    this.field = field;
    this.reason = reason;
  }
}
