/**
 * The GGUF header (ggml's `docs/gguf.md`, versions 2 and 3, little-endian): magic, version, tensor
 * count, metadata count, the metadata key/value pairs, the tensor table, then padding up to
 * `general.alignment` where the tensor data starts.
 *
 * Every count, length and offset is checked against the file size before it is used, the way
 * llama.cpp's `gguf_init_from_file` checks them (and a little stricter), so a truncated or corrupt
 * file is refused here with a `GgufError` instead of reaching native code.
 */
import { GgufError } from './errors.ts';
import {
  GGML_BLOCK_LAYOUT,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  type GgmlType,
  GgufValueType,
  ggmlTypeName,
} from './ggml-types.ts';

/**
 * A metadata value. Integers are numbers, except 64-bit ones outside ±2^53 (bigint). Arrays are
 * plain arrays (also of numbers), nested arrays included.
 */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** How a metadata value was stored, so a writer can store it the same way. */
export interface GgufValueKind {
  type: GgufValueType;
  /** For arrays: the element type. */
  itemType?: GgufValueType;
}

export interface GgufTensorInfo {
  name: string;
  /** ggml order: `dims[0]` (ne[0]) is the fastest-varying, the row length. */
  dims: number[];
  type: GgmlType;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  version: number;
  /** Keys in file order; a null-prototype object, so any key (even `__proto__`) is plain data. */
  metadata: Record<string, GgufValue>;
  metadataKinds: Record<string, GgufValueKind>;
  /** In file order. */
  tensors: GgufTensorInfo[];
  /** `general.alignment`, 32 when absent. */
  alignment: number;
  /** Where the tensor data section starts (tensor offsets in the file are relative to it). */
  dataOffset: number;
  fileSize: number;
}

/** llama.cpp's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;
/** llama.cpp refuses tensor names of GGML_MAX_NAME (64) bytes or more. */
export const GGUF_MAX_NAME_BYTES = 63;
/** Arrays of arrays are legal GGUF; deeper than this is refused as corrupt. */
const MAX_ARRAY_DEPTH = 3;
/** The smallest tensor info: empty name length, n_dims, one dim, type, offset. */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8;
/** The smallest key/value: empty key length, type, a one-byte value. */
const MIN_KV_BYTES = 8 + 4 + 1;

const SCALAR_BYTES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8Lenient = new TextDecoder('utf-8');

/** A read position over a prefix of the file, every read bounds-checked. */
class Cursor {
  pos = 0;
  /** What is being read, for error messages ("key general.name", "tensor blk.0.attn_q.weight"). */
  context = 'header';
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    readonly fileSize: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes left in the file (not just in the prefix) from the current position. */
  get remaining(): number {
    return this.fileSize - this.pos;
  }

  private need(n: number, what: string): void {
    const end = this.pos + n;
    if (end <= this.bytes.byteLength) return;
    if (end > this.fileSize) {
      throw new GgufError(
        'truncated',
        `${this.context}: ${what} needs bytes ${this.pos}..${end} but the file has ${this.fileSize}`,
      );
    }
    throw new GgufError(
      'incomplete',
      `${this.context}: ${what} needs the first ${end} bytes of the file but only ${this.bytes.byteLength} were given`,
      { needBytes: end },
    );
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return value;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const value = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return value;
  }

  /**
   * A u64 count of items of at least `itemBytes` each, refused when the rest of the file (after
   * the count itself) cannot hold that many, before anything is allocated for them.
   */
  count(what: string, itemBytes: number): number {
    const value = this.u64(what);
    if (value * BigInt(itemBytes) > BigInt(this.remaining)) {
      throw new GgufError(
        'truncated',
        `${this.context}: ${what} ${value} needs at least ${value * BigInt(itemBytes)} bytes but the ${this.fileSize}-byte file has ${this.remaining} left at byte ${this.pos}`,
      );
    }
    return Number(value);
  }

