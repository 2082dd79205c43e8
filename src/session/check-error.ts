/**
 * Why a check did not produce a verdict: it ran past its time budget (`check_timeout`), or the
 * check pool's queue was full (`checks_busy`). Not a verdict on the response, so never a score.
 */
const MARKER = Symbol.for('corgi.CheckError');

export type CheckErrorCode = 'check_timeout' | 'checks_busy';

export class CheckError extends Error {
  readonly [MARKER] = true;
  override readonly name = 'CheckError';

  constructor(
    readonly code: CheckErrorCode,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
  }

  /** Works across duplicate copies of the package, where `instanceof` does not. */
  static isInstance(error: unknown): error is CheckError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[MARKER] === true;
  }
}
