/**
 * Writing a byte stream to a file while hashing it, so a download is verified as it lands and a
 * resumed one re-hashes only what is already on disk.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { ModelStoreError } from './model-store-error.ts';

/** The sha256 (hex) of a whole file. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A hash fed with the first bytes of `path` (all of them), and how many there were; 0 when absent. */
export async function hashExistingPrefix(path: string): Promise<{ hash: Hash; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    await stat(path);
  } catch {
    return { hash, bytes };
  }
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hash, bytes };
}

export interface AppendOptions {
  /** Bytes already in the file (the write starts there). */
  offset: number;
  hash: Hash;
  /** Called with the file's new length after each chunk. */
  onBytes?: (bytes: number) => void;
  signal?: AbortSignal;
}

/**
 * Appends `chunks` to `path` at `offset` (the file is cut there first), hashing what it writes.
 * Returns the file's length after the last chunk; a failed stream leaves what was written, so the
 * caller can resume from there.
 */
export async function appendHashed(
  path: string,
  chunks: AsyncIterable<Uint8Array>,
  { offset, hash, onBytes, signal }: AppendOptions,
): Promise<number> {
  const handle = await open(path, offset > 0 ? 'r+' : 'w');
  let position = offset;
  try {
    await handle.truncate(offset);
    for await (const chunk of chunks) {
      if (signal?.aborted) throw new ModelStoreError('aborted', 'pull aborted', { cause: signal.reason });
      let written = 0;
      while (written < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, written, chunk.byteLength - written, position);
        written += bytesWritten;
        position += bytesWritten;
      }
      hash.update(chunk);
      onBytes?.(position);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return position;
}

/** @throws ModelStoreError `truncated` or `checksum_mismatch`, naming `what` and both values */
export function checkDigest(
  what: string,
  { size, sha256 }: { size: number; sha256: string },
  expected: { size?: number; sha256?: string },
): void {
  if (expected.size !== undefined && size !== expected.size) {
    throw new ModelStoreError(
      size < expected.size ? 'truncated' : 'checksum_mismatch',
      `${what}: ${size} bytes, expected ${expected.size}`,
    );
  }
  if (expected.sha256 !== undefined && sha256 !== expected.sha256) {
    throw new ModelStoreError(
      'checksum_mismatch',
      `${what}: sha256 ${sha256}, expected ${expected.sha256}; nothing was installed`,
    );
  }
}
