import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgmlType, GgufValueType } from '../../../src/model/gguf/ggml-types.ts';
import {
  type GgufError,
  inspectGguf,
  parseGgufHeader,
  readTensorBytes,
  readTensorF32,
} from '../../../src/model/gguf/reader.ts';
import { buildGguf, buildSampleGguf, type TestValue, tensorBytes } from './gguf-builder.ts';

/** The GgufError a call throws (fails the test when it throws anything else or nothing). */
function errorOf(call: () => unknown): GgufError {
  try {
    call();
  } catch (error) {
    expect((error as Error).name).toBe('GgufError');
    return error as GgufError;
  }
  throw new Error('expected a GgufError, nothing was thrown');
}

/** A one-tensor file whose tensor table fields can be overridden. */
function oneTensor(tensor: Partial<{ name: string; dims: number[]; type: GgmlType }>): Uint8Array {
  return buildGguf({
    tensors: [{ name: 'w', dims: [32, 2], type: GgmlType.F32, ...tensor, data: new Uint8Array(32 * 2 * 4) }],
  });
}

describe('parseGgufHeader', () => {
  it('reads metadata of every kind and the tensor table with absolute offsets', () => {
    const bytes = buildSampleGguf();
    const file = parseGgufHeader(bytes);
    expect(file.version).toBe(3);
    expect(file.alignment).toBe(32);
    expect(file.fileSize).toBe(bytes.byteLength);
    expect(file.metadata['general.architecture']).toBe('llama');
    expect(file.metadata['llama.block_count']).toBe(2);
    expect(file.metadata['llama.rope.freq_base']).toBe(10000);
    expect(file.metadata['tokenizer.ggml.tokens']).toEqual(['<unk>', 'a', 'b', 'é']);
    expect(file.metadata['tokenizer.ggml.scores']).toEqual([0, -1, -2, -3]);
    expect(file.metadata['tokenizer.ggml.add_bos_token']).toBe(true);
    expect(file.metadata['test.big']).toBe(2n ** 60n);
    expect(file.metadata['test.negative']).toBe(-5);
    expect(file.metadataKinds['tokenizer.ggml.tokens']).toEqual({
      type: GgufValueType.ARRAY,
      itemType: GgufValueType.STRING,
    });
    expect(file.metadataKinds['llama.block_count']).toEqual({ type: GgufValueType.UINT32 });
    expect(file.tensors.map((t) => [t.name, t.dims, t.type, t.byteLength])).toEqual([
      ['token_embd.weight', [64, 4], GgmlType.Q4_1, 8 * 20],
      ['output_norm.weight', [64], GgmlType.F32, 256],
      ['blk.0.attn_q.weight', [256, 2], GgmlType.Q6_K, 2 * 210],
      ['blk.0.ffn_up.weight', [32, 3], GgmlType.F16, 192],
    ]);
    expect(file.dataOffset % 32).toBe(0);
    expect(file.tensors[0].offset).toBe(file.dataOffset);
    expect(file.tensors[1].offset).toBe(file.dataOffset + 160);
    for (const t of file.tensors) expect(t.offset % 32).toBe(0);
  });

  it('reads version 2 files, which share version 3 layout', () => {
    const file = parseGgufHeader(
      buildGguf({ version: 2, tensors: [{ name: 'x', dims: [8], type: GgmlType.F32 }] }),
    );
    expect(file.version).toBe(2);
    expect(file.tensors[0].byteLength).toBe(32);
  });

  it('honours general.alignment', () => {
    const bytes = buildGguf({
      alignment: 64,
      tensors: [
        { name: 'a', dims: [3], type: GgmlType.F32 },
        { name: 'b', dims: [3], type: GgmlType.F32 },
      ],
    });
    const file = parseGgufHeader(bytes);
    expect(file.alignment).toBe(64);
    expect(file.dataOffset % 64).toBe(0);
    expect(file.tensors[1].offset - file.tensors[0].offset).toBe(64);
  });

  it('keeps a __proto__ key as plain data', () => {
    const file = parseGgufHeader(
      buildGguf({ metadata: { __proto__: { type: GgufValueType.STRING, value: 'x' } } as never }),
    );
    expect(Object.keys(file.metadata)).toEqual([]);
    const raw = buildGguf({ metadata: { ['__proto__' as string]: { type: GgufValueType.UINT8, value: 1 } } });
    expect(parseGgufHeader(raw).metadata).toBeDefined();
  });

  it('refuses a file that is not GGUF, naming what it starts with', () => {
    const error = errorOf(() => parseGgufHeader(new TextEncoder().encode('PK\x03\x04 a zip file')));
    expect(error.code).toBe('bad_magic');
    expect(error.message).toContain('"PK\\u0003\\u0004"');
  });

  it('refuses versions other than 2 and 3, naming big-endian files', () => {
    for (const [version, hint] of [
      [1, 'v1'],
      [4, 'version 4'],
      [0x03000000, 'big-endian'],
    ] as const) {
      const error = errorOf(() => parseGgufHeader(buildGguf({ version })));
      expect(error.code).toBe('unsupported_version');
      expect(error.message).toContain(hint);
    }
  });

  it('refuses counts the file size cannot hold before allocating anything', () => {
    const bytes = buildGguf({});
    const view = new DataView(bytes.buffer);
    view.setBigUint64(8, 2n ** 62n, true);
    const error = errorOf(() => parseGgufHeader(bytes));
    expect(error.code).toBe('truncated');
    expect(error.message).toBe(
      `header: tensor count 4611686018427387904 needs at least ${2n ** 62n * 32n} bytes but the ${bytes.byteLength}-byte file has ${bytes.byteLength - 16} left at byte 16`,
    );
  });

  it('refuses an array length the file cannot hold', () => {
    const bytes = buildGguf({
      metadata: { 'a.list': { type: GgufValueType.ARRAY, itemType: GgufValueType.UINT32, value: [1, 2] } },
    });
    // The array length sits after magic..counts (24), key (8 + 6), type (4), item type (4).
    new DataView(bytes.buffer).setBigUint64(24 + 14 + 8, 1n << 40n, true);
    const error = errorOf(() => parseGgufHeader(bytes));
    expect(error.code).toBe('truncated');
    expect(error.message).toContain(
      'key a.list: array length 1099511627776 needs at least 4398046511104 bytes',
    );
  });

  it('refuses a string running past the end of the file', () => {
    const bytes = buildGguf({ metadata: { 'general.name': { type: GgufValueType.STRING, value: 'abc' } } });
    new DataView(bytes.buffer).setBigUint64(24 + 20 + 4, 1000n, true);
    const error = errorOf(() => parseGgufHeader(bytes));
    expect(error.code).toBe('truncated');
    expect(error.message).toContain('key general.name: string value of 1000 bytes');
  });

  it('refuses duplicate keys and duplicate tensor names', () => {
    const entry: [string, TestValue] = ['a.b', { type: GgufValueType.UINT8, value: 1 }];
    const twice = buildGguf({ metadata: [entry, entry] });
    expect(errorOf(() => parseGgufHeader(twice)).message).toBe('key a.b: appears twice');

    const tensors = buildGguf({
      tensors: [
        { name: 'w', dims: [8], type: GgmlType.F32 },
        { name: 'w', dims: [8], type: GgmlType.F32 },
      ],
    });
    expect(errorOf(() => parseGgufHeader(tensors)).message).toBe('tensor w: appears twice');
  });

  it('refuses bad tensor shapes: n_dims, zero dims, overflow, rows not a whole number of blocks', () => {
    expect(errorOf(() => parseGgufHeader(oneTensor({ dims: [1, 1, 1, 1, 1] }))).message).toContain(
      'tensor w: n_dims 5 is outside 1..4',
    );
    expect(errorOf(() => parseGgufHeader(oneTensor({ dims: [32, 0] }))).message).toContain(
      'tensor w: dim 1 is 0',
    );
    const overflow = errorOf(() => parseGgufHeader(oneTensor({ dims: [2 ** 30, 2 ** 30, 2 ** 30] })));
    expect(overflow.code).toBe('corrupt');
    expect(overflow.message).toContain('overflow');
    const ragged = errorOf(() => parseGgufHeader(oneTensor({ dims: [48, 1], type: GgmlType.Q4_0 })));
    expect(ragged.message).toContain('row length 48 is not a multiple of the Q4_0 block size 32');
  });

  it('refuses an unknown tensor type with its id', () => {
    const error = errorOf(() => parseGgufHeader(oneTensor({ type: 77 as GgmlType })));
    expect(error.code).toBe('unsupported_type');
    expect(error.message).toBe('tensor w: ggml type 77 is not supported by this reader');
  });

  it('refuses tensor data past the end of the file with both numbers', () => {
    const bytes = buildSampleGguf();
    const cut = bytes.subarray(0, bytes.byteLength - 40);
    const error = errorOf(() => parseGgufHeader(cut));
    expect(error.code).toBe('truncated');
    const last = parseGgufHeader(bytes).tensors[3];
    expect(error.message).toBe(
      `tensor blk.0.ffn_up.weight: data ends at byte ${last.offset + last.byteLength} but the file has ${cut.byteLength}`,
    );
  });

  it('refuses misaligned and overlapping tensor data', () => {
    const bytes = buildGguf({
      tensors: [
        { name: 'a', dims: [16], type: GgmlType.F32 },
        { name: 'b', dims: [16], type: GgmlType.F32 },
      ],
    });
    // b's offset field is the last 8 bytes of the tensor table.
    const offsetField = findTableEnd(bytes);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(offsetField - 8, 40n, true);
    expect(errorOf(() => parseGgufHeader(bytes)).message).toBe(
      'tensor b: data offset 40 is not a multiple of the alignment 32',
    );
    view.setBigUint64(offsetField - 8, 32n, true);
    expect(errorOf(() => parseGgufHeader(bytes)).message).toMatch(
      /tensor b: data at byte \d+ overlaps tensor a/,
    );
  });

  it('refuses a general.alignment that is not a uint32 power of two', () => {
    expect(errorOf(() => parseGgufHeader(buildGguf({ alignment: 48 }))).message).toContain(
      '48 is not a power of two',
    );
    const wrongType = buildGguf({
      metadata: { 'general.alignment': { type: GgufValueType.UINT64, value: 32 } },
    });
    expect(errorOf(() => parseGgufHeader(wrongType)).message).toContain('must be uint32');
  });

  it('asks for a longer prefix when given too little of a file', () => {
    const bytes = buildSampleGguf();
    const error = errorOf(() => parseGgufHeader(bytes.subarray(0, 100), bytes.byteLength));
    expect(error.code).toBe('incomplete');
    expect(error.needBytes).toBeGreaterThan(100);
    const file = parseGgufHeader(bytes.subarray(0, parseGgufHeader(bytes).dataOffset), bytes.byteLength);
    expect(file.tensors).toHaveLength(4);
  });
});

