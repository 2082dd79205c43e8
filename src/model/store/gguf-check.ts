/**
 * What the store needs to know about a GGUF file before it installs it: that it is one (magic,
 * version, a header and tensor table that fit in the file), which tensor types it uses (so a file
 * the product cannot dequantize is refused), and the metadata a manifest records.
 */
import { open } from 'node:fs/promises';
import {
  GGML_BLOCK_LAYOUT,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgmlType,
  GgufValueType,
  ggmlTypeName,
} from '../gguf/ggml-types.ts';
import { ModelStoreError } from './model-store-error.ts';

/** Tensor types the product dequantizes (and llama.cpp serves). */
export const SUPPORTED_TENSOR_TYPES: ReadonlySet<number> = new Set([
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.Q4_1,
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
]);

export interface GgufSummary {
  version: number;
  architecture?: string;
  chatTemplate: string | null;
  /** Elements of every tensor. */
  parameters: number;
  /** The tensor type holding the most elements ("Q4_1"). */
  quantization: string;
  tensorCount: number;
}

const MAX_HEADER_BYTES = 256 << 20;

class NeedMore extends Error {}

/** A cursor over a prefix of the file; running past the prefix asks for a longer one. */
class HeaderCursor {
  at = 0;
  constructor(
    readonly bytes: Buffer,
    readonly fileSize: number,
  ) {}
  need(n: number): void {
    if (this.at + n > this.bytes.length) throw new NeedMore();
  }
  u32(): number {
    this.need(4);
    const v = this.bytes.readUInt32LE(this.at);
    this.at += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.bytes.readBigUInt64LE(this.at);
    this.at += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`a count of ${v} is impossible`);
    return Number(v);
  }
  string(): string {
    const length = this.u64();
    if (length > this.fileSize) throw new RangeError(`a string of ${length} bytes is longer than the file`);
    this.need(length);
    const text = this.bytes.toString('utf8', this.at, this.at + length);
    this.at += length;
    return text;
  }
  skip(n: number): void {
    this.need(n);
    this.at += n;
  }
}

const SCALAR_BYTES: Record<number, number> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

/** Reads a value, returning strings and u32 numbers (the keys the store uses) and skipping the rest. */
function readValue(cursor: HeaderCursor, type: number): string | number | undefined {
  if (type === GgufValueType.STRING) return cursor.string();
  if (type === GgufValueType.UINT32) return cursor.u32();
  if (type === GgufValueType.ARRAY) {
    const itemType = cursor.u32();
    const count = cursor.u64();
    if (itemType === GgufValueType.STRING) {
      for (let i = 0; i < count; i++) cursor.string();
    } else if (SCALAR_BYTES[itemType] !== undefined) {
      if (count * SCALAR_BYTES[itemType] > cursor.fileSize)
        throw new RangeError(`an array of ${count} is longer than the file`);
      cursor.skip(count * SCALAR_BYTES[itemType]);
    } else if (itemType === GgufValueType.ARRAY) {
      for (let i = 0; i < count; i++) readValue(cursor, GgufValueType.ARRAY);
    } else throw new RangeError(`unknown array item type ${itemType}`);
    return undefined;
  }
  const bytes = SCALAR_BYTES[type];
  if (bytes === undefined) throw new RangeError(`unknown metadata value type ${type}`);
  cursor.skip(bytes);
  return undefined;
}

function parseHeader(cursor: HeaderCursor, path: string): GgufSummary {
  if (cursor.u32() !== GGUF_MAGIC)
    throw new ModelStoreError('corrupt_gguf', `${path}: not a GGUF file (bad magic)`);
  const version = cursor.u32();
  if (version !== 2 && version !== 3) {
    throw new ModelStoreError('corrupt_gguf', `${path}: GGUF version ${version}; versions 2 and 3 are read`);
  }
  const tensorCount = cursor.u64();
  const kvCount = cursor.u64();
  const metadata = new Map<string, string | number | undefined>();
  for (let i = 0; i < kvCount; i++) {
    const key = cursor.string();
    metadata.set(key, readValue(cursor, cursor.u32()));
  }
  const counts = new Map<number, number>();
  let parameters = 0;
  let dataEnd = 0;
  for (let i = 0; i < tensorCount; i++) {
    const name = cursor.string();
    const dims: number[] = [];
    const nDims = cursor.u32();
    if (nDims > 4) throw new RangeError(`tensor ${name} has ${nDims} dimensions`);
    for (let d = 0; d < nDims; d++) dims.push(cursor.u64());
    const type = cursor.u32();
    const offset = cursor.u64();
    const typeName = ggmlTypeName(type) ?? `type ${type}`;
    if (!SUPPORTED_TENSOR_TYPES.has(type)) {
      throw new ModelStoreError(
        'unsupported_quantization',
        `${path}: tensor ${name} is ${typeName}; supported: ${[...SUPPORTED_TENSOR_TYPES].map((t) => ggmlTypeName(t)).join(', ')}`,
      );
    }
    const elements = dims.reduce((a, b) => a * b, 1);
    const layout = GGML_BLOCK_LAYOUT[type as GgmlType];
    if (elements % layout.elements !== 0)
      throw new RangeError(`tensor ${name}: ${elements} elements is not whole ${typeName} blocks`);
    counts.set(type, (counts.get(type) ?? 0) + elements);
    parameters += elements;
    dataEnd = Math.max(dataEnd, offset + (elements / layout.elements) * layout.bytes);
  }
  const alignment =
    typeof metadata.get('general.alignment') === 'number'
      ? (metadata.get('general.alignment') as number)
      : GGUF_DEFAULT_ALIGNMENT;
  const dataStart = Math.ceil(cursor.at / alignment) * alignment;
  if (tensorCount > 0 && dataStart + dataEnd > cursor.fileSize) {
    throw new ModelStoreError(
      'truncated',
      `${path}: tensor data needs ${dataStart + dataEnd} bytes but the file has ${cursor.fileSize}`,
    );
  }
  const dominant = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const architecture = metadata.get('general.architecture');
  const template = metadata.get('tokenizer.chat_template');
  return {
    version,
    architecture: typeof architecture === 'string' ? architecture : undefined,
    chatTemplate: typeof template === 'string' ? template : null,
    parameters,
    quantization: dominant === undefined ? 'none' : (ggmlTypeName(dominant) ?? String(dominant)),
    tensorCount,
  };
}

/**
 * Checks a GGUF file and summarises it, reading only its header.
 * @throws ModelStoreError `corrupt_gguf`, `truncated` or `unsupported_quantization`, naming the file
 */
export async function checkGgufFile(path: string): Promise<GgufSummary> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    let length = Math.min(size, 4 << 20);
    for (;;) {
      const bytes = Buffer.alloc(length);
      await handle.read(bytes, 0, length, 0);
      try {
        return parseHeader(new HeaderCursor(bytes, size), path);
      } catch (error) {
        if (ModelStoreError.isInstance(error)) throw error;
        if (error instanceof NeedMore) {
          if (length >= size)
            throw new ModelStoreError(
              'truncated',
              `${path}: the file ends inside its header (${size} bytes)`,
            );
          if (length >= MAX_HEADER_BYTES)
            throw new ModelStoreError(
              'corrupt_gguf',
              `${path}: header larger than ${MAX_HEADER_BYTES} bytes`,
            );
          length = Math.min(size, length * 4);
          continue;
        }
        throw new ModelStoreError('corrupt_gguf', `${path}: ${(error as Error).message}`, { cause: error });
      }
    }
  } finally {
    await handle.close();
  }
}
