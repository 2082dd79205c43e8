/**
 * The one error type of the GGUF reader and dequantizer. Its `code` says what kind of problem the
 * file has; its message names the key or tensor and the numbers involved, so the store and the CLI
 * can show it as is.
 */
import { CorgiError } from '../../common/errors.ts';

/**
 * - `bad_magic`: the file does not start with "GGUF".
 * - `unsupported_version`: a GGUF version other than 2 or 3 (or a big-endian file).
 * - `truncated`: something runs past the end of the file.
 * - `corrupt`: an impossible value (a count, a dimension, an offset, a duplicate name, a bad type id).
 * - `unsupported_type`: a tensor type this reader does not know, or cannot dequantize.
 * - `incomplete`: `parseGgufHeader` was given a prefix of the file too short to hold the header;
 *   `needBytes` says how long a prefix it needs (`inspectGguf` handles this itself).
 * - `io`: the file could not be opened or read.
 */
export type GgufErrorCode =
  | 'bad_magic'
  | 'unsupported_version'
  | 'truncated'
  | 'corrupt'
  | 'unsupported_type'
  | 'incomplete'
  | 'io';

export class GgufError extends CorgiError {
  /** For `incomplete`: the prefix length (bytes from the start of the file) the parser needs. */
  readonly needBytes?: number;

  declare readonly code: GgufErrorCode;

  constructor(code: GgufErrorCode, message: string, options: { cause?: unknown; needBytes?: number } = {}) {
    super(code, message, { cause: options.cause });
    if (options.needBytes !== undefined) this.needBytes = options.needBytes;
  }
}
