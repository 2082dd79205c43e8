import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dequantize, halfToFloat } from '../../../src/model/gguf/dequantize.ts';
import { GGML_BLOCK_LAYOUT, GgmlType } from '../../../src/model/gguf/ggml-types.ts';

/** Reference values from gguf-py (see the script named in the file's `generator`). */
interface FixtureCase {
  type: keyof typeof GgmlType;
  typeId: number;
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

function decodeBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** Indices whose float32 bits differ (so -0 ≠ 0 and NaN patterns count), at most 5. */
function bitMismatches(actual: Float32Array, expected: Float32Array): string[] {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const out: string[] = [];
  for (let i = 0; i < e.length && out.length < 5; i++) {
    if (a[i] !== e[i]) out.push(`[${i}] ${actual[i]} != ${expected[i]}`);
  }
  return out;
}

/** One block of `type` with the given bytes at the given offsets, zeros elsewhere. */
function block(type: GgmlType, fields: [number, number[]][]): Uint8Array {
  const bytes = new Uint8Array(GGML_BLOCK_LAYOUT[type].bytes);
  for (const [offset, values] of fields) bytes.set(values, offset);
  return bytes;
}

const F16_ONE = [0x00, 0x3c];
const F16_HALF = [0x00, 0x38];
const F16_TWO = [0x00, 0x40];
const F16_MINUS_ONE = [0x00, 0xbc];
const F16_QUARTER = [0x00, 0x34];
const F16_TEN = [0x00, 0x49];
const filled = (n: number, value: number) => new Array<number>(n).fill(value);
const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

describe('dequantize against gguf-py', () => {
  it('has a reference case for every dequantizable type', () => {
    const types = new Set(fixture.cases.map((c) => c.type));
    expect([...types].sort()).toEqual(
      ['BF16', 'F16', 'F32', 'Q4_0', 'Q4_1', 'Q4_K', 'Q5_0', 'Q5_1', 'Q5_K', 'Q6_K', 'Q8_0'].sort(),
    );
  });

  it.each(fixture.cases.map((c) => [`${c.type} ${c.kind} (${c.count} values)`, c] as const))(
    '%s equals gguf-py bit for bit',
    (_, c) => {
      expect(GgmlType[c.type]).toBe(c.typeId);
      const bytes = decodeBase64(c.bytes);
      const expected = new Float32Array(decodeBase64(c.expected).buffer);
      const actual = dequantize(c.typeId as GgmlType, bytes, c.count);
      expect(actual).toHaveLength(c.count);
      expect(bitMismatches(actual, expected)).toEqual([]);
    },
  );

  it('reads blocks at any byte offset (a tensor inside a larger buffer)', () => {
    const c = fixture.cases.find((x) => x.type === 'Q4_K')!;
    const bytes = decodeBase64(c.bytes);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    const f32 = fixture.cases.find((x) => x.type === 'F32')!;
    const f32Bytes = decodeBase64(f32.bytes);
    const f32Shifted = new Uint8Array(f32Bytes.length + 1);
    f32Shifted.set(f32Bytes, 1);
    expect(dequantize(GgmlType.Q4_K, shifted.subarray(3), c.count)).toEqual(
      dequantize(GgmlType.Q4_K, bytes, c.count),
    );
    expect(dequantize(GgmlType.F32, f32Shifted.subarray(1), f32.count)).toEqual(
      new Float32Array(decodeBase64(f32.expected).buffer),
    );
  });
});

describe('dequantize by the block layouts (hand-derived)', () => {
  it('F16 and BF16: sign, exponent, fraction; subnormals and infinities', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(Array.from(dequantize(GgmlType.F16, Uint8Array.from([0x00, 0x3c, 0x00, 0xb8]), 2))).toEqual([
      1, -0.5,
    ]);
    // bf16 is the high half of a float32: 0x3f80 → 1, 0xc040 → -3.
    expect(Array.from(dequantize(GgmlType.BF16, Uint8Array.from([0x80, 0x3f, 0x40, 0xc0]), 2))).toEqual([
      1, -3,
    ]);
  });

  it('Q4_0: y = (q − 8)·d, low nibbles are elements 0..15, high nibbles 16..31', () => {
    // d = 1, every byte 0x98: low nibble 8 → 0, high nibble 9 → 1.
    const y = dequantize(
      GgmlType.Q4_0,
      block(GgmlType.Q4_0, [
        [0, F16_ONE],
        [2, filled(16, 0x98)],
      ]),
      32,
    );
    expect(Array.from(y)).toEqual([...filled(16, 0), ...filled(16, 1)]);
  });

  it('Q4_1: y = q·d + m', () => {
    // d = 0.5, m = −1, byte j = j | (15 − j) << 4.
    const y = dequantize(
      GgmlType.Q4_1,
      block(GgmlType.Q4_1, [
        [0, F16_HALF],
        [2, F16_MINUS_ONE],
        [4, range(16, (j) => j | ((15 - j) << 4))],
      ]),
      32,
    );
    expect(Array.from(y)).toEqual([
      ...range(16, (j) => 0.5 * j - 1),
      ...range(16, (j) => 0.5 * (15 - j) - 1),
    ]);
  });

  it('Q5_0: bit j of qh is the fifth bit of element j; y = (q − 16)·d', () => {
    // d = 1, qh = 0xffff0000 (elements 16..31 get the fifth bit), every byte 0x11.
    const y = dequantize(
      GgmlType.Q5_0,
      block(GgmlType.Q5_0, [
        [0, F16_ONE],
        [2, [0, 0, 0xff, 0xff]],
        [6, filled(16, 0x11)],
      ]),
      32,
    );
    expect(Array.from(y)).toEqual([...filled(16, 1 - 16), ...filled(16, 17 - 16)]);
  });

  it('Q5_1: y = q·d + m with the fifth bit from qh', () => {
    // d = 2, m = 10, only element 0 has its fifth bit, all nibbles 0.
    const y = dequantize(
      GgmlType.Q5_1,
      block(GgmlType.Q5_1, [
        [0, F16_TWO],
        [2, F16_TEN],
        [4, [1, 0, 0, 0]],
      ]),
      32,
    );
    expect(Array.from(y)).toEqual([16 * 2 + 10, ...filled(31, 10)]);
  });

  it('Q8_0: y = q·d, q a signed byte', () => {
    const y = dequantize(
      GgmlType.Q8_0,
      block(GgmlType.Q8_0, [
        [0, F16_QUARTER],
        [2, range(32, (j) => (j - 16) & 0xff)],
      ]),
      32,
    );
    expect(Array.from(y)).toEqual(range(32, (j) => (j - 16) / 4));
  });

  it('Q4_K: eight 32-element sub-blocks, 6-bit scales and mins packed by get_scale_min_k4', () => {
    // d = 1, dmin = 1. Sub-blocks 0..3: scales[j] = j + 1 (min 0); sub-block 0's byte also has top
    // bits 0b11, which are bits 4..5 of sub-block 4's scale. Sub-blocks 4..7: scales[8..11] = 0x28
    // (scale nibble 8, min nibble 2). Every qs byte 0x53: low nibble 3, high nibble 5.
    const y = dequantize(
      GgmlType.Q4_K,
      block(GgmlType.Q4_K, [
        [0, F16_ONE],
        [2, F16_ONE],
        [4, [0xc1, 2, 3, 4, 0, 0, 0, 0, 0x28, 0x28, 0x28, 0x28]],
        [16, filled(128, 0x53)],
      ]),
      256,
    );
    // Each 32 bytes of qs hold two sub-blocks: low nibbles the first (q = 3), high the second (q = 5).
    const scale = [1, 2, 3, 4, 8 | (3 << 4), 8, 8, 8];
    const min = [0, 0, 0, 0, 2, 2, 2, 2];
    const expected = range(256, (i) => {
      const sub = i >> 5;
      return scale[sub] * (sub % 2 === 0 ? 3 : 5) - min[sub];
    });
    expect(Array.from(y)).toEqual(expected);
  });

  it('Q5_K: as Q4_K with a fifth bit from qh (bit 2i and 2i+1 for the i-th pair of sub-blocks)', () => {
    // d = 1, dmin = 0, every scale 1; qh bytes 0x81 give sub-blocks 0 and 7 their fifth bit; qs 0x21.
    const y = dequantize(
      GgmlType.Q5_K,
      block(GgmlType.Q5_K, [
        [0, F16_ONE],
        [4, [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]],
        [16, filled(32, 0x81)],
        [48, filled(128, 0x21)],
      ]),
      256,
    );
    const perSub = [1 + 16, 2, 1, 2, 1, 2, 1, 2 + 16];
    expect(Array.from(y)).toEqual(range(256, (i) => perSub[i >> 5]));
  });

  it('Q6_K: y = d·scale·(q − 32), one signed scale per 16 elements, q from ql nibbles and qh bit pairs', () => {
    const scales = range(16, (i) => (i === 15 ? -1 : i + 1));
    const base: [number, number[]][] = [
      [192, scales.map((s) => s & 0xff)],
      [208, F16_ONE],
    ];
    // All quants zero: q − 32 = −32 everywhere, so element e shows its scale, scales[e >> 4].
    const zero = dequantize(GgmlType.Q6_K, block(GgmlType.Q6_K, base), 256);
    expect(Array.from(zero)).toEqual(range(256, (e) => -32 * scales[e >> 4]));
    // ql[0] = 0x1f: element 0 takes its low nibble (15), element 64 its high nibble (1); qh[0] bits
    // 2..3 = 01 are the top bits of element 32, whose low nibble comes from ql[32].
    const mixed = dequantize(
      GgmlType.Q6_K,
      block(GgmlType.Q6_K, [...base, [0, [0x1f]], [128, [0b0100]]]),
      256,
    );
    expect(mixed[0]).toBe((15 - 32) * scales[0]);
    expect(mixed[64]).toBe((1 - 32) * scales[4]);
    expect(mixed[32]).toBe((16 - 32) * scales[2]);
    expect(mixed[1]).toBe(-32 * scales[0]);
  });
});

describe('dequantize refuses what it cannot convert', () => {
  it('names a type it does not dequantize', () => {
    expect(() => dequantize(GgmlType.Q2_K, new Uint8Array(84), 256)).toThrow(
      expect.objectContaining({ code: 'unsupported_type', message: expect.stringContaining('Q2_K (id 10)') }),
    );
    expect(() => dequantize(99 as GgmlType, new Uint8Array(4), 1)).toThrow(
      expect.objectContaining({ code: 'unsupported_type', message: expect.stringContaining('type 99') }),
    );
  });

  it('refuses a count that is not whole blocks, or bytes that do not match it', () => {
    expect(() => dequantize(GgmlType.Q4_0, new Uint8Array(18), 31)).toThrow(
      expect.objectContaining({
        code: 'corrupt',
        message: 'Q4_0: element count 31 is not a multiple of the block size 32',
      }),
    );
    expect(() => dequantize(GgmlType.Q4_0, new Uint8Array(17), 32)).toThrow(
      expect.objectContaining({
        code: 'truncated',
        message: 'Q4_0: 32 elements take 18 bytes but 17 were given',
      }),
    );
  });
});
