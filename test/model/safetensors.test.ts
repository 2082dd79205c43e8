import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type FloatTensor,
  halfToFloat,
  parseSafetensors,
  SafetensorsError,
  serializeSafetensors,
} from '../../src/model/safetensors.ts';
import { FIXTURES } from '../policy/helpers.ts';

const sample = () =>
  new Map<string, FloatTensor>([
    ['b.weight', { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-8, -7]) }],
    ['a.bias', { shape: [3], data: Float32Array.from([0.25, Number.NEGATIVE_INFINITY, 42]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ]);

/** A file from a header object and a data section, to build broken files precisely. */
function build(header: object, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips F32 tensors and metadata', () => {
    const bytes = serializeSafetensors(sample(), { format: 'pt', step: '7' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0); // data section 8-byte aligned
    const { tensors, metadata } = parseSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt', step: '7' });
    for (const [name, t] of sample()) {
      expect(tensors.get(name)!.shape).toEqual(t.shape);
      expect(Array.from(tensors.get(name)!.data)).toEqual(Array.from(t.data));
      expect(tensors.get(name)!.dtype).toBe('F32');
    }
  });

  it('reads F16 and BF16 files written by PyTorch (the fixtures) as float32', () => {
    const f16 = parseSafetensors(readFileSync(join(FIXTURES, 'untied', 'model.safetensors')));
    const bf16 = parseSafetensors(readFileSync(join(FIXTURES, 'tied', 'model.safetensors')));
    expect(f16.tensors.get('model.embed_tokens.weight')).toMatchObject({ dtype: 'F16', shape: [48, 16] });
    expect(bf16.tensors.get('model.embed_tokens.weight')).toMatchObject({ dtype: 'BF16', shape: [48, 16] });
    expect(f16.metadata).toEqual({ format: 'pt' });
    // Every value is finite and the norms sit near 1 (made as 1 + 0.2·N(0,1)).
    const norm = bf16.tensors.get('model.norm.weight')!.data;
    expect(norm.every((v) => Number.isFinite(v) && v > 0 && v < 2)).toBe(true);
  });

  it('converts binary16 exactly, subnormals and specials included', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(halfToFloat(0x7e00)).toBeNaN();
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
  });

  const data8 = new Uint8Array(8);
  it.each([
    ['a file shorter than 8 bytes', new Uint8Array(5), 'shorter than the 8-byte header length'],
    ['a truncated file', serializeSafetensors(sample()).subarray(0, 60), 'truncated'],
    ['a header that is not JSON', build({}, data8).fill(120, 8, 10), 'not valid UTF-8 JSON'],
    [
      'an unsupported dtype',
      build({ x: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, data8),
      'tensor x: dtype "I64" is not supported',
    ],
    [
      'offsets that disagree with the shape',
      build({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data8),
      'tensor x: data_offsets [0, 8] hold 8 bytes, F32 [3] needs 12',
    ],
    [
      'a gap between tensors',
      build({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data8),
      'tensor x: starts at byte 4, expected 0',
    ],
    [
      'data bytes no tensor covers',
      build({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, data8),
      'tensors cover 4 bytes but the data section has 8',
    ],
    [
      'a negative dimension',
      build({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, data8),
      'shape [-1] is not a list of non-negative integers',
    ],
  ])('refuses %s', (_, bytes, message) => {
    expect(() => parseSafetensors(bytes as Uint8Array, 'f.safetensors')).toThrow(message as string);
    try {
      parseSafetensors(bytes as Uint8Array);
    } catch (error) {
      expect(SafetensorsError.isInstance(error)).toBe(true);
    }
  });
});
