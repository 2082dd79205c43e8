import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../../src/model/checkpoint.ts';
import { llamaGgufMetadata, llamaGgufTensors } from '../../../src/model/gguf/checkpoint-to-gguf.ts';
import { GgmlType, GgufValueType } from '../../../src/model/gguf/ggml-types.ts';
import { floatToHalfBits } from '../../../src/model/gguf/half.ts';
import { inspectGguf, readTensorF32 } from '../../../src/model/gguf/reader.ts';
import { tokenizerGgufMetadata } from '../../../src/model/gguf/tokenizer-metadata.ts';
import {
  GgufWriteError,
  type GgufWriteValue,
  quantizeQ8_0,
  writeGguf,
} from '../../../src/model/gguf/writer.ts';
import { halfToFloat } from '../../../src/model/safetensors.ts';
import { FIXTURES, maxAbsDiff, readFixture, useBackend } from '../../policy/helpers.ts';
import { createExactContext, llamaCppLogProbs, loadLlamaCppModel, logSoftmax } from './llama-cpp.ts';
import { tinyTokenizer } from './tiny-tokenizer.ts';

const dir = mkdtempSync(join(tmpdir(), 'corgi-gguf-writer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface FixtureCase {
  type: string;
  kind: string;
  count: number;
  bytes: string;
  expected: string;
}
const fixture = JSON.parse(
  readFileSync(new URL('../../fixtures/gguf-quants.json', import.meta.url), 'utf8'),
) as {
  cases: FixtureCase[];
};
const fromBase64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const floats = (s: string) => {
  const b = fromBase64(s);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

const EVERY_TYPE: Record<string, GgufWriteValue> = {
  'test.uint8': { type: 'uint8', value: 255 },
  'test.int8': { type: 'int8', value: -128 },
  'test.uint16': { type: 'uint16', value: 65535 },
  'test.int16': { type: 'int16', value: -32768 },
  'test.uint32': { type: 'uint32', value: 4294967295 },
  'test.int32': { type: 'int32', value: -2147483648 },
  'test.float32': { type: 'float32', value: 0.1 },
  'test.bool': { type: 'bool', value: true },
  'test.string': { type: 'string', value: 'snow ☃ and "quotes"' },
  'test.uint64': { type: 'uint64', value: 2n ** 64n - 1n },
  'test.int64': { type: 'int64', value: -(2n ** 63n) },
  'test.float64': { type: 'float64', value: Math.PI },
  'test.strings': { type: 'array', itemType: 'string', value: ['a', '', 'ü'] },
  'test.empty': { type: 'array', itemType: 'int32', value: [] },
};

describe('writeGguf', () => {
  it('writes metadata of every value type that the reader reads back with its type', async () => {
    const path = join(dir, 'every-type.gguf');
    await writeGguf(path, EVERY_TYPE, []);
    const file = await inspectGguf(path);
    expect(file.version).toBe(3);
    const m = file.metadata;
    expect(m['test.uint8']).toBe(255);
    expect(m['test.int8']).toBe(-128);
    expect(m['test.uint32']).toBe(4294967295);
    expect(m['test.int32']).toBe(-2147483648);
    expect(m['test.float32']).toBe(Math.fround(0.1));
    expect(m['test.bool']).toBe(true);
    expect(m['test.string']).toBe('snow ☃ and "quotes"');
    expect(BigInt(m['test.uint64'] as bigint)).toBe(2n ** 64n - 1n);
    expect(BigInt(m['test.int64'] as bigint)).toBe(-(2n ** 63n));
    expect(m['test.float64']).toBe(Math.PI);
    expect(m['test.strings']).toEqual(['a', '', 'ü']);
    expect(m['test.empty']).toEqual([]);
    expect(file.metadataKinds['test.int16']).toEqual(expect.objectContaining({ type: GgufValueType.INT16 }));
    expect(file.metadataKinds['test.strings']).toEqual({
      type: GgufValueType.ARRAY,
      itemType: GgufValueType.STRING,
    });
  });

  it('writes F32, F16 and Q8_0 tensors at aligned offsets that read back as written', async () => {
    const path = join(dir, 'tensors.gguf');
    const values = Float32Array.from({ length: 96 }, (_, i) => Math.sin(i) * (i % 7));
    await writeGguf(path, { 'general.alignment': { type: 'uint32', value: 64 } }, [
      { name: 'a', dims: [3], type: GgmlType.F32, data: Float32Array.of(1, -2, 3.5) },
      { name: 'b', dims: [32, 3], type: GgmlType.F16, data: values },
      { name: 'c', dims: [32, 3], type: GgmlType.Q8_0, data: values },
    ]);
    const file = await inspectGguf(path);
    expect(file.alignment).toBe(64);
    for (const t of file.tensors) expect((t.offset - file.dataOffset) % 64).toBe(0);
    const [a, b, c] = file.tensors;
    expect(c!.dims).toEqual([32, 3]);
    expect(c!.byteLength).toBe(3 * 34);
    expect([...(await readTensorF32(path, a!))]).toEqual([1, -2, 3.5]);
    const half = await readTensorF32(path, b!);
    for (let i = 0; i < 96; i++) expect(half[i]).toBe(halfToFloat(floatToHalfBits(values[i]!)));
    const q8 = await readTensorF32(path, c!);
    for (let block = 0; block < 3; block++) {
      const slice = values.subarray(block * 32, block * 32 + 32);
      const d = Math.max(...slice.map(Math.abs)) / 127;
      for (let j = 0; j < 32; j++)
        expect(Math.abs(q8[block * 32 + j]! - slice[j]!)).toBeLessThanOrEqual(d / 2 + 1e-3 * d);
    }
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('refuses bad input by name and leaves no file behind', async () => {
    const path = join(dir, 'bad.gguf');
    const bad = [
      [{ 'x.n': { type: 'uint8', value: 256 } }, [], 'metadata x.n: 256 is not a uint8'],
      [
        { 'x.s': { type: 'array', itemType: 'string', value: ['a', 3] } },
        [],
        'metadata x.s[1]: 3 is not a string',
      ],
      [
        {},
        [{ name: 'q', dims: [16], type: GgmlType.Q8_0, data: new Float32Array(16) }],
        'tensor q: row length 16',
      ],
      [
        {},
        [{ name: 'f', dims: [4, 2], type: GgmlType.F32, data: new Float32Array(6) }],
        'tensor f: dims [4,2] hold 8',
      ],
      [
        {},
        [{ name: 'x'.repeat(64), dims: [1], type: GgmlType.F32, data: new Float32Array(1) }],
        'longer than 63',
      ],
    ] as const;
    for (const [metadata, tensors, message] of bad) {
      const error = await writeGguf(path, metadata as never, tensors as never).catch((e: unknown) => e);
      expect(GgufWriteError.isInstance(error)).toBe(true);
      expect((error as Error).message).toContain(message);
    }
    expect(existsSync(path)).toBe(false);
  });

  it('replaces an existing file whole', async () => {
    const path = join(dir, 'replace.gguf');
    writeFileSync(path, 'old contents');
    await writeGguf(path, { 'general.name': { type: 'string', value: 'new' } }, []);
    expect((await inspectGguf(path)).metadata['general.name']).toBe('new');
  });

  it('writes F16 weights and metadata of every type into a model llama.cpp loads and runs', async () => {
    await useBackend('cpu');
    const model = await loadCheckpoint(join(FIXTURES, 'untied'));
    const path = join(dir, 'tiny-f16.gguf');
    const metadata = new Map([
      ...llamaGgufMetadata(model.config),
      ...tokenizerGgufMetadata(tinyTokenizer(), model.config.vocab_size),
      ...Object.entries(EVERY_TYPE),
    ]);
    const tensors = llamaGgufTensors(model).map((t) =>
      t.dims.length === 2 ? { ...t, type: GgmlType.F16 as typeof GgmlType.F16 } : t,
    );
    await writeGguf(path, metadata, tensors);
    const expected = readFixture('untied');
    const cpp = await loadLlamaCppModel(path);
    const context = await createExactContext(cpp);
    try {
      const got = await llamaCppLogProbs(context, expected.input_ids[0]!);
      const want = expected.logits[0]!.map(logSoftmax);
      // f16 weights: about 3 significant digits per weight.
      expect(maxAbsDiff(got.flat(), want.flat())).toBeLessThan(2e-2);
    } finally {
      await context.dispose();
      await cpp.dispose();
      model.dispose();
    }
  });
});

describe('quantizeQ8_0 (ggml quantize_row_q8_0_ref)', () => {
  it('reproduces gguf-py’s Q8_0 blocks from their own values', () => {
    const c = fixture.cases.find((x) => x.type === 'Q8_0' && x.kind === 'quantized')!;
    expect([...quantizeQ8_0(floats(c.expected))]).toEqual([...fromBase64(c.bytes)]);
  });

  it('stores absmax/127 as f16 and rounds halves away from zero', () => {
    // absmax 127 → d = 1 exactly; 2.5 → 3 and −2.5 → −3 (roundf), 0.49 → 0.
    const block = new Float32Array(32);
    block.set([127, 2.5, -2.5, 0.49, -127]);
    const out = quantizeQ8_0(block);
    const view = new DataView(out.buffer);
    expect(view.getUint16(0, true)).toBe(0x3c00);
    expect([...new Int8Array(out.buffer, 2, 5)]).toEqual([127, 3, -3, 0, -127]);
    expect([...quantizeQ8_0(new Float32Array(32))]).toEqual(new Array(34).fill(0));
  });
});

describe('floatToHalfBits (ggml fp32 → fp16)', () => {
  it('rounds to nearest even, overflows to infinity, keeps subnormals and NaN', () => {
    expect(floatToHalfBits(1)).toBe(0x3c00);
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(floatToHalfBits(-2)).toBe(0xc000);
    expect(floatToHalfBits(65504)).toBe(0x7bff);
    expect(floatToHalfBits(65520)).toBe(0x7c00);
    expect(floatToHalfBits(2 ** -24)).toBe(0x0001);
    expect(floatToHalfBits(2 ** -25)).toBe(0x0000); // tie → even (zero)
    expect(floatToHalfBits(3 * 2 ** -25)).toBe(0x0002);
    expect(floatToHalfBits(Number.NaN)).toBe(0x7e00);
    expect(floatToHalfBits(Number.NEGATIVE_INFINITY)).toBe(0xfc00);
  });

  it('gives the f16 bits of gguf-py’s F16 case', () => {
    const c = fixture.cases.find((x) => x.type === 'F16')!;
    const bits = fromBase64(c.bytes);
    const view = new DataView(bits.buffer, bits.byteOffset);
    floats(c.expected).forEach((v, i) => expect(floatToHalfBits(v)).toBe(view.getUint16(2 * i, true)));
  });
});
