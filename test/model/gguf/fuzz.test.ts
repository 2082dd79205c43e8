/**
 * Fuzzed GGUF headers: mutated, truncated and garbled versions of small valid files. Whatever the
 * bytes, the reader either returns a header whose tensors lie inside the file or throws a
 * GgufError, quickly, without allocating more than the file size allows.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEQUANTIZABLE_TYPES, dequantize } from '../../../src/model/gguf/dequantize.ts';
import { GgufError } from '../../../src/model/gguf/errors.ts';
import { GGML_BLOCK_LAYOUT, GgmlType, GgufValueType } from '../../../src/model/gguf/ggml-types.ts';
import { type GgufFile, type GgufValue, parseGgufHeader } from '../../../src/model/gguf/reader.ts';
import { buildGguf, buildSampleGguf } from './gguf-builder.ts';

const SEEDS = [
  buildSampleGguf(),
  buildGguf({
    version: 2,
    alignment: 64,
    metadata: {
      'a.nested': {
        type: GgufValueType.ARRAY,
        itemType: GgufValueType.ARRAY,
        innerItemType: GgufValueType.INT16,
        value: [
          [1, 2],
          [3, 4],
        ],
      },
    },
    tensors: [
      { name: 'q5k', dims: [256], type: GgmlType.Q5_K },
      { name: 'bf16', dims: [4, 2, 2, 2], type: GgmlType.BF16 },
    ],
  }),
];
// The reader never needs more than a fraction of a second on a file of a few hundred bytes.
const MAX_PARSE_MS = 250;

/** Counts every value in the metadata, nested arrays included. */
function countValues(value: GgufValue): number {
  return Array.isArray(value) ? value.reduce<number>((n, v) => n + countValues(v), 1) : 1;
}

/** What a successfully parsed header must satisfy, whatever bytes it came from. */
function checkInvariants(file: GgufFile): void {
  let values = 0;
  for (const value of Object.values(file.metadata)) values += countValues(value);
  expect(values).toBeLessThanOrEqual(file.fileSize);
  const spans = file.tensors
    .map((t) => [t.offset, t.offset + t.byteLength] as const)
    .sort((a, b) => a[0] - b[0]);
  for (const [i, [start, end]] of spans.entries()) {
    expect(start).toBeGreaterThanOrEqual(file.dataOffset);
    expect(end).toBeLessThanOrEqual(file.fileSize);
    expect((start - file.dataOffset) % file.alignment).toBe(0);
    if (i > 0) expect(start).toBeGreaterThanOrEqual(spans[i - 1][1]);
  }
  for (const t of file.tensors) {
    expect(t.dims.length).toBeGreaterThanOrEqual(1);
    expect(t.dims.length).toBeLessThanOrEqual(4);
    expect(GGML_BLOCK_LAYOUT[t.type]).toBeDefined();
  }
}

/** Parses, requiring a GgufError (never `incomplete` for a whole file) or a sound header. */
function parseOrRefuse(bytes: Uint8Array, fileSize = bytes.byteLength): GgufFile | GgufError {
  const started = performance.now();
  try {
    const file = parseGgufHeader(bytes, fileSize);
    checkInvariants(file);
    return file;
  } catch (error) {
    if (!GgufError.isInstance(error)) throw error;
    if (bytes.byteLength === fileSize) expect(error.code).not.toBe('incomplete');
    expect(error.message.length).toBeGreaterThan(10);
    return error;
  } finally {
    expect(performance.now() - started).toBeLessThan(MAX_PARSE_MS);
  }
}

const seed = fc.constantFrom(...SEEDS);
/** Values that break size arithmetic: zero, one, around 2^31, 2^32, 2^53 and 2^64. */
const nastyU64 = fc.constantFrom(
  0n,
  1n,
  2n ** 31n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 63n,
  2n ** 64n - 1n,
);

describe('GGUF header fuzzing', () => {
  it('every prefix of a valid file is refused as truncated, or parses when only padding is cut', () => {
    for (const bytes of SEEDS) {
      const whole = parseGgufHeader(bytes);
      const dataEnd = Math.max(...whole.tensors.map((t) => t.offset + t.byteLength));
      for (let n = 0; n < bytes.byteLength; n++) {
        const result = parseOrRefuse(bytes.subarray(0, n));
        if (n < dataEnd) expect(result).toMatchObject({ code: 'truncated' });
        else expect(result).toMatchObject({ tensors: whole.tensors });
      }
    }
  });

  it('a prefix of a longer file parses or asks for a longer prefix it can have', () => {
    for (const bytes of SEEDS) {
      for (let n = 0; n <= bytes.byteLength; n++) {
        const result = parseOrRefuse(bytes.subarray(0, n), bytes.byteLength);
        if (GgufError.isInstance(result)) {
          expect(result.code).toBe('incomplete');
          expect(result.needBytes).toBeGreaterThan(n);
          expect(result.needBytes).toBeLessThanOrEqual(bytes.byteLength);
        }
      }
    }
  });

  it('random byte changes never throw anything but GgufError', () => {
    fc.assert(
      fc.property(
        seed,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        (original, edits) => {
          const bytes = original.slice();
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          parseOrRefuse(bytes);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('extreme 64-bit values anywhere never throw anything but GgufError', () => {
    fc.assert(
      fc.property(seed, fc.nat(), nastyU64, (original, at, value) => {
        const bytes = original.slice();
        const offset = at % (bytes.length - 8);
        new DataView(bytes.buffer).setBigUint64(offset, value, true);
        parseOrRefuse(bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it('inserted, deleted and appended bytes never throw anything but GgufError', () => {
    fc.assert(
      fc.property(
        seed,
        fc.nat(),
        fc.nat({ max: 40 }),
        fc.uint8Array({ maxLength: 40 }),
        (original, at, cut, insert) => {
          const i = at % original.length;
          const bytes = Uint8Array.from([
            ...original.subarray(0, i),
            ...insert,
            ...original.subarray(i + cut),
          ]);
          parseOrRefuse(bytes);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('random bytes after a valid magic and version never throw anything but GgufError', () => {
    fc.assert(
      fc.property(fc.constantFrom(2, 3), fc.uint8Array({ maxLength: 400 }), (version, rest) => {
        const bytes = new Uint8Array(8 + rest.length);
        const view = new DataView(bytes.buffer);
        view.setUint32(0, 0x46554747, true);
        view.setUint32(4, version, true);
        bytes.set(rest, 8);
        parseOrRefuse(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('dequantize fuzzing', () => {
  it('any block bytes of a supported type decode to the right number of floats', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...DEQUANTIZABLE_TYPES),
        fc.integer({ min: 0, max: 3 }),
        fc.integer(),
        (type, blocks, salt) => {
          const layout = GGML_BLOCK_LAYOUT[type];
          const bytes = Uint8Array.from(
            { length: blocks * layout.bytes },
            (_, i) => (i * 2654435761 + salt) >>> 24,
          );
          expect(dequantize(type, bytes, blocks * layout.elements)).toHaveLength(blocks * layout.elements);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('any type id and sizes give floats or a GgufError', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1, max: 64 }),
        fc.nat({ max: 600 }),
        fc.integer({ min: -1, max: 600 }),
        (type, length, count) => {
          try {
            dequantize(type as GgmlType, new Uint8Array(length), count);
          } catch (error) {
            expect(GgufError.isInstance(error)).toBe(true);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
