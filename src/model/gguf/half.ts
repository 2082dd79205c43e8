/**
 * float32 → IEEE 754 binary16 bits, rounding to nearest even, as ggml's `ggml_compute_fp32_to_fp16`
 * (the FP16 library's branch-free conversion): the writer's F16 tensors and Q8_0 block scales must
 * carry the very bits llama.cpp's own quantizer would.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function bitsOf(value: number): number {
  f32[0] = value;
  return u32[0]!;
}

function floatFromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

const SCALE_TO_INF = 2 ** 112;
const SCALE_TO_ZERO = 2 ** -110;

/** The binary16 bits nearest to `value` (ties to even; overflow to ±inf, NaN to a quiet NaN). */
export function floatToHalfBits(value: number): number {
  const x = Math.fround(value);
  let base = Math.fround(Math.fround(Math.abs(x) * SCALE_TO_INF) * SCALE_TO_ZERO);
  const w = bitsOf(x);
  const shl1 = (w * 2) % 2 ** 32;
  const sign = w & 0x80000000;
  let bias = (shl1 & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  base = Math.fround(floatFromBits((bias >>> 1) + 0x07800000) + base);
  const bits = bitsOf(base);
  const expBits = (bits >>> 13) & 0x7c00;
  const mantissaBits = bits & 0x0fff;
  const nonsign = expBits + mantissaBits;
  return ((sign >>> 16) | (shl1 > 0xff000000 ? 0x7e00 : nonsign)) & 0xffff;
}
