/**
 * One error type for bad constraint input. It names the offending field (a JSON path such as
 * `constraints[1].kwargs.num_words`) so the CLI, HTTP and socket layers can report it as is.
 */
const MARKER = Symbol.for('corgi.ConstraintError');

export class ConstraintError extends Error {
  readonly [MARKER] = true;
  override readonly name = 'ConstraintError';
  readonly code: string;
  /** The offending field, as a path into the request (`constraints[0].kwargs.keywords`). */
  readonly field: string;
  /** Why the field was refused, without the field name. */
  readonly reason: string;

  constructor(field: string, reason: string, options: { code?: string; cause?: unknown } = {}) {
    super(`${field}: ${reason}`, { cause: options.cause });
    this.field = field;
    this.reason = reason;
    this.code = options.code ?? 'invalid_constraint';
  }

  /** Works across duplicate copies of the package, where `instanceof` does not. */
  static isInstance(error: unknown): error is ConstraintError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[MARKER] === true;
  }
}