  string(what: string, strict: boolean): string {
    const length = this.u64(`${what} length`);
    if (length > BigInt(this.remaining)) {
      throw new GgufError(
        'truncated',
        `${this.context}: ${what} of ${length} bytes at byte ${this.pos} runs past the end of the ${this.fileSize}-byte file`,
      );
    }
    const n = Number(length);
    this.need(n, what);
    const raw = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    if (!strict) return utf8Lenient.decode(raw);
    try {
      return utf8Strict.decode(raw);
    } catch {
      throw new GgufError('corrupt', `${this.context}: ${what} at byte ${this.pos - n} is not valid UTF-8`);
    }
  }

  scalar(type: GgufValueType, what: string): number | bigint | boolean {
    switch (type) {
      case GgufValueType.UINT8:
        return this.u8(what);
      case GgufValueType.INT8:
        this.need(1, what);
        return this.view.getInt8(this.pos++);
      case GgufValueType.UINT16:
        this.need(2, what);
        this.pos += 2;
        return this.view.getUint16(this.pos - 2, true);
      case GgufValueType.INT16:
        this.need(2, what);
        this.pos += 2;
        return this.view.getInt16(this.pos - 2, true);
      case GgufValueType.UINT32:
        return this.u32(what);
      case GgufValueType.INT32:
        this.need(4, what);
        this.pos += 4;
        return this.view.getInt32(this.pos - 4, true);
      case GgufValueType.FLOAT32:
        this.need(4, what);
        this.pos += 4;
        return this.view.getFloat32(this.pos - 4, true);
      case GgufValueType.FLOAT64:
        this.need(8, what);
        this.pos += 8;
        return this.view.getFloat64(this.pos - 8, true);
      case GgufValueType.BOOL: {
        const byte = this.u8(what);
        if (byte > 1) {
          throw new GgufError(
            'corrupt',
            `${this.context}: ${what} is a bool stored as ${byte} (must be 0 or 1)`,
          );
        }
        return byte === 1;
      }
      case GgufValueType.UINT64: {
        const value = this.u64(what);
        return value <= MAX_SAFE ? Number(value) : value;
      }
      case GgufValueType.INT64: {
        this.need(8, what);
        const value = this.view.getBigInt64(this.pos, true);
        this.pos += 8;
        return value <= MAX_SAFE && value >= -MAX_SAFE ? Number(value) : value;
      }
      default:
        throw new GgufError('corrupt', `${this.context}: ${what} has unknown value type ${type}`);
    }
  }
}

