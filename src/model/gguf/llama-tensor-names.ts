/**
 * Hugging Face Llama tensor names ↔ llama.cpp's GGUF names, and the Q/K row permutation between
 * them, as llama.cpp's `convert_hf_to_gguf.py` (`LlamaModel.modify_tensors`, `permute`) does it.
 *
 * HF's rotary embedding rotates channel j with channel j + hd/2 of each head (`rotate_half`); ggml's
 * "normal" RoPE rotates neighbours 2i, 2i+1. The converter therefore reorders each head's q_proj and
 * k_proj rows so that HF row j + h·hd/2 lands at 2j + h (h ∈ {0, 1}); loading a GGUF undoes it.
 */

/** HF name → GGUF name (`model.layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`), or undefined. */
export function ggufTensorName(hfName: string): string | undefined {
  if (hfName === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hfName === 'model.norm.weight') return 'output_norm.weight';
  if (hfName === 'lm_head.weight') return 'output.weight';
  const match = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hfName);
  if (!match) return undefined;
  const part = LAYER_PARTS[match[2]!];
  return part === undefined ? undefined : `blk.${match[1]}.${part}.weight`;
}

/** GGUF name → HF name, or undefined for a tensor with no HF counterpart (`rope_freqs.weight`). */
export function hfTensorName(ggufName: string): string | undefined {
  if (ggufName === 'token_embd.weight') return 'model.embed_tokens.weight';
  if (ggufName === 'output_norm.weight') return 'model.norm.weight';
  if (ggufName === 'output.weight') return 'lm_head.weight';
  const match = /^blk\.(\d+)\.(.+)\.weight$/.exec(ggufName);
  if (!match) return undefined;
  const part = Object.entries(LAYER_PARTS).find(([, g]) => g === match[2])?.[0];
  return part === undefined ? undefined : `model.layers.${match[1]}.${part}.weight`;
}

const LAYER_PARTS: Record<string, string> = {
  input_layernorm: 'attn_norm',
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  post_attention_layernorm: 'ffn_norm',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
};

/** How many heads' rows an HF tensor's permutation runs over: query heads for q, K/V heads for k. */
export function ropePermutedHeads(hfName: string, heads: number, kvHeads: number): number | undefined {
  if (/\.self_attn\.q_proj\.weight$/.test(hfName)) return heads;
  if (/\.self_attn\.k_proj\.weight$/.test(hfName)) return kvHeads;
  return undefined;
}

/**
 * convert_hf_to_gguf's `permute`: rows of a [heads·hd, cols] row-major matrix reordered per head
 * from HF's half-split layout to ggml's interleaved one.
 */
export function permuteRopeRows(data: Float32Array, heads: number, cols: number): Float32Array {
  return moveRows(data, heads, cols, false);
}

/** The inverse of `permuteRopeRows` (GGUF → HF). */
export function unpermuteRopeRows(data: Float32Array, heads: number, cols: number): Float32Array {
  return moveRows(data, heads, cols, true);
}

function moveRows(data: Float32Array, heads: number, cols: number, inverse: boolean): Float32Array {
  const rows = data.length / cols;
  if (!Number.isInteger(rows) || rows % heads !== 0 || (rows / heads) % 2 !== 0) {
    throw new RangeError(`cannot permute ${rows} rows of ${cols} over ${heads} heads: hd must be even`);
  }
  const hd = rows / heads;
  const half = hd / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const hf = h * hd + j * half + i; // HF: [2, hd/2] per head
        const gg = h * hd + 2 * i + j; // ggml: [hd/2, 2] per head
        const [from, to] = inverse ? [gg, hf] : [hf, gg];
        out.set(data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}
