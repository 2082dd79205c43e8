/**
 * ggml tensor data to float32, block by block, following ggml's `dequantize_row_*` in
 * `ggml-quants.c` (block structs from `ggml-common.h`). Arithmetic is rounded to float32 after
 * every operation (Math.fround), in ggml's order, so the results equal ggml's (without FMA) bit
 * for bit. Little-endian data, as GGUF stores it.
 */
import { GgufError } from './errors.ts';
import { GGML_BLOCK_LAYOUT, GgmlType, ggmlTypeName } from './ggml-types.ts';

const fround = Math.fround;

let halfTable: Float32Array | undefined;

/** IEEE half (binary16) bits to its value. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** All 65,536 halves, built once: a lookup is much faster than decoding each. */
function halves(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) halfTable[bits] = halfToFloat(bits);
  return halfTable;
}

/** One block: bytes at `b[o..]`, elements written to `y[yo..]`. */
type BlockDecoder = (b: Uint8Array, o: number, y: Float32Array, yo: number, half: Float32Array) => void;

const f16At = (b: Uint8Array, o: number, half: Float32Array) => half[b[o] | (b[o + 1] << 8)];

/** block_q4_0 { half d; uint8 qs[16] }: y = (q - 8)·d, low nibbles are elements 0..15. */
const decodeQ4_0: BlockDecoder = (b, o, y, yo, half) => {
  const d = f16At(b, o, half);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 2 + j];
    y[yo + j] = ((q & 0x0f) - 8) * d;
    y[yo + j + 16] = ((q >> 4) - 8) * d;
  }
};

/** block_q4_1 { half d; half m; uint8 qs[16] }: y = q·d + m. */
const decodeQ4_1: BlockDecoder = (b, o, y, yo, half) => {
  const d = f16At(b, o, half);
  const m = f16At(b, o + 2, half);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 4 + j];
    y[yo + j] = fround((q & 0x0f) * d) + m;
    y[yo + j + 16] = fround((q >> 4) * d) + m;
  }
};

const u32At = (b: Uint8Array, o: number) =>
  (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

/** block_q5_0 { half d; uint8 qh[4]; uint8 qs[16] }: bit j of qh is element j's fifth bit; y = (q - 16)·d. */
const decodeQ5_0: BlockDecoder = (b, o, y, yo, half) => {
  const d = f16At(b, o, half);
  const qh = u32At(b, o + 2);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 6 + j];
    const high0 = ((qh >>> j) << 4) & 0x10;
    const high1 = (qh >>> (j + 12)) & 0x10;
    y[yo + j] = (((q & 0x0f) | high0) - 16) * d;
    y[yo + j + 16] = (((q >> 4) | high1) - 16) * d;
  }
};

/** block_q5_1 { half d; half m; uint8 qh[4]; uint8 qs[16] }: y = q·d + m. */
const decodeQ5_1: BlockDecoder = (b, o, y, yo, half) => {
  const d = f16At(b, o, half);
  const m = f16At(b, o + 2, half);
  const qh = u32At(b, o + 4);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 8 + j];
    const high0 = ((qh >>> j) << 4) & 0x10;
    const high1 = (qh >>> (j + 12)) & 0x10;
    y[yo + j] = fround(((q & 0x0f) | high0) * d) + m;
    y[yo + j + 16] = fround(((q >> 4) | high1) * d) + m;
  }
};

/** block_q8_0 { half d; int8 qs[32] }: y = q·d. */
const decodeQ8_0: BlockDecoder = (b, o, y, yo, half) => {
  const d = f16At(b, o, half);
  for (let j = 0; j < 32; j++) y[yo + j] = ((b[o + 2 + j] << 24) >> 24) * d;
};

/**
 * ggml's get_scale_min_k4: the 12 scale bytes hold eight 6-bit scales and eight 6-bit mins;
 * sub-blocks 0..3 use the low 6 bits of bytes 0..7, sub-blocks 4..7 a nibble of bytes 8..11 plus
 * the top two bits of bytes 0..7. Returns scale | min << 8.
 */
