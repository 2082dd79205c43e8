/**
 * A decoder-only Llama in TensorFlow.js, in one file that reads top to bottom.
 *
 * It follows Hugging Face transformers' `modeling_llama.py` (LlamaRMSNorm, LlamaRotaryEmbedding with
 * `rotate_half`, LlamaMLP, LlamaAttention with grouped K/V heads) closely enough that HF checkpoints
 * load unchanged and give the same logits (test/model/llama.test.ts checks against PyTorch), and
 * nanoGPT's `model.py` for the layout: parameter table → small blocks → the model → generation.
 *
 * Conventions:
 * - Parameters are tf.Variables keyed by their HF names; Linear weights keep HF's [out, in] layout,
 *   so y = x·Wᵀ (nothing is transposed on load or save).
 * - Activations stay 2-D ([B·T, C]) between the attention blocks: the wasm backend turns a 2-D matmul
 *   into one XNNPACK call, while a batched [B, T, C]·[C, C'] one falls into a slow loop.
 * - Attention never builds 5-D tensors (a 5-D transpose cost 80× a 4-D one in wasm) and never copies
 *   K/V heads for grouped-query attention: query heads are grouped under their K/V head instead.
 * - Every projection goes through `linear(x, name)`, where a LoRA adapter attached under that name
 *   adds scale·(x·Aᵀ)·Bᵀ.
 * - Batches of different lengths are left-padded (HF's `padding_side="left"` for generation): row b's
 *   first `padding[b]` columns are masked out as keys and its RoPE positions start after them, so a
 *   padded row computes what the row alone would (up to float summation order).
 */
import * as tf from '@tensorflow/tfjs-core';
import { headDimOf, kvHeadsOf, type LlamaConfig } from './config.ts';
import { embeddingLookup } from './tfjs/wasm-kernels.ts';

function assert(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new Error(message());
}

// ---------------------------------------------------------------------------------------------
// The parameter table: every tensor a checkpoint must hold, with its shape.

