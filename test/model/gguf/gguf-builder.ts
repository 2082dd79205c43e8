/**
 * A tiny GGUF encoder for tests: small valid files to parse, then to mutate and truncate. It
 * writes exactly the layout of ggml's `docs/gguf.md`, independently of the reader under test.
 */
import {
  GGML_BLOCK_LAYOUT,
  GGUF_MAGIC,
  GgmlType,
  GgufValueType,
} from '../../../src/model/gguf/ggml-types.ts';

export type TestValue =
  | {
      type: Exclude<GgufValueType, typeof GgufValueType.ARRAY | typeof GgufValueType.STRING>;
      value: number | bigint | boolean;
    }
  | { type: typeof GgufValueType.STRING; value: string }
  | {
      type: typeof GgufValueType.ARRAY;
      itemType: GgufValueType;
      /** For arrays of arrays: the inner arrays' element type. */
      innerItemType?: GgufValueType;
      value: unknown[];
    };

export interface TestTensor {
  name: string;
  dims: number[];
  type: GgmlType;
  /** Defaults to a deterministic byte pattern of the right length. */
  data?: Uint8Array;
}

export interface TestGguf {
  version?: number;
  /** Entries in file order; the array form may repeat a key. */
  metadata?: Record<string, TestValue> | [string, TestValue][];
  tensors?: TestTensor[];
  /** Written as `general.alignment` (uint32) when given. */
  alignment?: number;
}

class ByteWriter {
  private chunks: number[] = [];
  private view = new DataView(new ArrayBuffer(8));

  get length(): number {
    return this.chunks.length;
  }

  private put(n: number): void {
    for (let i = 0; i < n; i++) this.chunks.push(this.view.getUint8(i));
  }

  u8(v: number) {
    this.view.setUint8(0, v);
    this.put(1);
  }
  i8(v: number) {
    this.view.setInt8(0, v);
    this.put(1);
  }
  u16(v: number) {
    this.view.setUint16(0, v, true);
    this.put(2);
  }
  i16(v: number) {
    this.view.setInt16(0, v, true);
    this.put(2);
  }
  u32(v: number) {
    this.view.setUint32(0, v, true);
    this.put(4);
  }
  i32(v: number) {
    this.view.setInt32(0, v, true);
    this.put(4);
  }
  f32(v: number) {
    this.view.setFloat32(0, v, true);
    this.put(4);
  }
  f64(v: number) {
    this.view.setFloat64(0, v, true);
    this.put(8);
  }
  u64(v: number | bigint) {
    this.view.setBigUint64(0, BigInt(v), true);
    this.put(8);
  }
  i64(v: number | bigint) {
    this.view.setBigInt64(0, BigInt(v), true);
    this.put(8);
  }
  bytes(b: Uint8Array) {
    for (const x of b) this.chunks.push(x);
  }
  string(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  padTo(alignment: number) {
    while (this.chunks.length % alignment !== 0) this.chunks.push(0);
  }
  toBytes(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

function writeValue(
  w: ByteWriter,
  type: GgufValueType,
  value: unknown,
  itemType?: GgufValueType,
  innerItemType?: GgufValueType,
): void {
  switch (type) {
    case GgufValueType.UINT8:
      w.u8(value as number);
      return;
    case GgufValueType.INT8:
      w.i8(value as number);
      return;
    case GgufValueType.UINT16:
      w.u16(value as number);
      return;
    case GgufValueType.INT16:
      w.i16(value as number);
      return;
    case GgufValueType.UINT32:
      w.u32(value as number);
      return;
    case GgufValueType.INT32:
      w.i32(value as number);
      return;
    case GgufValueType.FLOAT32:
      w.f32(value as number);
      return;
    case GgufValueType.FLOAT64:
      w.f64(value as number);
      return;
    case GgufValueType.BOOL:
      w.u8(value ? 1 : 0);
      return;
    case GgufValueType.UINT64:
      w.u64(value as number | bigint);
      return;
    case GgufValueType.INT64:
      w.i64(value as number | bigint);
      return;
    case GgufValueType.STRING:
      w.string(value as string);
      return;
    case GgufValueType.ARRAY: {
      const items = value as unknown[];
      w.u32(itemType!);
      w.u64(items.length);
      for (const item of items) writeValue(w, itemType!, item, innerItemType);
      return;
    }
  }
}

/** The byte length of a tensor of this type and shape. */
export function tensorBytes(type: GgmlType, dims: number[]): number {
  const layout = GGML_BLOCK_LAYOUT[type];
  return (dims.reduce((a, b) => a * b, 1) / layout.elements) * layout.bytes;
}

/** Encodes a GGUF file: header, tensor table, aligned tensor data (contiguous, in order). */
export function buildGguf(spec: TestGguf): Uint8Array {
  const alignment = spec.alignment ?? 32;
  const metadata: [string, TestValue][] = Array.isArray(spec.metadata)
    ? [...spec.metadata]
    : Object.entries(spec.metadata ?? {});
  if (spec.alignment !== undefined)
    metadata.push(['general.alignment', { type: GgufValueType.UINT32, value: alignment }]);
  const tensors = (spec.tensors ?? []).map((t, i) => {
    const data =
      t.data ?? Uint8Array.from({ length: tensorBytes(t.type, t.dims) }, (_, j) => (j * 31 + i * 7) & 0xff);
    return { ...t, data };
  });

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(spec.version ?? 3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, v] of metadata) {
    w.string(key);
    w.u32(v.type);
    if (v.type === GgufValueType.ARRAY) writeValue(w, v.type, v.value, v.itemType, v.innerItemType);
    else writeValue(w, v.type, v.value);
  }
  let offset = 0;
  for (const t of tensors) {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(offset);
    offset += Math.ceil(t.data.length / alignment) * alignment;
  }
  w.padTo(alignment);
  for (const t of tensors) {
    w.bytes(t.data);
    w.padTo(alignment);
  }
  return w.toBytes();
}

/** A small Llama-like file with a few metadata kinds and tensors of several types. */
export function buildSampleGguf(): Uint8Array {
  return buildGguf({
    metadata: {
      'general.architecture': { type: GgufValueType.STRING, value: 'llama' },
      'general.name': { type: GgufValueType.STRING, value: 'tiny' },
      'llama.block_count': { type: GgufValueType.UINT32, value: 2 },
      'llama.rope.freq_base': { type: GgufValueType.FLOAT32, value: 10000 },
      'general.file_type': { type: GgufValueType.UINT32, value: 3 },
      'tokenizer.ggml.tokens': {
        type: GgufValueType.ARRAY,
        itemType: GgufValueType.STRING,
        value: ['<unk>', 'a', 'b', 'é'],
      },
      'tokenizer.ggml.scores': {
        type: GgufValueType.ARRAY,
        itemType: GgufValueType.FLOAT32,
        value: [0, -1, -2, -3],
      },
      'tokenizer.ggml.add_bos_token': { type: GgufValueType.BOOL, value: true },
      'test.big': { type: GgufValueType.UINT64, value: 2n ** 60n },
      'test.negative': { type: GgufValueType.INT64, value: -5 },
    },
    tensors: [
      { name: 'token_embd.weight', dims: [64, 4], type: GgmlType.Q4_1 },
      { name: 'output_norm.weight', dims: [64], type: GgmlType.F32 },
      { name: 'blk.0.attn_q.weight', dims: [256, 2], type: GgmlType.Q6_K },
      { name: 'blk.0.ffn_up.weight', dims: [32, 3], type: GgmlType.F16 },
    ],
  });
}