function scaleMinK4(j: number, q: number, b: Uint8Array): number {
  if (j < 4) return (b[q + j] & 63) | ((b[q + j + 4] & 63) << 8);
  const sc = (b[q + j + 4] & 0x0f) | ((b[q + j - 4] >> 6) << 4);
  const m = (b[q + j + 4] >> 4) | ((b[q + j] >> 6) << 4);
  return sc | (m << 8);
}

/**
 * block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128] }: 8 sub-blocks of 32; each 32
 * bytes of qs hold two sub-blocks (low nibbles the first, high nibbles the second); y = d·sc·q − dmin·m.
 */
const decodeQ4_K: BlockDecoder = (b, o, y, yo, half) => {
  const d = f16At(b, o, half);
  const dmin = f16At(b, o + 2, half);
  const scales = o + 4;
  let q = o + 16;
  let out = yo;
  for (let is = 0; is < 8; is += 2) {
    const sm1 = scaleMinK4(is, scales, b);
    const sm2 = scaleMinK4(is + 1, scales, b);
    const d1 = fround(d * (sm1 & 0xff));
    const m1 = fround(dmin * (sm1 >> 8));
    const d2 = fround(d * (sm2 & 0xff));
    const m2 = fround(dmin * (sm2 >> 8));
    for (let l = 0; l < 32; l++) y[out + l] = fround(d1 * (b[q + l] & 0x0f)) - m1;
    for (let l = 0; l < 32; l++) y[out + 32 + l] = fround(d2 * (b[q + l] >> 4)) - m2;
    q += 32;
    out += 64;
  }
};

/**
 * block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128] }: as Q4_K with a
 * fifth bit per element from qh (bit 2i for the i-th pair's first sub-block, 2i+1 for its second).
 */
const decodeQ5_K: BlockDecoder = (b, o, y, yo, half) => {
  const d = f16At(b, o, half);
  const dmin = f16At(b, o + 2, half);
  const scales = o + 4;
  const qh = o + 16;
  let ql = o + 48;
  let out = yo;
  let u1 = 1;
  let u2 = 2;
  for (let is = 0; is < 8; is += 2) {
    const sm1 = scaleMinK4(is, scales, b);
    const sm2 = scaleMinK4(is + 1, scales, b);
    const d1 = fround(d * (sm1 & 0xff));
    const m1 = fround(dmin * (sm1 >> 8));
    const d2 = fround(d * (sm2 & 0xff));
    const m2 = fround(dmin * (sm2 >> 8));
    for (let l = 0; l < 32; l++) {
      y[out + l] = fround(d1 * ((b[ql + l] & 0x0f) + (b[qh + l] & u1 ? 16 : 0))) - m1;
    }
    for (let l = 0; l < 32; l++) {
      y[out + 32 + l] = fround(d2 * ((b[ql + l] >> 4) + (b[qh + l] & u2 ? 16 : 0))) - m2;
    }
    ql += 32;
    out += 64;
    u1 <<= 2;
    u2 <<= 2;
  }
};

/**
 * block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d }: two halves of 128; in each,
 * element l (0..31) of its four 32-runs takes a nibble of ql[l] or ql[l+32] and two bits of qh[l];
 * y = d·scale·(q − 32), one int8 scale per 16 elements.
 */