/** HF tensor name → shape, in checkpoint order. `lm_head.weight` only when embeddings are untied. */
export function llamaParameterShapes(config: LlamaConfig): Map<string, number[]> {
  const D = config.hidden_size;
  const H = config.num_attention_heads;
  const KV = kvHeadsOf(config);
  const hd = headDimOf(config);
  const I = config.intermediate_size;
  const V = config.vocab_size;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [V, D]]]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.input_layernorm.weight`, [D]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [H * hd, D]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [KV * hd, D]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [KV * hd, D]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [D, H * hd]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [D]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [I, D]);
    shapes.set(`${p}.mlp.up_proj.weight`, [I, D]);
    shapes.set(`${p}.mlp.down_proj.weight`, [D, I]);
  }
  shapes.set('model.norm.weight', [D]);
  if (!config.tie_word_embeddings) shapes.set('lm_head.weight', [V, D]);
  return shapes;
}

/**
 * Fresh weights as HF initializes them: normal(0, std) for embeddings and projections (HF's
 * `initializer_range`, 0.02), ones for the RMSNorm gains.
 */
export function initLlamaWeights(config: LlamaConfig, options: { seed?: number; std?: number } = {}) {
  const { seed = 0, std = 0.02 } = options;
  const weights = new Map<string, tf.Tensor>();
  let n = 0;
  for (const [name, shape] of llamaParameterShapes(config)) {
    if (shape.length === 1) {
      weights.set(name, tf.ones(shape));
      continue;
    }
    // tfjs's normal sampler takes a seed of 0 for none and draws Math.random() instead: with seed 0
    // the first matrix (the embeddings) was new on every run. 0.5 stands in, a seed no integer gives.
    const tensorSeed = seed + n++;
    weights.set(name, tf.randomNormal(shape, 0, std, 'float32', tensorSeed === 0 ? 0.5 : tensorSeed));
  }
  return weights;
}

// ---------------------------------------------------------------------------------------------
// Rotary position embedding tables (computed in JS; tiny).

/** HF's inverse frequencies θ^(−2j/hd), j < hd/2, with Llama 3's rescaling when configured. */
function ropeInverseFrequencies(config: LlamaConfig): Float64Array {
  const hd = headDimOf(config);
  const inv = new Float64Array(hd / 2);
  for (let j = 0; j < hd / 2; j++) inv[j] = 1 / config.rope_theta ** ((2 * j) / hd);
  const s = config.rope_scaling;
  if (s) {
    // transformers `_compute_llama3_parameters`: long wavelengths slowed by `factor`, short ones kept,
    // the band between interpolated.
    const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
    const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
    for (let j = 0; j < inv.length; j++) {
      const wavelen = (2 * Math.PI) / inv[j]!;
      if (wavelen > lowWavelen) inv[j] = inv[j]! / s.factor;
      else if (wavelen >= highWavelen) {
        const smooth =
          (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
          (s.high_freq_factor - s.low_freq_factor);
        inv[j] = (1 - smooth) * (inv[j]! / s.factor) + smooth * inv[j]!;
      }
    }
  }
  return inv;
}

/** cos and sin of position·frequency for positions [start, start+T), laid out [T, hd] like HF (cat(f, f)). */
function ropeTables(inv: Float64Array, start: number, T: number, scale: number) {
  const half = inv.length;
  const hd = 2 * half;
  const cos = new Float32Array(T * hd);
  const sin = new Float32Array(T * hd);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < half; j++) {
      const angle = (start + t) * inv[j]!;
      const c = Math.cos(angle) * scale;
      const s = Math.sin(angle) * scale;
      cos[t * hd + j] = c;
      cos[t * hd + j + half] = c;
      sin[t * hd + j] = s;
      sin[t * hd + j + half] = s;
    }
  }
  return { cos: tf.tensor2d(cos, [T, hd]), sin: tf.tensor2d(sin, [T, hd]) };
}

/**
 * Per-row tables for left-padded rows: row b's column c (of [start, start+T)) is at position
 * c − padding[b] (pad columns get position 0; they are masked anyway). → cos/sin [B, 1, T, hd].
 */
function ropeTablesPerRow(
  inv: Float64Array,
  start: number,
  T: number,
  padding: readonly number[],
  scale: number,
) {
  const half = inv.length;
  const hd = 2 * half;
  const B = padding.length;
  const cos = new Float32Array(B * T * hd);
  const sin = new Float32Array(B * T * hd);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const position = Math.max(0, start + t - padding[b]!);
      const row = (b * T + t) * hd;
      for (let j = 0; j < half; j++) {
        const angle = position * inv[j]!;
        const c = Math.cos(angle) * scale;
        const s = Math.sin(angle) * scale;
        cos[row + j] = c;
        cos[row + j + half] = c;
        sin[row + j] = s;
        sin[row + j + half] = s;
      }
    }
  }
  return { cos: tf.tensor4d(cos, [B, 1, T, hd]), sin: tf.tensor4d(sin, [B, 1, T, hd]) };
}

/**
 * The [hd, hd] matrix R with x·R = rotate_half(x) = cat(−x₂, x₁): a signed permutation, so RoPE is a
 * 2-D matmul instead of slices and a concat (and their gradients).
 */
function rotateHalfMatrix(hd: number): tf.Tensor2D {
  const half = hd / 2;
  const r = new Float32Array(hd * hd);
  for (let j = 0; j < half; j++) {
    r[(j + half) * hd + j] = -1; // out[j] = −x[j + half]
    r[j * hd + j + half] = 1; // out[j + half] = x[j]
  }
  return tf.tensor2d(r, [hd, hd]);
}

// ---------------------------------------------------------------------------------------------
// Building blocks.

/** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · w.  x: [N, D], w: [D]. */
function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D, eps: number): tf.Tensor2D {
  const variance = tf.mean(tf.square(x), -1, true); // [N, 1]
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), weight);
}

/** x·cos + rotate_half(x)·sin for x: [B, nh, T, hd], cos/sin: [T, hd] (or [B, 1, T, hd] per row). */
function applyRope(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor, rotate: tf.Tensor2D): tf.Tensor4D {
  const [B, nh, T, hd] = x.shape;
  const rotated = tf.reshape(tf.matMul(tf.reshape(x, [B * nh * T, hd]), rotate), [B, nh, T, hd]);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/**
 * Additive causal mask for grouped queries: row r is query position past + (r mod T) (G groups of T
 * rows), column j a key position; 0 where j ≤ that position, −1e9 after it (finite, so a softmax
 * never sees −∞ − −∞).
 */
function causalMask(G: number, T: number, past: number): tf.Tensor2D {
  const Tk = past + T;
  const mask = new Float32Array(G * T * Tk);
  for (let r = 0; r < G * T; r++) {
    const position = past + (r % T);
    for (let j = position + 1; j < Tk; j++) mask[r * Tk + j] = -1e9;
  }
  return tf.tensor2d(mask, [G * T, Tk]);
}

/**
 * Additive mask for left-padded rows, [B, 1, G·T, Tk] (broadcast over K/V heads): the causal mask
 * plus row b's first padding[b] key columns. A pad query sees no key at all; its softmax is then
 * uniform over finite scores, harmless because nothing reads a pad position's output.
 */
function paddedCausalMask(G: number, T: number, past: number, padding: readonly number[]): tf.Tensor4D {
  const B = padding.length;
  const Tk = past + T;
  const mask = new Float32Array(B * G * T * Tk);
  for (let b = 0; b < B; b++) {
    const pad = Math.min(padding[b]!, Tk);
    for (let r = 0; r < G * T; r++) {
      const offset = (b * G * T + r) * Tk;
      const position = past + (r % T);
      for (let j = 0; j < pad; j++) mask[offset + j] = -1e9;
      for (let j = Math.max(position + 1, pad); j < Tk; j++) mask[offset + j] = -1e9;
    }
  }
  return tf.tensor4d(mask, [B, 1, G * T, Tk]);
}

// ---------------------------------------------------------------------------------------------
// The model.

/** A low-rank update W + scale·B·A for one projection (PEFT names: lora_A [r, in], lora_B [out, r]). */
export interface LoraAdapter {
  a: tf.Variable; // [r, in]
  b: tf.Variable; // [out, r]
  scale: number; // lora_alpha / r
}

/**
 * Keys and values of every position seen so far, per layer: [B, KV, length, hd]. Rows may be
 * left-padded: row b's first `padding[b]` columns hold no token (masked, see `paddedCausalMask`).
 * Continuous batching moves rows in and out with `append` and `keepRows`.
 */
export class KVCache {
  layers: { k: tf.Tensor4D; v: tf.Tensor4D }[] = [];
  /** Columns (positions, pads included) held per row. */
  length = 0;
  /** Leading pad columns per row, or null when no row is padded. */
  padding: number[] | null = null;

  /** Rows held (0 for an empty cache). */
  get batchSize(): number {
    return this.layers[0]?.k.shape[0] ?? 0;
  }

  /**
   * Keeps only `rows` (indices into the current rows, in the new order) and drops the leading
   * columns that are padding in every kept row. Keeping no row empties the cache.
   */
  keepRows(rows: readonly number[]): void {
    const B = this.batchSize;
    for (const r of rows)
      assert(Number.isInteger(r) && r >= 0 && r < B, () => `row ${r} is not in 0..${B - 1}`);
    if (rows.length === 0) {
      this.dispose();
      return;
    }
    const same = rows.length === B && rows.every((r, i) => r === i);
    const padding = rows.map((r) => this.padding?.[r] ?? 0);
    const trim = Math.min(...padding);
    if (same && trim === 0) return;
    const L = this.length;
    const old = this.layers;
    // Kept rows as runs of consecutive old rows: a slice per run and one concat copy memory in
    // blocks, where the wasm gather kernel walks every element (7× slower on a serving batch's
    // cache, and it ran each time a sequence left: most of a step under load, bench:serve showed).
    const runs: { from: number; count: number }[] = [];
    for (const r of rows) {
      const last = runs.at(-1);
      if (last && r === last.from + last.count) last.count++;
      else runs.push({ from: r, count: 1 });
    }
    this.layers = tf.tidy(() => {
      const pick = (x: tf.Tensor4D): tf.Tensor4D => {
        const [, kv, , hd] = x.shape;
        const parts = runs.map(({ from, count }) =>
          tf.slice(x, [from, 0, trim, 0], [count, kv, L - trim, hd]),
        );
        return parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
      };
      return old.map(({ k, v }) => ({ k: pick(k), v: pick(v) }));
    });
    for (const { k, v } of old) tf.dispose([k, v]);
    this.length = L - trim;
    const shifted = padding.map((p) => p - trim);
    this.padding = shifted.some((p) => p > 0) ? shifted : null;
  }

  /**
   * Moves `other`'s rows after this cache's rows (`other` is left empty). The shorter side is
   * left-padded with zero columns, which become pad columns of its rows.
   */
  append(other: KVCache): void {
    if (other.batchSize === 0) return;
    if (this.batchSize === 0) {
      this.layers = other.layers;
      this.length = other.length;
      this.padding = other.padding;
      other.layers = [];
      other.length = 0;
      other.padding = null;
      return;
    }
    assert(
      other.layers.length === this.layers.length,
      () => `cannot append a cache of ${other.layers.length} layers to one of ${this.layers.length}`,
    );
    const L = Math.max(this.length, other.length);
    const padLeft = (x: tf.Tensor4D, by: number): tf.Tensor4D =>
      by === 0
        ? x
        : tf.pad(x, [
            [0, 0],
            [0, 0],
            [by, 0],
            [0, 0],
          ]);
    const mine = L - this.length;
    const theirs = L - other.length;
    const merged = tf.tidy(() =>
      this.layers.map(({ k, v }, i) => ({
        k: tf.concat([padLeft(k, mine), padLeft(other.layers[i]!.k, theirs)], 0),
        v: tf.concat([padLeft(v, mine), padLeft(other.layers[i]!.v, theirs)], 0),
      })),
    );
    const padding = [
      ...Array.from({ length: this.batchSize }, (_, b) => (this.padding?.[b] ?? 0) + mine),
      ...Array.from({ length: other.batchSize }, (_, b) => (other.padding?.[b] ?? 0) + theirs),
    ];
    this.dispose();
    other.dispose();
    this.layers = merged;
    this.length = L;
    this.padding = padding.some((p) => p > 0) ? padding : null;
  }

  dispose(): void {
    for (const { k, v } of this.layers) tf.dispose([k, v]);
    this.layers = [];
    this.length = 0;
    this.padding = null;
  }
}

/** The tensors every decoder layer of one forward shares (see `LlamaModel.layerContext`). */
export interface LayerContext {
  B: number;
  T: number;
  rope: { cos: tf.Tensor; sin: tf.Tensor; qCos: tf.Tensor; qSin: tf.Tensor };
  mask: tf.Tensor | null;
}

/** Frees a `LayerContext` built outside a tidy. */
export function disposeLayerContext(context: LayerContext): void {
  const { cos, sin, qCos, qSin } = context.rope;
  tf.dispose([cos, sin, qCos, qSin, ...(context.mask ? [context.mask] : [])]);
}

export interface ForwardOptions {
  /** Project only the last position to logits (generation needs nothing else). @default false */
  lastOnly?: boolean;
  /**
   * Left padding: row b's first `padding[b]` columns (counted from the start of the sequence, cache
   * included) are pad tokens, masked as keys and skipped by the RoPE positions. With a cache it is
   * stored on the first call and may be omitted afterwards. @default no padding
   */
  padding?: readonly number[];
}

let modelCount = 0;

export class LlamaModel {
  readonly config: LlamaConfig;
  /** HF tensor name → variable. Linear weights are [out, in]. */
  readonly params: Map<string, tf.Variable>;
  /** Projection name (`model.layers.0.self_attn.q_proj`) → LoRA adapter; none by default. */
  readonly adapters = new Map<string, LoraAdapter>();
  private readonly rotate: tf.Tensor2D;
  private readonly invFreq: Float64Array;

  /**
   * Takes ownership of `weights` (HF names → tensors; see `llamaParameterShapes`), which become
   * trainable variables. Use `loadCheckpoint` for a directory or `LlamaModel.init` for fresh weights.
   */
  constructor(config: LlamaConfig, weights: Map<string, tf.Tensor>) {
    this.config = config;
    const expected = llamaParameterShapes(config);
    for (const [name, shape] of expected) {
      const w = weights.get(name);
      assert(w !== undefined, () => `missing weight ${name} (expected shape [${shape}])`);
      assert(
        w.shape.length === shape.length && w.shape.every((d, i) => d === shape[i]),
        () => `weight ${name} has shape [${w.shape}], expected [${shape}]`,
      );
    }
    const extra = [...weights.keys()].filter((name) => !expected.has(name));
    assert(extra.length === 0, () => `unexpected weights: ${extra.join(', ')}`);
    // Variable names are global in tfjs, so two models (policy and frozen reference) need a prefix.
    const prefix = `llama${modelCount++}`;
    this.params = new Map();
    for (const [name, w] of weights) {
      this.params.set(name, tf.variable(w, true, `${prefix}/${name}`));
      w.dispose();
    }
    this.rotate = rotateHalfMatrix(headDimOf(config));
    this.invFreq = ropeInverseFrequencies(config);
  }

  /** A model with fresh weights (see `initLlamaWeights`). */
  static init(config: LlamaConfig, options: { seed?: number; std?: number } = {}): LlamaModel {
    return new LlamaModel(config, initLlamaWeights(config, options));
  }

  private weight(name: string): tf.Tensor {
    const w = this.params.get(name);
    assert(w !== undefined, () => `no parameter named ${name}`);
    return w;
  }

  /** y = x·Wᵀ (+ scale·(x·Aᵀ)·Bᵀ with a LoRA adapter).  x: [N, in] → [N, out]. */
  private linear(x: tf.Tensor2D, name: string, weightName = `${name}.weight`): tf.Tensor2D {
    const y = tf.matMul(x, this.weight(weightName), false, true) as tf.Tensor2D;
    const lora = this.adapters.get(name);
    if (!lora) return y;
    const down = tf.matMul(x, lora.a, false, true); // [N, r]
    const delta = tf.matMul(down, lora.b, false, true); // [N, out]
    return tf.add(y, tf.mul(delta, lora.scale));
  }

  /** Causal self-attention of layer i on x: [B·T, D], with K/V of earlier positions from `past`. */
  private attention(
    i: number,
    x: tf.Tensor2D,
    B: number,
    T: number,
    rope: { cos: tf.Tensor; sin: tf.Tensor; qCos: tf.Tensor; qSin: tf.Tensor },
    mask: tf.Tensor | null,
    past: { k: tf.Tensor4D; v: tf.Tensor4D } | undefined,
  ): { out: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const H = this.config.num_attention_heads;
    const KV = kvHeadsOf(this.config);
    const hd = headDimOf(this.config);
    const G = H / KV; // query heads per K/V head
    const p = `model.layers.${i}.self_attn`;

    // [B·T, n·hd] → [B, T, n, hd] → [B, n, T, hd]; with one position the transpose moves nothing.
    const heads = (y: tf.Tensor2D, n: number): tf.Tensor4D =>
      T === 1 ? tf.reshape(y, [B, n, 1, hd]) : tf.transpose(tf.reshape(y, [B, T, n, hd]), [0, 2, 1, 3]);
    // The 1/√hd score scale is folded into the query's RoPE tables (rope.qCos, rope.qSin).
    const q = applyRope(heads(this.linear(x, `${p}.q_proj`), H), rope.qCos, rope.qSin, this.rotate); // [B, H, T, hd]
    let k = applyRope(heads(this.linear(x, `${p}.k_proj`), KV), rope.cos, rope.sin, this.rotate); // [B, KV, T, hd]
    let v = heads(this.linear(x, `${p}.v_proj`), KV); // [B, KV, T, hd]
    if (past) {
      k = tf.concat([past.k, k], 2); // [B, KV, Tk, hd]
      v = tf.concat([past.v, v], 2);
    }

    // Query head h attends with K/V head ⌊h/G⌋ (HF's repeat_kv). Heads h = kv·G + g are adjacent, so
    // [B, H, T, hd] → [B, KV, G·T, hd] is a free reshape and one matmul serves the whole group.
    const qGrouped = tf.reshape(q, [B, KV, G * T, hd]);
    let scores = tf.matMul(qGrouped, k, false, true); // [B, KV, G·T, Tk]
    if (mask) scores = tf.add(scores, mask); // [G·T, Tk] or, per row, [B, 1, G·T, Tk]
    const y = tf.matMul(tf.softmax(scores), v); // [B, KV, G·T, hd]
    const byPosition = T === 1 ? y : tf.transpose(tf.reshape(y, [B, H, T, hd]), [0, 2, 1, 3]); // [B, T, H, hd]
    const merged: tf.Tensor2D = tf.reshape(byPosition, [B * T, H * hd]); // [B·T, H·hd]
    return { out: this.linear(merged, `${p}.o_proj`), k, v };
  }

  /** SwiGLU: down(silu(gate(x)) · up(x)).  x: [N, D] → [N, D]. */
  private mlp(i: number, x: tf.Tensor2D): tf.Tensor2D {
    const p = `model.layers.${i}.mlp`;
    const gate = this.linear(x, `${p}.gate_proj`); // [N, I]
    const up = this.linear(x, `${p}.up_proj`); // [N, I]
    return this.linear(tf.mul(tf.mul(gate, tf.sigmoid(gate)), up), `${p}.down_proj`);
  }

  /**
   * The whole network for columns [past, past+T), rows left-padded by `padding` (null: none).
   * Runs inside the caller's tidy.
   */
  private run(
    inputIds: tf.Tensor2D,
    past: number,
    cache: KVCache | null,
    lastOnly: boolean,
    padding: readonly number[] | null,
  ): { logits: tf.Tensor3D; kv: { k: tf.Tensor4D; v: tf.Tensor4D }[] } {
    const c = this.config;
    const [B, T] = inputIds.shape;
    const D = c.hidden_size;
    const V = c.vocab_size;
    assert(inputIds.dtype === 'int32', () => `input ids must be int32, got ${inputIds.dtype}`);
    assert(T >= 1, () => 'cannot forward an empty sequence');
    if (padding) {
      assert(padding.length === B, () => `padding has ${padding.length} rows, the batch ${B}`);
      assert(
        padding.every((p) => Number.isInteger(p) && p >= 0),
        () => `padding must be non-negative integers, got [${padding}]`,
      );
    }
    const pads = padding?.some((p) => p > 0) ? padding : null;
    const longest = past + T - (pads ? Math.min(...pads) : 0); // the furthest real position + 1
    assert(
      longest <= c.max_position_embeddings,
      () =>
        `cannot forward positions up to ${longest}: max_position_embeddings is only ${c.max_position_embeddings}`,
    );

    const context = this.layerContext(B, T, past, pads);
    let x = this.embed(inputIds); // [B·T, D]
    const kv: { k: tf.Tensor4D; v: tf.Tensor4D }[] = [];
    for (let i = 0; i < c.num_hidden_layers; i++) {
      const out = this.decoderLayer(i, x, context, cache?.layers[i]);
      kv.push({ k: out.k, v: out.v });
      x = out.x;
    }
    if (lastOnly) {
      // Only the last position is projected (the vocabulary matmul is the largest one).
      x = tf.reshape(tf.slice(tf.reshape(x, [B, T, D]), [0, T - 1, 0], [B, 1, D]), [B, D]); // [B, D]
    }
    const logits = this.head(x); // [B·T', V]
    return { logits: tf.reshape(logits, [B, lastOnly ? 1 : T, V]), kv };
  }

  /**
   * What every decoder layer of a [B, T] forward shares: RoPE tables for columns [past, past+T)
   * (per row when rows are left-padded by `padding`) and the additive attention mask. The caller
   * disposes it (`disposeLayerContext`) unless a tidy does.
   */
  layerContext(B: number, T: number, past = 0, padding: readonly number[] | null = null): LayerContext {
    const c = this.config;
    const qScale = 1 / Math.sqrt(headDimOf(c));
    const tables = padding
      ? ropeTablesPerRow(this.invFreq, past, T, padding, 1)
      : ropeTables(this.invFreq, past, T, 1);
    const qTables = padding
      ? ropeTablesPerRow(this.invFreq, past, T, padding, qScale)
      : ropeTables(this.invFreq, past, T, qScale);
    const G = c.num_attention_heads / kvHeadsOf(c);
    // Without padding a single new token may see every key; with it, each row hides its pads.
    const mask = padding ? paddedCausalMask(G, T, past, padding) : T > 1 ? causalMask(G, T, past) : null;
    return { B, T, rope: { ...tables, qCos: qTables.cos, qSin: qTables.sin }, mask };
  }

  /** Token embeddings.  inputIds: int32 [B, T] → [B·T, D]. */
  embed(inputIds: tf.Tensor2D): tf.Tensor2D {
    const [B, T] = inputIds.shape;
    return embeddingLookup(
      this.weight('model.embed_tokens.weight') as tf.Tensor2D,
      tf.reshape(inputIds, [B * T]),
    );
  }

  /**
   * Decoder layer i (pre-norm attention and MLP, each added to the residual) on x: [B·T, D], with
   * K/V of earlier positions from `past`. → the new residual x and this call's keys and values.
   */
  decoderLayer(
    i: number,
    x: tf.Tensor2D,
    context: LayerContext,
    past?: { k: tf.Tensor4D; v: tf.Tensor4D },
  ): { x: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const c = this.config;
    const p = `model.layers.${i}`;
    const { B, T, rope, mask } = context;
    const h = rmsNorm(x, this.weight(`${p}.input_layernorm.weight`) as tf.Tensor1D, c.rms_norm_eps);
    const att = this.attention(i, h, B, T, rope, mask, past);
    const mid: tf.Tensor2D = tf.add(x, att.out);
    const h2 = rmsNorm(
      mid,
      this.weight(`${p}.post_attention_layernorm.weight`) as tf.Tensor1D,
      c.rms_norm_eps,
    );
    return { x: tf.add(mid, this.mlp(i, h2)), k: att.k, v: att.v };
  }

  /** Final RMSNorm and the vocabulary projection (tied or not).  x: [N, D] → logits [N, V]. */
  head(x: tf.Tensor2D): tf.Tensor2D {
    const c = this.config;
    const normed = rmsNorm(x, this.weight('model.norm.weight') as tf.Tensor1D, c.rms_norm_eps);
    return this.linear(
      normed,
      'lm_head',
      c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight',
    );
  }

  /** Logits for every position.  inputIds: int32 [B, T] → [B, T, V]. */
  forward(inputIds: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(
      () => this.run(inputIds, 0, null, options.lastOnly ?? false, options.padding ?? null).logits,
    );
  }

  /**
   * Incremental forward for generation: `inputIds` [B, t] continue the sequences held in `cache`
   * (empty for the prompt), whose keys and values are extended in place. → logits [B, t, V]
   * (or [B, 1, V] with `lastOnly`).
   */
  forwardWithCache(inputIds: tf.Tensor2D, cache: KVCache, options: ForwardOptions = {}): tf.Tensor3D {
    const [B] = inputIds.shape;
    if (cache.layers.length > 0) {
      const cached = cache.layers[0]!.k.shape[0];
      assert(cached === B, () => `batch of ${B} sequences, but the cache holds ${cached}`);
    }
    let padding = cache.padding;
    if (options.padding) {
      const given = options.padding;
      if (cache.length === 0) padding = given.some((p) => p > 0) ? [...given] : null;
      else
        assert(
          given.every((p, b) => p === (cache.padding?.[b] ?? 0)),
          () => `padding [${given}] differs from the cache's [${cache.padding ?? []}]`,
        );
    }
    let kv: { k: tf.Tensor4D; v: tf.Tensor4D }[] = [];
    const logits = tf.tidy(() => {
      const result = this.run(inputIds, cache.length, cache, options.lastOnly ?? false, padding);
      kv = result.kv.map(({ k, v }) => ({ k: tf.keep(k), v: tf.keep(v) })); // outlive the tidy
      return result.logits;
    });
    const old = cache.layers;
    cache.layers = kv;
    cache.length += inputIds.shape[1];
    cache.padding = padding;
    for (const { k, v } of old) tf.dispose([k, v]);
    return logits;
  }

  /** Number of scalar parameters (LoRA adapters excluded). */
  numParameters(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    for (const { a, b } of this.adapters.values()) tf.dispose([a, b]);
    this.params.clear();
    this.adapters.clear();
    this.rotate.dispose();
  }
}

/**
 * Greedy decoding with a KV cache: `maxNewTokens` argmax tokens after each prompt (all prompts the
 * same length). Returns only the new tokens, one array per prompt.
 */
export function greedyGenerate(model: LlamaModel, prompts: number[][], maxNewTokens: number): number[][] {
  const B = prompts.length;
  const V = model.config.vocab_size;
  const generated: number[][] = prompts.map(() => []);
  const cache = new KVCache();
  let ids = tf.tensor2d(prompts, [B, prompts[0]!.length], 'int32');
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      const logits = model.forwardWithCache(ids, cache, { lastOnly: true }); // [B, 1, V]
      const next = tf.tidy(() => tf.argMax(tf.reshape(logits, [B, V]), -1)); // [B]
      const tokens = Array.from(next.dataSync());
      tf.dispose([logits, next, ids]);
      for (let b = 0; b < B; b++) generated[b]!.push(tokens[b]!);
      ids = tf.tensor2d(tokens, [B, 1], 'int32'); // the next step feeds only the new token
    }
  } finally {
    ids.dispose();
    cache.dispose();
  }
  return generated;
}
