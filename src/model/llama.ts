/**
 * A decoder-only Llama in TensorFlow.js, in one file that reads top to bottom.
 *
 * It follows Hugging Face transformers' `modeling_llama.py` (LlamaRMSNorm, LlamaRotaryEmbedding with
 * `rotate_half`, LlamaMLP, LlamaAttention with grouped K/V heads) closely enough that HF checkpoints
 * load unchanged and give the same logits (test/model/llama.test.ts checks against PyTorch), and
 * nanoGPT's `model.py` for the layout: parameter table → small blocks → the model. It is a
 * full-sequence forward for training and scoring; generation runs on llama.cpp.
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

/** cos and sin of position·frequency for positions [0, T), laid out [T, hd] like HF (cat(f, f)). */
function ropeTables(inv: Float64Array, T: number, scale: number) {
  const half = inv.length;
  const hd = 2 * half;
  const cos = new Float32Array(T * hd);
  const sin = new Float32Array(T * hd);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < half; j++) {
      const angle = t * inv[j]!;
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

/** x·cos + rotate_half(x)·sin for x: [B, nh, T, hd], cos/sin: [T, hd]. */
function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D, rotate: tf.Tensor2D): tf.Tensor4D {
  const [B, nh, T, hd] = x.shape;
  const rotated = tf.reshape(tf.matMul(tf.reshape(x, [B * nh * T, hd]), rotate), [B, nh, T, hd]);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/**
 * Additive causal mask for grouped queries: row r is query position r mod T (G groups of T rows),
 * column j a key position; 0 where j ≤ that position, −1e9 after it (finite, so a softmax never sees
 * −∞ − −∞).
 */
function causalMask(G: number, T: number): tf.Tensor2D {
  const mask = new Float32Array(G * T * T);
  for (let r = 0; r < G * T; r++) {
    const position = r % T;
    for (let j = position + 1; j < T; j++) mask[r * T + j] = -1e9;
  }
  return tf.tensor2d(mask, [G * T, T]);
}

// ---------------------------------------------------------------------------------------------
// The model.

/** A low-rank update W + scale·B·A for one projection (PEFT names: lora_A [r, in], lora_B [out, r]). */
export interface LoraAdapter {
  a: tf.Variable; // [r, in]
  b: tf.Variable; // [out, r]
  scale: number; // lora_alpha / r
}

/** The tensors every decoder layer of one forward shares (see `LlamaModel.layerContext`). */
export interface LayerContext {
  B: number;
  T: number;
  rope: { cos: tf.Tensor2D; sin: tf.Tensor2D; qCos: tf.Tensor2D; qSin: tf.Tensor2D };
  /** Null for a single position, which sees its only key. */
  mask: tf.Tensor2D | null;
}

/** Frees a `LayerContext` built outside a tidy. */
export function disposeLayerContext(context: LayerContext): void {
  const { cos, sin, qCos, qSin } = context.rope;
  tf.dispose([cos, sin, qCos, qSin, ...(context.mask ? [context.mask] : [])]);
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

  /** Causal self-attention of layer i on x: [B·T, D]. */
  private attention(i: number, x: tf.Tensor2D, context: LayerContext): tf.Tensor2D {
    const { B, T, rope, mask } = context;
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
    const k = applyRope(heads(this.linear(x, `${p}.k_proj`), KV), rope.cos, rope.sin, this.rotate); // [B, KV, T, hd]
    const v = heads(this.linear(x, `${p}.v_proj`), KV); // [B, KV, T, hd]

    // Query head h attends with K/V head ⌊h/G⌋ (HF's repeat_kv). Heads h = kv·G + g are adjacent, so
    // [B, H, T, hd] → [B, KV, G·T, hd] is a free reshape and one matmul serves the whole group.
    const qGrouped = tf.reshape(q, [B, KV, G * T, hd]);
    let scores = tf.matMul(qGrouped, k, false, true); // [B, KV, G·T, T]
    if (mask) scores = tf.add(scores, mask); // [G·T, T]
    const y = tf.matMul(tf.softmax(scores), v); // [B, KV, G·T, hd]
    const byPosition = T === 1 ? y : tf.transpose(tf.reshape(y, [B, H, T, hd]), [0, 2, 1, 3]); // [B, T, H, hd]
    const merged: tf.Tensor2D = tf.reshape(byPosition, [B * T, H * hd]); // [B·T, H·hd]
    return this.linear(merged, `${p}.o_proj`);
  }

  /** SwiGLU: down(silu(gate(x)) · up(x)).  x: [N, D] → [N, D]. */
  private mlp(i: number, x: tf.Tensor2D): tf.Tensor2D {
    const p = `model.layers.${i}.mlp`;
    const gate = this.linear(x, `${p}.gate_proj`); // [N, I]
    const up = this.linear(x, `${p}.up_proj`); // [N, I]
    return this.linear(tf.mul(tf.mul(gate, tf.sigmoid(gate)), up), `${p}.down_proj`);
  }

  /**
   * What every decoder layer of a [B, T] forward shares: RoPE tables for positions [0, T) and the
   * additive causal mask. The caller disposes it (`disposeLayerContext`) unless a tidy does.
   */
  layerContext(B: number, T: number): LayerContext {
    const c = this.config;
    const qScale = 1 / Math.sqrt(headDimOf(c));
    const tables = ropeTables(this.invFreq, T, 1);
    const qTables = ropeTables(this.invFreq, T, qScale);
    const G = c.num_attention_heads / kvHeadsOf(c);
    const mask = T > 1 ? causalMask(G, T) : null;
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
   * Decoder layer i (pre-norm attention and MLP, each added to the residual) on x: [B·T, D].
   * → the new residual [B·T, D].
   */
  decoderLayer(i: number, x: tf.Tensor2D, context: LayerContext): tf.Tensor2D {
    const c = this.config;
    const p = `model.layers.${i}`;
    const h = rmsNorm(x, this.weight(`${p}.input_layernorm.weight`) as tf.Tensor1D, c.rms_norm_eps);
    const mid: tf.Tensor2D = tf.add(x, this.attention(i, h, context));
    const h2 = rmsNorm(
      mid,
      this.weight(`${p}.post_attention_layernorm.weight`) as tf.Tensor1D,
      c.rms_norm_eps,
    );
    return tf.add(mid, this.mlp(i, h2));
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
  forward(inputIds: tf.Tensor2D): tf.Tensor3D {
    const c = this.config;
    const [B, T] = inputIds.shape;
    assert(inputIds.dtype === 'int32', () => `input ids must be int32, got ${inputIds.dtype}`);
    assert(T >= 1, () => 'cannot forward an empty sequence');
    assert(
      T <= c.max_position_embeddings,
      () =>
        `cannot forward positions up to ${T}: max_position_embeddings is only ${c.max_position_embeddings}`,
    );
    return tf.tidy(() => {
      const context = this.layerContext(B, T);
      let x = this.embed(inputIds); // [B·T, D]
      for (let i = 0; i < c.num_hidden_layers; i++) x = this.decoderLayer(i, x, context);
      return tf.reshape(this.head(x), [B, T, c.vocab_size]);
    });
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