const decodeQ6_K: BlockDecoder = (b, o, y, yo, half) => {
  const d = f16At(b, o + 208, half);
  let ql = o;
  let qh = o + 128;
  let sc = o + 192;
  let out = yo;
  for (let n = 0; n < 2; n++) {
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = b[qh + l];
      const q1 = ((b[ql + l] & 0x0f) | ((h & 3) << 4)) - 32;
      const q2 = ((b[ql + l + 32] & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((b[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((b[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
      y[out + l] = fround(d * ((b[sc + is] << 24) >> 24)) * q1;
      y[out + l + 32] = fround(d * ((b[sc + is + 2] << 24) >> 24)) * q2;
      y[out + l + 64] = fround(d * ((b[sc + is + 4] << 24) >> 24)) * q3;
      y[out + l + 96] = fround(d * ((b[sc + is + 6] << 24) >> 24)) * q4;
    }
    out += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
};

const BLOCK_DECODERS: Partial<Record<GgmlType, BlockDecoder>> = {
  [GgmlType.Q4_0]: decodeQ4_0,
  [GgmlType.Q4_1]: decodeQ4_1,
  [GgmlType.Q5_0]: decodeQ5_0,
  [GgmlType.Q5_1]: decodeQ5_1,
  [GgmlType.Q8_0]: decodeQ8_0,
  [GgmlType.Q4_K]: decodeQ4_K,
  [GgmlType.Q5_K]: decodeQ5_K,
  [GgmlType.Q6_K]: decodeQ6_K,
};

/** The types `dequantize` converts. */
export const DEQUANTIZABLE_TYPES: readonly GgmlType[] = [
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  ...(Object.keys(BLOCK_DECODERS).map(Number) as GgmlType[]),
];

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function copyF32(bytes: Uint8Array, count: number): Float32Array {
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, count).slice();
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const y = new Float32Array(count);
  for (let i = 0; i < count; i++) y[i] = view.getFloat32(i * 4, true);
  return y;
}

function convertF16(bytes: Uint8Array, count: number): Float32Array {
  const half = halves();
  const y = new Float32Array(count);
  for (let i = 0; i < count; i++) y[i] = half[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  return y;
}

/** bfloat16 is the top half of a float32. */
function convertBF16(bytes: Uint8Array, count: number): Float32Array {
  const bits = new Uint32Array(count);
  for (let i = 0; i < count; i++) bits[i] = ((bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16) >>> 0;
  return new Float32Array(bits.buffer);
}

/**
 * Converts `count` elements of ggml type `type`, stored in `bytes`, to float32 (in storage order).
 * `bytes` must hold exactly those elements: count / block size × block bytes.
 * @throws GgufError `unsupported_type` for a type not in DEQUANTIZABLE_TYPES; `truncated` or
 *   `corrupt` when `count` and `bytes` do not agree.
 */
export function dequantize(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  const name = ggmlTypeName(type) ?? `type ${type}`;
  const decoder = BLOCK_DECODERS[type];
  if (!decoder && type !== GgmlType.F32 && type !== GgmlType.F16 && type !== GgmlType.BF16) {
    throw new GgufError(
      'unsupported_type',
      `cannot dequantize ggml ${name} (id ${type}); supported: ${DEQUANTIZABLE_TYPES.map((t) => ggmlTypeName(t)).join(', ')}`,
    );
  }
  const layout = GGML_BLOCK_LAYOUT[type];
  if (!Number.isSafeInteger(count) || count < 0 || count % layout.elements !== 0) {
    throw new GgufError(
      'corrupt',
      `${name}: element count ${count} is not a multiple of the block size ${layout.elements}`,
    );
  }
  const blocks = count / layout.elements;
  const expected = blocks * layout.bytes;
  if (bytes.byteLength !== expected) {
    throw new GgufError(
      bytes.byteLength < expected ? 'truncated' : 'corrupt',
      `${name}: ${count} elements take ${expected} bytes but ${bytes.byteLength} were given`,
    );
  }
  if (type === GgmlType.F32) return copyF32(bytes, count);
  if (type === GgmlType.F16) return convertF16(bytes, count);
  if (type === GgmlType.BF16) return convertBF16(bytes, count);
  const y = new Float32Array(count);
  const half = halves();
  for (let i = 0; i < blocks; i++) decoder!(bytes, i * layout.bytes, y, i * layout.elements, half);
  return y;
}