function readValue(cursor: Cursor, type: number, depth: number): GgufValue {
  if (type === GgufValueType.STRING) return cursor.string('string value', false);
  if (type !== GgufValueType.ARRAY) return cursor.scalar(type as GgufValueType, 'value');
  if (depth >= MAX_ARRAY_DEPTH) {
    throw new GgufError('corrupt', `${cursor.context}: arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
  }
  const itemType = cursor.u32('array element type');
  const itemBytes =
    itemType === GgufValueType.STRING || itemType === GgufValueType.ARRAY
      ? 8
      : SCALAR_BYTES[itemType as GgufValueType];
  if (itemBytes === undefined) {
    throw new GgufError('corrupt', `${cursor.context}: array has unknown element type ${itemType}`);
  }
  // Each element takes at least itemBytes, so the file size bounds the length before any allocation.
  const length = cursor.count('array length', itemBytes);
  const items: GgufValue[] = new Array(length);
  for (let i = 0; i < length; i++) items[i] = readValue(cursor, itemType, depth + 1);
  return items;
}

/** Tensor elements and bytes, refusing dimensions and types llama.cpp would refuse. */
function measureTensor(name: string, dims: number[], type: number): number {
  const layout = GGML_BLOCK_LAYOUT[type as GgmlType];
  if (layout === undefined) {
    const known = ggmlTypeName(type);
    throw new GgufError(
      'unsupported_type',
      `tensor ${name}: ggml type ${type}${known ? ` (${known})` : ''} is not supported by this reader`,
    );
  }
  let elements = 1;
  for (const dim of dims) {
    elements *= dim;
    if (elements > Number.MAX_SAFE_INTEGER) {
      throw new GgufError('corrupt', `tensor ${name}: dims [${dims.join(', ')}] overflow the element count`);
    }
  }
  if (dims[0] % layout.elements !== 0) {
    throw new GgufError(
      'corrupt',
      `tensor ${name}: row length ${dims[0]} is not a multiple of the ${ggmlTypeName(type)} block size ${layout.elements}`,
    );
  }
  return (elements / layout.elements) * layout.bytes;
}

function readTensorInfo(cursor: Cursor, index: number): GgufTensorInfo & { relativeOffset: bigint } {
  cursor.context = `tensor #${index}`;
  const name = cursor.string('name', true);
  if (Buffer.byteLength(name) > GGUF_MAX_NAME_BYTES) {
    throw new GgufError(
      'corrupt',
      `tensor #${index}: name "${name.slice(0, 80)}" is longer than ${GGUF_MAX_NAME_BYTES} bytes`,
    );
  }
  cursor.context = `tensor ${name}`;
  const nDims = cursor.u32('n_dims');
  if (nDims < 1 || nDims > GGUF_MAX_DIMS) {
    throw new GgufError('corrupt', `tensor ${name}: n_dims ${nDims} is outside 1..${GGUF_MAX_DIMS}`);
  }
  const dims: number[] = [];
  for (let d = 0; d < nDims; d++) {
    const dim = cursor.u64(`dim ${d}`);
    if (dim < 1n || dim > MAX_SAFE) {
      throw new GgufError('corrupt', `tensor ${name}: dim ${d} is ${dim} (must be 1..2^53)`);
    }
    dims.push(Number(dim));
  }
  const type = cursor.u32('type') as GgmlType;
  const relativeOffset = cursor.u64('offset');
  const byteLength = measureTensor(name, dims, type);
  return { name, dims, type, offset: 0, byteLength, relativeOffset };
}

function readAlignment(metadata: Record<string, GgufValue>, kinds: Record<string, GgufValueKind>): number {
  const value = metadata['general.alignment'];
  if (value === undefined) return GGUF_DEFAULT_ALIGNMENT;
  // llama.cpp reads it with gguf_get_val_u32, which aborts on any other type.
  if (kinds['general.alignment'].type !== GgufValueType.UINT32) {
    throw new GgufError(
      'corrupt',
      `key general.alignment: stored as value type ${kinds['general.alignment'].type}, must be uint32 (4)`,
    );
  }
  const alignment = value as number;
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
    throw new GgufError('corrupt', `key general.alignment: ${alignment} is not a power of two`);
  }
  return alignment;
}

/** Places each tensor in the file and refuses misaligned, overlapping or out-of-file data. */
function placeTensors(
  infos: (GgufTensorInfo & { relativeOffset: bigint })[],
  dataOffset: number,
  alignment: number,
  fileSize: number,
): GgufTensorInfo[] {
  const tensors: GgufTensorInfo[] = [];
  for (const { relativeOffset, ...info } of infos) {
    if (relativeOffset % BigInt(alignment) !== 0n) {
      throw new GgufError(
        'corrupt',
        `tensor ${info.name}: data offset ${relativeOffset} is not a multiple of the alignment ${alignment}`,
      );
    }
    const end = BigInt(dataOffset) + relativeOffset + BigInt(info.byteLength);
    if (end > BigInt(fileSize)) {
      throw new GgufError(
        'truncated',
        `tensor ${info.name}: data ends at byte ${end} but the file has ${fileSize}`,
      );
    }
    tensors.push({ ...info, offset: dataOffset + Number(relativeOffset) });
  }
  const byStart = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byStart.length; i++) {
    const previous = byStart[i - 1];
    if (previous.offset + previous.byteLength > byStart[i].offset) {
      throw new GgufError(
        'corrupt',
        `tensor ${byStart[i].name}: data at byte ${byStart[i].offset} overlaps tensor ${previous.name} (bytes ${previous.offset}..${previous.offset + previous.byteLength})`,
      );
    }
  }
  return tensors;
}

