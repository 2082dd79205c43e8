/**
 * Reading GGUF files from disk: the header through a file handle (a model file is never read
 * whole to inspect it), then single tensors on demand, raw or dequantized to float32.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { dequantize } from './dequantize.ts';
import { GgufError } from './errors.ts';
import { GGML_BLOCK_LAYOUT } from './ggml-types.ts';
import { type GgufFile, type GgufTensorInfo, parseGgufHeader } from './parse-header.ts';

export { GgufError, type GgufErrorCode } from './errors.ts';
export {
  type GgufFile,
  type GgufTensorInfo,
  type GgufValue,
  type GgufValueKind,
  parseGgufHeader,
} from './parse-header.ts';

/** The first read; SmolLM2's header (49,152 tokens and their merges) takes about 3 MB. */
const FIRST_READ_BYTES = 4 << 20;
/** No real header comes near this (Llama 3's 128k-token vocabulary takes ~10 MB). */
export const MAX_HEADER_BYTES = 256 << 20;

async function openFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (error) {
    throw new GgufError('io', `${path}: cannot open (${(error as Error).message})`, { cause: error });
  }
}

/** Reads exactly `length` bytes at `position`, or fails naming how many the file had. */
async function readExactly(
  handle: FileHandle,
  position: number,
  length: number,
  what: string,
): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(bytes, done, length - done, position + done);
    if (bytesRead === 0) {
      throw new GgufError(
        'truncated',
        `${what}: needs bytes ${position}..${position + length} but the file ends at byte ${position + done}`,
      );
    }
    done += bytesRead;
  }
  return bytes;
}

/** Parses the header of an open file, reading a longer prefix only when the header needs it. */
async function inspectHandle(handle: FileHandle): Promise<GgufFile> {
  const { size } = await handle.stat();
  let length = Math.min(size, FIRST_READ_BYTES);
  for (;;) {
    const prefix = await readExactly(handle, 0, length, 'header');
    try {
      return parseGgufHeader(prefix, size);
    } catch (error) {
      if (!GgufError.isInstance(error) || error.code !== 'incomplete') throw error;
      const need = error.needBytes ?? length + 1;
      if (need > MAX_HEADER_BYTES) {
        throw new GgufError(
          'corrupt',
          `header needs more than ${MAX_HEADER_BYTES} bytes (${need}); refusing it`,
        );
      }
      length = Math.min(size, Math.max(need, length * 2));
    }
  }
}

/**
 * Reads and checks a GGUF file's header: metadata, tensor table, alignment and where the data
 * starts, every tensor's data region checked to lie inside the file.
 * @throws GgufError naming the file, the key or tensor, and the numbers.
 */
export async function inspectGguf(path: string): Promise<GgufFile> {
  const handle = await openFile(path);
  try {
    return await inspectHandle(handle);
  } catch (error) {
    if (!GgufError.isInstance(error)) throw error;
    throw new GgufError(error.code, `${path}: ${error.message}`, { cause: error });
  } finally {
    await handle.close();
  }
}

/** Reads one tensor's raw bytes (as stored: quantized blocks for quantized types). */
export async function readTensorBytes(
  source: string | FileHandle,
  info: GgufTensorInfo,
): Promise<Uint8Array> {
  const handle = typeof source === 'string' ? await openFile(source) : source;
  try {
    return await readExactly(handle, info.offset, info.byteLength, `tensor ${info.name}`);
  } finally {
    if (typeof source === 'string') await handle.close();
  }
}

/** The number of elements of a tensor (the product of its dims). */
export function countElements(info: Pick<GgufTensorInfo, 'dims'>): number {
  return info.dims.reduce((product, dim) => product * dim, 1);
}

/** The byte length a tensor of this type and these dims takes. */
export function measureTensorBytes(info: Pick<GgufTensorInfo, 'dims' | 'type'>): number {
  const layout = GGML_BLOCK_LAYOUT[info.type];
  return (countElements(info) / layout.elements) * layout.bytes;
}

/**
 * Reads one tensor and dequantizes it to float32, in ggml order (`dims[0]` varies fastest).
 * @throws GgufError `unsupported_type` for types `dequantize` does not cover.
 */
export async function readTensorF32(
  source: string | FileHandle,
  info: GgufTensorInfo,
): Promise<Float32Array> {
  const bytes = await readTensorBytes(source, info);
  try {
    return dequantize(info.type, bytes, countElements(info));
  } catch (error) {
    if (!GgufError.isInstance(error)) throw error;
    throw new GgufError(error.code, `tensor ${info.name}: ${error.message}`, { cause: error });
  }
}
