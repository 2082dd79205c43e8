/**
 * The numbers of the GGUF file format (version 3) that every reader and writer of it shares:
 * ggml's tensor type ids with their block layouts, and GGUF's metadata value type ids. From
 * ggml's `ggml.h` / `ggml-common.h` and the GGUF specification (ggml's `docs/gguf.md`).
 */

/** "GGUF" read as a little-endian uint32. */
export const GGUF_MAGIC = 0x46554747;
export const GGUF_VERSION = 3;
/** Tensor data starts at a multiple of `general.alignment`, 32 when the key is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/**
 * ggml tensor types by id (`enum ggml_type`); ids 4 and 5 (Q4_2, Q4_3), 31..33 and 36..38 (the
 * repacked Q4_0_4_4 / IQ4_NL_4_4 kinds) were removed from ggml and are refused as unknown.
 */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
} as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

/** Elements per block and bytes per block of each type (`ggml_type_traits`: blck_size, type_size). */
export const GGML_BLOCK_LAYOUT: Readonly<Record<GgmlType, { elements: number; bytes: number }>> = {
  [GgmlType.F32]: { elements: 1, bytes: 4 },
  [GgmlType.F16]: { elements: 1, bytes: 2 },
  [GgmlType.BF16]: { elements: 1, bytes: 2 },
  [GgmlType.F64]: { elements: 1, bytes: 8 },
  [GgmlType.I8]: { elements: 1, bytes: 1 },
  [GgmlType.I16]: { elements: 1, bytes: 2 },
  [GgmlType.I32]: { elements: 1, bytes: 4 },
  [GgmlType.I64]: { elements: 1, bytes: 8 },
  // 32-element blocks: an f16 scale d (and an f16 min m for the _1 kinds), then packed quants.
  [GgmlType.Q4_0]: { elements: 32, bytes: 2 + 16 },
  [GgmlType.Q4_1]: { elements: 32, bytes: 2 + 2 + 16 },
  [GgmlType.Q5_0]: { elements: 32, bytes: 2 + 4 + 16 },
  [GgmlType.Q5_1]: { elements: 32, bytes: 2 + 2 + 4 + 16 },
  [GgmlType.Q8_0]: { elements: 32, bytes: 2 + 32 },
  // Two halves (d, s) since ggml made them f16; gguf-py's table still says 40 (two floats).
  [GgmlType.Q8_1]: { elements: 32, bytes: 4 + 32 },
  [GgmlType.IQ4_NL]: { elements: 32, bytes: 2 + 16 },
  // One e8m0 exponent byte, then 16 bytes of 4-bit e2m1 values.
  [GgmlType.MXFP4]: { elements: 32, bytes: 1 + 16 },
  // 256-element super-blocks (QK_K = 256).
  [GgmlType.Q2_K]: { elements: 256, bytes: 16 + 64 + 2 + 2 },
  [GgmlType.Q3_K]: { elements: 256, bytes: 32 + 64 + 12 + 2 },
  [GgmlType.Q4_K]: { elements: 256, bytes: 2 + 2 + 12 + 128 },
  [GgmlType.Q5_K]: { elements: 256, bytes: 2 + 2 + 12 + 32 + 128 },
  [GgmlType.Q6_K]: { elements: 256, bytes: 128 + 64 + 16 + 2 },
  [GgmlType.Q8_K]: { elements: 256, bytes: 4 + 256 + 32 },
  // The i-quants and ternary kinds: readable (so their files can be inspected), not dequantized.
  [GgmlType.IQ2_XXS]: { elements: 256, bytes: 2 + 64 },
  [GgmlType.IQ2_XS]: { elements: 256, bytes: 2 + 64 + 8 },
  [GgmlType.IQ2_S]: { elements: 256, bytes: 2 + 64 + 8 + 8 },
  [GgmlType.IQ3_XXS]: { elements: 256, bytes: 2 + 96 },
  [GgmlType.IQ3_S]: { elements: 256, bytes: 2 + 64 + 8 + 32 + 4 },
  [GgmlType.IQ1_S]: { elements: 256, bytes: 2 + 32 + 16 },
  [GgmlType.IQ1_M]: { elements: 256, bytes: 32 + 16 + 8 },
  [GgmlType.IQ4_XS]: { elements: 256, bytes: 2 + 2 + 4 + 128 },
  [GgmlType.TQ1_0]: { elements: 256, bytes: 48 + 4 + 2 },
  [GgmlType.TQ2_0]: { elements: 256, bytes: 64 + 2 },
};

/** The name of a type id ("Q4_K"), or undefined for an id this table does not know. */
export function ggmlTypeName(type: number): string | undefined {
  return Object.entries(GgmlType).find(([, id]) => id === type)?.[0];
}

/** GGUF metadata value types (`enum gguf_type`). */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];
