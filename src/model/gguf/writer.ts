/**
 * A GGUF version 3 writer (ggml's `docs/gguf.md`): header, typed metadata, tensor table, then the
 * tensor data, each tensor starting at a multiple of `general.alignment` (32).
 *
 * Tensors are given as float32 values and encoded here as F32, F16 or Q8_0. Q8_0 follows ggml's
 * `quantize_row_q8_0_ref` step for step in float32 (scale = absmax / 127 stored as f16, quants
 * `roundf(x · (1/scale))`), so a file written here holds the bytes llama.cpp's quantizer writes.
 *
 * The file is written atomically: into a temporary file beside the target, fsynced, renamed over it,
 * and the directory fsynced, so a reader sees the old file or the whole new one, never a prefix.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CorgiError } from '../../common/errors.ts';
import {
  GGML_BLOCK_LAYOUT,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgmlType,
  GgufValueType,
} from './ggml-types.ts';
import { floatToHalfBits } from './half.ts';

/** A metadata scalar with its GGUF type (integers of 64 bits may be given as bigint). */
export type GgufScalar =
  | {
      type: 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
      value: number;
    }
  | { type: 'uint64' | 'int64'; value: number | bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string };

/**
 * A metadata array: every item of one scalar type. The format allows arrays of arrays, but
 * llama.cpp's reader refuses a file holding one ("failed to read key-value pairs"), so they are not written.
 */
export interface GgufArray {
  type: 'array';
  itemType: GgufScalar['type'];
  value: readonly (number | bigint | boolean | string)[];
}

export type GgufWriteValue = GgufScalar | GgufArray;

/** The tensor types this writer encodes. */
export type GgufWritableType = typeof GgmlType.F32 | typeof GgmlType.F16 | typeof GgmlType.Q8_0;

/** One tensor to write. */
export interface GgufTensorInput {
  /** Its GGUF name (`blk.0.attn_q.weight`), at most 64 bytes. */
  name: string;
  /**
   * ggml's dimension order: dims[0] is the row length (the fastest-varying axis), so a row-major
   * [rows, cols] array is dims [cols, rows].
   */
  dims: readonly number[];
  type: GgufWritableType;
  /** The values in row-major order, as many as the dims multiply to. */
  data: Float32Array;
}

/** Input the writer cannot encode, naming the key or tensor and the reason. */
export class GgufWriteError extends CorgiError {
  constructor(message: string) {
    super('unencodable', message);
  }
}

const VALUE_TYPE: Record<GgufWriteValue['type'], number> = {
  uint8: GgufValueType.UINT8,
  int8: GgufValueType.INT8,
  uint16: GgufValueType.UINT16,
  int16: GgufValueType.INT16,
  uint32: GgufValueType.UINT32,
  int32: GgufValueType.INT32,
  float32: GgufValueType.FLOAT32,
  bool: GgufValueType.BOOL,
  string: GgufValueType.STRING,
  array: GgufValueType.ARRAY,
  uint64: GgufValueType.UINT64,
  int64: GgufValueType.INT64,
  float64: GgufValueType.FLOAT64,
};

const INTEGER_RANGE: Partial<Record<GgufWriteValue['type'], [number, number]>> = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
};