/**
 * Parses a GGUF header from the file's first bytes. `bytes` may be the whole file or a prefix of
 * it; `fileSize` is the whole file's size, which every count and offset is checked against.
 * @throws GgufError — `incomplete` (with `needBytes`) when `bytes` is a prefix too short for the
 *   header; any other code when the file itself is bad.
 */
export function parseGgufHeader(bytes: Uint8Array, fileSize: number = bytes.byteLength): GgufFile {
  if (!Number.isSafeInteger(fileSize) || fileSize < bytes.byteLength) {
    throw new RangeError(
      `fileSize ${fileSize} must be an integer at least the ${bytes.byteLength} bytes given`,
    );
  }
  if (fileSize < 4) {
    throw new GgufError('truncated', `file is ${fileSize} bytes, shorter than the 4-byte GGUF magic`);
  }
  const cursor = new Cursor(bytes, fileSize);
  const magic = cursor.u32('magic');
  if (magic !== GGUF_MAGIC) {
    const text = Buffer.from(bytes.subarray(0, 4)).toString('latin1');
    throw new GgufError('bad_magic', `not a GGUF file: it starts with ${JSON.stringify(text)}, not "GGUF"`);
  }
  const version = cursor.u32('version');
  if (version !== 2 && version !== 3) {
    const hint =
      version === 0x02000000 || version === 0x03000000
        ? ' (a big-endian file; only little-endian GGUF is supported)'
        : version === 1
          ? ' (GGUF v1 used 32-bit counts; convert the file with a current llama.cpp)'
          : '';
    throw new GgufError(
      'unsupported_version',
      `GGUF version ${version} is not supported (2 and 3 are)${hint}`,
    );
  }
  const tensorCount = cursor.count('tensor count', MIN_TENSOR_INFO_BYTES);
  const kvCount = cursor.count('metadata count', MIN_KV_BYTES);

  const metadata: Record<string, GgufValue> = Object.create(null);
  const metadataKinds: Record<string, GgufValueKind> = Object.create(null);
  for (let i = 0; i < kvCount; i++) {
    cursor.context = `metadata #${i}`;
    const key = cursor.string('key', true);
    cursor.context = `key ${key}`;
    if (Object.hasOwn(metadata, key)) throw new GgufError('corrupt', `key ${key}: appears twice`);
    const type = cursor.u32('value type');
    const start = cursor.pos;
    metadata[key] = readValue(cursor, type, 0);
    metadataKinds[key] =
      type === GgufValueType.ARRAY
        ? {
            type,
            itemType: new DataView(bytes.buffer, bytes.byteOffset).getUint32(start, true) as GgufValueType,
          }
        : { type: type as GgufValueType };
  }
  const alignment = readAlignment(metadata, metadataKinds);

  const infos: (GgufTensorInfo & { relativeOffset: bigint })[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const info = readTensorInfo(cursor, i);
    if (names.has(info.name)) throw new GgufError('corrupt', `tensor ${info.name}: appears twice`);
    names.add(info.name);
    infos.push(info);
  }
  const dataOffset = Math.ceil(cursor.pos / alignment) * alignment;
  if (tensorCount > 0 && dataOffset > fileSize) {
    throw new GgufError(
      'truncated',
      `tensor data would start at byte ${dataOffset} but the file has ${fileSize}`,
    );
  }
  const tensors = placeTensors(infos, dataOffset, alignment, fileSize);
  return { version, metadata, metadataKinds, tensors, alignment, dataOffset, fileSize };
}
