/**
 * Checks a GGUF file before llama.cpp's native loader sees it: llama.cpp trusts the header, so a
 * truncated download or a corrupt file would crash the process there instead of failing a load.
 * The magic and version are read first; the header is then parsed in JavaScript
 * (node-llama-cpp's `readGgufFileInfo`), and the header and every tensor's data must end inside
 * the file.
 */
import { open, stat } from 'node:fs/promises';
import { readGgufFileInfo } from 'node-llama-cpp';
import { GGML_BLOCK_LAYOUT, GGUF_MAGIC, type GgmlType, ggmlTypeName } from '../model/gguf/ggml-types.ts';
import { flattenGgufMetadata } from '../model/gguf-tokenizer.ts';
import { CheckpointError } from './checkpoint.ts';

/** Smallest well-formed GGUF: magic, version, tensor count, metadata count. */
const HEADER_BYTES = 4 + 4 + 8 + 8;

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
 * @throws CheckpointError (missing file, wrong magic or version, unreadable header, a tensor
 *   past the end of the file, a tensor type this build does not know)
 */
export async function checkGgufFile(path: string): Promise<CheckedGguf> {
  const refuse = (reason: string, cause?: unknown): never => {
    throw new CheckpointError(path, reason, { cause });
  };
  const info = await stat(path).catch((error) => refuse('no such file', error));
  if (!info.isFile()) refuse('is not a file');
  if (info.size < HEADER_BYTES) refuse(`is ${info.size} bytes, shorter than a GGUF header (${HEADER_BYTES})`);
  const head = Buffer.alloc(8);
  const handle = await open(path, 'r');
  try {
    await handle.read(head, 0, 8, 0);
  } finally {
    await handle.close();
  }
  if (head.readUInt32LE(0) !== GGUF_MAGIC)
    refuse(`is not a GGUF file (magic ${head.subarray(0, 4).toString('hex')}, expected 47475546 "GGUF")`);
  const version = head.readUInt32LE(4);
  if (version !== 2 && version !== 3) refuse(`has GGUF version ${version}; versions 2 and 3 are supported`);

  let parsed: Awaited<ReturnType<typeof readGgufFileInfo>>;
  try {
    parsed = await readGgufFileInfo(path, {
      readTensorInfo: true,
      sourceType: 'filesystem',
      logWarnings: false,
      spliceSplitFiles: false,
    });
  } catch (error) {
    return refuse(`has a corrupt or truncated header: ${(error as Error).message}`, error);
  }
  // The parser reads past the end of a short file as zeros instead of failing: compare the sizes.
  const headerEnd = HEADER_BYTES + parsed.metadataSize + (parsed.tensorInfoSize ?? 0);
  if (headerEnd > info.size)
    refuse(`has a corrupt or truncated header: it needs ${headerEnd} bytes but the file has ${info.size}`);
  for (const tensor of parsed.fullTensorInfo ?? parsed.tensorInfo ?? []) {
    const layout = GGML_BLOCK_LAYOUT[tensor.ggmlType as unknown as GgmlType];
    if (!layout) {
      refuse(
        `tensor ${tensor.name} has ggml type ${ggmlTypeName(tensor.ggmlType) ?? tensor.ggmlType}, which this build cannot check`,
      );
    }
    const elements = tensor.dimensions.reduce<number>((n, d) => n * Number(d), 1);
    const end = Number(tensor.fileOffset) + (elements / layout!.elements) * layout!.bytes;
    if (end > info.size) {
      refuse(`is truncated: tensor ${tensor.name} ends at byte ${end} but the file has ${info.size} bytes`);
    }
  }
  return {
    path,
    size: info.size,
    metadata: flattenGgufMetadata(parsed.metadata as unknown as Record<string, unknown>),
    tensorCount: (parsed.fullTensorInfo ?? parsed.tensorInfo ?? []).length,
  };
}