/** A growable little-endian byte buffer for the header. */
class ByteSink {
  private bytes = new Uint8Array(1 << 16);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number): void {
    this.reserve(1);
    this.view.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.view.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  u64(v: number | bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  i64(v: number | bigint): void {
    this.reserve(8);
    this.view.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  raw(b: Uint8Array): void {
    this.reserve(b.length);
    this.bytes.set(b, this.length);
    this.length += b.length;
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.raw(b);
  }
  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    this.reserve(pad);
    this.bytes.fill(0, this.length, this.length + pad);
    this.length += pad;
  }
  result(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

function writeItem(sink: ByteSink, type: GgufWriteValue['type'], item: unknown, where: string): void {
  const fail = (reason: string): never => {
    throw new GgufWriteError(`metadata ${where}: ${reason}`);
  };
  const range = INTEGER_RANGE[type];
  if (range) {
    if (typeof item !== 'number' || !Number.isInteger(item) || item < range[0] || item > range[1])
      fail(`${JSON.stringify(item)} is not a ${type} (integer in [${range[0]}, ${range[1]}])`);
  }
  switch (type) {
    case 'uint8':
      sink.u8(item as number);
      return;
    case 'int8':
      sink.i8(item as number);
      return;
    case 'uint16':
      sink.u16(item as number);
      return;
    case 'int16':
      sink.i16(item as number);
      return;
    case 'uint32':
      sink.u32(item as number);
      return;
    case 'int32':
      sink.i32(item as number);
      return;
    case 'float32':
    case 'float64':
      if (typeof item !== 'number') fail(`${JSON.stringify(item)} is not a number`);
      if (type === 'float32') sink.f32(item as number);
      else sink.f64(item as number);
      return;
    case 'uint64':
    case 'int64': {
      const ok = typeof item === 'bigint' || (typeof item === 'number' && Number.isSafeInteger(item));
      if (!ok) fail(`${String(item)} is not a ${type} (a safe integer or a bigint)`);
      const big = BigInt(item as number | bigint);
      const min = type === 'uint64' ? 0n : -(2n ** 63n);
      const max = type === 'uint64' ? 2n ** 64n - 1n : 2n ** 63n - 1n;
      if (big < min || big > max) fail(`${big} is out of range for ${type}`);
      if (type === 'uint64') sink.u64(big);
      else sink.i64(big);
      return;
    }
    case 'bool':
      if (typeof item !== 'boolean') fail(`${JSON.stringify(item)} is not a boolean`);
      sink.u8(item ? 1 : 0);
      return;
    case 'string':
      if (typeof item !== 'string') fail(`${JSON.stringify(item)} is not a string`);
      sink.string(item as string);
      return;
    case 'array': {
      const array = item as GgufArray;
      if (
        typeof array !== 'object' ||
        array === null ||
        array.type !== 'array' ||
        !Array.isArray(array.value)
      )
        fail('is not an array value');
      if ((array.itemType as string) === 'array')
        fail('arrays of arrays are not written: llama.cpp cannot read them');
      if (!(array.itemType in VALUE_TYPE)) fail(`item type ${JSON.stringify(array.itemType)} is unknown`);
      sink.u32(VALUE_TYPE[array.itemType]);
      sink.u64(array.value.length);
      for (let i = 0; i < array.value.length; i++)
        writeItem(sink, array.itemType, array.value[i], `${where}[${i}]`);
      return;
    }
    default:
      fail(`type ${JSON.stringify(type)} is unknown`);
  }
}

/** Bytes a tensor of `type` with `count` values takes. */
export function ggufTensorBytes(type: GgufWritableType, count: number): number {
  const layout = GGML_BLOCK_LAYOUT[type];
  return (count / layout.elements) * layout.bytes;
}

/** ggml's `quantize_row_q8_0_ref`: 32 values → an f16 scale and 32 int8 quants, in float32 arithmetic. */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % 32 !== 0)
    throw new GgufWriteError(`Q8_0 needs a multiple of 32 values, got ${values.length}`);
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(values[b * 32 + j]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    view.setUint16(b * 34, floatToHalfBits(d), true);
    for (let j = 0; j < 32; j++) {
      const x = Math.fround(values[b * 32 + j]! * id);
      // roundf: halves away from zero (Math.round rounds them up).
      view.setInt8(b * 34 + 2 + j, Math.sign(x) * Math.round(Math.abs(x)));
    }
  }
  return out;
}

/** Encodes float32 values as a tensor of `type`. */
export function encodeTensorData(type: GgufWritableType, values: Float32Array): Uint8Array {
  if (type === GgmlType.F32) {
    return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  }
  if (type === GgmlType.F16) {
    const out = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = floatToHalfBits(values[i]!);
    return new Uint8Array(out.buffer);
  }
  if (type === GgmlType.Q8_0) return quantizeQ8_0(values);
  throw new GgufWriteError(`tensor type ${type} cannot be written (F32, F16 or Q8_0)`);
}

function checkTensor(t: GgufTensorInput, seen: Set<string>): void {
  const fail = (reason: string): never => {
    throw new GgufWriteError(`tensor ${t.name}: ${reason}`);
  };
  if (new TextEncoder().encode(t.name).length > 63)
    fail('name is longer than 63 bytes (llama.cpp: under GGML_MAX_NAME)');
  if (seen.has(t.name)) fail('appears twice');
  seen.add(t.name);
  if (t.dims.length < 1 || t.dims.length > 4) fail(`has ${t.dims.length} dims, GGUF allows 1 to 4`);
  if (!t.dims.every((d) => Number.isInteger(d) && d > 0)) fail(`dims [${t.dims}] are not positive integers`);
  const count = t.dims.reduce((p, d) => p * d, 1);
  if (count !== t.data.length) fail(`dims [${t.dims}] hold ${count} values but data has ${t.data.length}`);
  if (!(t.type in GGML_BLOCK_LAYOUT) || ![GgmlType.F32, GgmlType.F16, GgmlType.Q8_0].includes(t.type))
    fail(`type ${t.type} cannot be written (F32, F16 or Q8_0)`);
  const block = GGML_BLOCK_LAYOUT[t.type].elements;
  if (t.dims[0]! % block !== 0) fail(`row length ${t.dims[0]} is not a multiple of the ${block}-value block`);
}

/**
 * The header (everything before the tensor data) and each tensor's offset in the data section.
 * `general.alignment` is honoured when given as a uint32 power of two.
 */
export function encodeGgufHeader(
  metadata: ReadonlyMap<string, GgufWriteValue> | Record<string, GgufWriteValue>,
  tensors: readonly GgufTensorInput[],
): { header: Uint8Array; offsets: number[]; alignment: number } {
  const entries = metadata instanceof Map ? [...metadata] : Object.entries(metadata);
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const alignmentValue = entries.find(([k]) => k === 'general.alignment')?.[1];
  if (alignmentValue) {
    const a = alignmentValue.value;
    if (alignmentValue.type !== 'uint32' || typeof a !== 'number' || a < 1 || (a & (a - 1)) !== 0)
      throw new GgufWriteError('metadata general.alignment: must be a uint32 power of two');
    alignment = a;
  }
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(tensors.length);
  sink.u64(entries.length);
  const keys = new Set<string>();
  for (const [key, value] of entries as [string, GgufWriteValue][]) {
    if (keys.has(key)) throw new GgufWriteError(`metadata ${key}: appears twice`);
    keys.add(key);
    if (typeof value !== 'object' || value === null || !(value.type in VALUE_TYPE))
      throw new GgufWriteError(
        `metadata ${key}: value type ${JSON.stringify((value as { type?: unknown } | null)?.type)} is unknown`,
      );
    const type: GgufWriteValue['type'] = value.type;
    sink.string(key);
    sink.u32(VALUE_TYPE[type]);
    writeItem(sink, type, type === 'array' ? value : value.value, key);
  }
  const seen = new Set<string>();
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    checkTensor(t, seen);
    sink.string(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(t.type);
    sink.u64(offset);
    offsets.push(offset);
    const bytes = ggufTensorBytes(t.type, t.data.length);
    offset += bytes + ((alignment - (bytes % alignment)) % alignment);
  }
  sink.padTo(alignment);
  return { header: sink.result(), offsets, alignment };
}

/**
 * Writes a GGUF file atomically. Tensors are encoded one at a time, so memory holds one encoded
 * tensor beside the inputs.
 * @throws GgufWriteError for metadata or tensors that cannot be encoded (nothing is written then).
 */
export async function writeGguf(
  path: string,
  metadata: ReadonlyMap<string, GgufWriteValue> | Record<string, GgufWriteValue>,
  tensors: readonly GgufTensorInput[],
): Promise<void> {
  const { header, alignment } = encodeGgufHeader(metadata, tensors);
  const target = resolve(path);
  const dir = dirname(target);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const handle = await open(temp, 'w');
  try {
    await handle.write(header);
    for (const t of tensors) {
      const data = encodeTensorData(t.type, t.data);
      await handle.write(data);
      const pad = (alignment - (data.length % alignment)) % alignment;
      if (pad > 0) await handle.write(new Uint8Array(pad));
    }
    await handle.sync();
    await handle.close();
    await rename(temp, target);
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** Metadata value shorthands: `gguf.u32(4)`, `gguf.str('llama')`, `gguf.strings([...])`. */
export const gguf = {
  u32: (value: number): GgufScalar => ({ type: 'uint32', value }),
  i32: (value: number): GgufScalar => ({ type: 'int32', value }),
  f32: (value: number): GgufScalar => ({ type: 'float32', value }),
  bool: (value: boolean): GgufScalar => ({ type: 'bool', value }),
  str: (value: string): GgufScalar => ({ type: 'string', value }),
  strings: (value: readonly string[]): GgufArray => ({ type: 'array', itemType: 'string', value }),
  i32s: (value: readonly number[]): GgufArray => ({ type: 'array', itemType: 'int32', value }),
  f32s: (value: readonly number[]): GgufArray => ({ type: 'array', itemType: 'float32', value }),
};
