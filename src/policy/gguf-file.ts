/**
 * Checks a GGUF file before llama.cpp's native loader sees it: llama.cpp trusts the header, so a
 * truncated download or a corrupt file must be refused here, with the reason, instead of failing
 * (or crashing) inside native code. Our reader (`inspectGguf`) checks the magic, version, metadata,
 * tensor table, and that every tensor's data lies inside the file.
 */

import { CheckpointError } from '../model/checkpoint.ts';
import { inspectGguf } from '../model/gguf/reader.ts';

export interface CheckedGguf {
  path: string;
  /** Bytes on disk. */
  size: number;
  /** Flat metadata (`general.architecture`, `tokenizer.ggml.tokens`, ...). */
  metadata: Record<string, unknown>;
  tensorCount: number;
}

/**
 * Refuses anything that is not a complete GGUF file, with the reason.
 * @throws CheckpointError carrying the reader's `GgufError` as its cause
 */
export async function checkGgufFile(path: string): Promise<CheckedGguf> {
  try {
    const file = await inspectGguf(path);
    return { path, size: file.fileSize, metadata: file.metadata, tensorCount: file.tensors.length };
  } catch (error) {
    const message = (error as Error).message.replace(`${path}: `, '');
    throw new CheckpointError(path, message, { cause: error });
  }
}
