/**
 * Why a check did not produce a verdict: it ran past its time budget (`check_timeout`), or the
 * check pool's queue was full (`checks_busy`). Not a verdict on the response, so never a score.
 */
import { CorgiError } from '../common/errors.ts';

export type CheckErrorCode = 'check_timeout' | 'checks_busy';

export class CheckError extends CorgiError {
  declare readonly code: CheckErrorCode;

  constructor(code: CheckErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}
