/**
 * The one error type of the model store. Its `code` says what went wrong; its message says what to
 * do about it (the CLI prints it as is).
 */
import { CorgiError } from '../../common/errors.ts';

/**
 * - `unknown_model`: a name that is neither installed, in the registry, nor an `owner/repo`.
 * - `invalid_input`: a malformed name, spec, file or directory (the message names which).
 * - `not_installed`: `rm` or a lookup of a name the store does not hold.
 * - `already_installed`: the name is taken (pass `force`).
 * - `checksum_mismatch`: the bytes' sha256 is not the published one.
 * - `truncated`: fewer bytes than the source announced, or a GGUF that ends early.
 * - `corrupt_gguf`: not a GGUF file, or an impossible header.
 * - `unsupported_quantization`: a tensor type the product cannot dequantize.
 * - `network`: no source could be reached.
 * - `aborted`: the caller's signal fired.
 */
export type ModelStoreErrorCode =
  | 'unknown_model'
  | 'invalid_input'
  | 'not_installed'
  | 'already_installed'
  | 'checksum_mismatch'
  | 'truncated'
  | 'corrupt_gguf'
  | 'unsupported_quantization'
  | 'network'
  | 'aborted';

export class ModelStoreError extends CorgiError {
  declare readonly code: ModelStoreErrorCode;

  constructor(code: ModelStoreErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}