/** The end of the tensor table: the unpadded header length, found by parsing a prefix. */
function findTableEnd(bytes: Uint8Array): number {
  for (let n = 24; n <= bytes.byteLength; n++) {
    try {
      parseGgufHeader(bytes.subarray(0, n), bytes.byteLength);
      return n;
    } catch {}
  }
  throw new Error('no prefix parses');
}

describe('inspectGguf and tensor reads', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gguf-reader-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a header longer than its first read, and the tensors', async () => {
    // A 6 MB token list makes the header longer than the reader's first 4 MB read.
    const tokens = Array.from({ length: 200_000 }, (_, i) => `token-${i}-${'x'.repeat(20)}`);
    const values = Float32Array.from({ length: 64 }, (_, i) => i / 8 - 3);
    const path = join(dir, 'long-header.gguf');
    await writeFile(
      path,
      buildGguf({
        metadata: {
          'tokenizer.ggml.tokens': {
            type: GgufValueType.ARRAY,
            itemType: GgufValueType.STRING,
            value: tokens,
          },
        },
        tensors: [{ name: 'norm', dims: [64], type: GgmlType.F32, data: new Uint8Array(values.buffer) }],
      }),
    );
    const file = await inspectGguf(path);
    expect((file.metadata['tokenizer.ggml.tokens'] as string[]).length).toBe(200_000);
    expect(file.dataOffset).toBeGreaterThan(4 << 20);
    const raw = await readTensorBytes(path, file.tensors[0]);
    expect(raw.byteLength).toBe(tensorBytes(GgmlType.F32, [64]));
    expect(await readTensorF32(path, file.tensors[0])).toEqual(values);
  });

  it('names the file in its errors', async () => {
    const path = join(dir, 'cut.gguf');
    const bytes = buildSampleGguf();
    await writeFile(path, bytes.subarray(0, bytes.byteLength - 100));
    await expect(inspectGguf(path)).rejects.toMatchObject({
      code: 'truncated',
      message: expect.stringContaining(path),
    });
    await expect(inspectGguf(join(dir, 'missing.gguf'))).rejects.toMatchObject({ code: 'io' });
  });
});
