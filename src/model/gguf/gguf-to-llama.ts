/**
 * A llama.cpp Llama GGUF as our TensorFlow.js `LlamaModel`: the `llama.*` keys become an HF
 * `LlamaConfig`, each tensor is dequantized to float32 (any type the reader dequantizes), given its
 * HF name and shape (GGUF dims reversed), q/k rows un-permuted back to HF's rotate_half layout, and
 * the head tied to the embedding when the file has no `output.weight`. Llama 3 `rope_freqs.weight`
 * becomes the `rope_scaling` that reproduces those factors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError } from '../checkpoint.ts';
import { ConfigError, type LlamaConfig, parseLlamaConfig } from '../config.ts';
import { LlamaModel, llamaParameterShapes } from '../llama.ts';
import { llama3RopeFactors } from './checkpoint-to-gguf.ts';
import { GgufValueType } from './ggml-types.ts';
import { hfTensorName, unpermuteRopeRows } from './llama-tensor-names.ts';
import type { GgufFile, GgufValue } from './parse-header.ts';
import { inspectGguf, readTensorF32 } from './reader.ts';
import type { GgufScalar, GgufWriteValue } from './writer.ts';

/** A GGUF loaded for TensorFlow.js. */
export interface LoadedGgufModel {
  model: LlamaModel;
  /** The config in HF LlamaConfig names (what `config.json` would say). */
  config: LlamaConfig;
  /** The file's header, for its tokenizer and chat template keys. */
  gguf: GgufFile;
}

function numberKey(file: GgufFile, key: string, path: string): number | undefined {
  const value: GgufValue | undefined = file.metadata[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number')
    throw new CheckpointError(path, `metadata ${key} is ${JSON.stringify(value)}, not a number`);
  return value;
}

/** The HF config a Llama GGUF's metadata describes. @throws CheckpointError naming the key */
export function llamaConfigFromGguf(file: GgufFile, path: string): LlamaConfig {
  const architecture = file.metadata['general.architecture'];
  if (architecture !== 'llama')
    throw new CheckpointError(
      path,
      `general.architecture is ${JSON.stringify(architecture)}; only "llama" loads here`,
    );
  const need = (key: string): number => {
    const value = numberKey(file, `llama.${key}`, path);
    if (value === undefined) throw new CheckpointError(path, `metadata llama.${key} is missing`);
    return value;
  };
  const optional = (key: string) => numberKey(file, `llama.${key}`, path);
  const embedding = file.tensors.find((t) => t.name === 'token_embd.weight');
  if (!embedding) throw new CheckpointError(path, 'tensor token_embd.weight is missing');
  const heads = need('attention.head_count');
  const hidden = need('embedding_length');
  const headDim = optional('attention.key_length') ?? optional('rope.dimension_count') ?? hidden / heads;
  const tokenizerId = (key: string) => numberKey(file, `tokenizer.ggml.${key}`, path);
  const json: Record<string, unknown> = {
    vocab_size: optional('vocab_size') ?? embedding.dims[1],
    hidden_size: hidden,
    intermediate_size: need('feed_forward_length'),
    num_hidden_layers: need('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: optional('attention.head_count_kv') ?? heads,
    max_position_embeddings: need('context_length'),
    rms_norm_eps: need('attention.layer_norm_rms_epsilon'),
    rope_theta: optional('rope.freq_base') ?? 10000,
    tie_word_embeddings: !file.tensors.some((t) => t.name === 'output.weight'),
    bos_token_id: tokenizerId('bos_token_id') ?? null,
    eos_token_id: tokenizerId('eos_token_id') ?? null,
    head_dim: headDim,
  };
  const pad = tokenizerId('padding_token_id');
  if (pad !== undefined) json.pad_token_id = pad;
  try {
    return parseLlamaConfig(json);
  } catch (error) {
    if (ConfigError.isInstance(error)) throw new CheckpointError(path, error.message, { cause: error });
    throw error;
  }
}

/**
 * Llama 3 rope scaling parameters that give exactly these llama.cpp frequency factors. The factors
 * fix `factor` (the largest) and the band edges only up to a common scale of
 * (original_max_position_embeddings, low_freq_factor, high_freq_factor); the scale is chosen to
 * make the context length an integer. @throws CheckpointError when no Llama 3 scaling fits
 */
export function fitLlama3RopeScaling(config: LlamaConfig, factors: Float32Array, path: string): LlamaConfig {
  const hd = factors.length * 2;
  const F = Math.max(...factors);
  if (Math.abs(F - 1) < 1e-6) return config;
  const wavelen = [...factors].map(
    (_, j) => (2 * Math.PI) / Math.fround(1 / Math.fround(config.rope_theta ** ((2 * j) / hd))),
  );
  const near = (a: number, b: number) => Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b));
  const keep = wavelen.filter((_, j) => near(factors[j]!, 1));
  const scaled = wavelen.filter((_, j) => near(factors[j]!, F));
  // s: how far into the band a wavelength is, from 0 (scaled by F) to 1 (kept).
  const band = wavelen
    .map((w, j) => ({ w, s: (1 / factors[j]! - 1 / F) / (1 - 1 / F) }))
    .filter((_, j) => !near(factors[j]!, 1) && !near(factors[j]!, F));
  const maxKeep = keep.length > 0 ? Math.max(...keep) : 0;
  const minScaled = scaled.length > 0 ? Math.min(...scaled) : Number.POSITIVE_INFINITY;
  // With low_freq_factor 1: s = L/w − 1 over (hff − 1), band edges highW = L/hff and lowW = L.
  let L: number;
  let hff: number;
  if (band.length >= 2) {
    const [p, q] = [band[0]!, band[band.length - 1]!];
    const alpha = (p.s - q.s) / (1 / p.w - 1 / q.w);
    const beta = p.s - alpha / p.w;
    hff = 1 - 1 / beta;
    L = -alpha / beta;
  } else if (band.length === 1) {
    const { w, s } = band[0]!;
    // L > 0 needs highW > s·w; L stays near w (below the scaled wavelengths) as highW nears w.
    const lowest = Math.max(maxKeep, s * w);
    const highW = lowest + 0.75 * (w - lowest);
    L = (1 - s) / (1 / w - s / highW);
    hff = L / highW;
  } else {
    const highW =
      maxKeep > 0 && Number.isFinite(minScaled)
        ? (2 * maxKeep + minScaled) / 3
        : maxKeep > 0
          ? maxKeep * 2
          : minScaled / 3;
    const lowW = Number.isFinite(minScaled) ? (maxKeep + 2 * minScaled) / 3 : maxKeep * 3;
    L = lowW;
    hff = lowW / highW;
  }
  const k = Math.ceil(L) / L;
  const fitted = {
    ...config,
    rope_scaling: {
      rope_type: 'llama3' as const,
      factor: F,
      low_freq_factor: k,
      high_freq_factor: k * hff,
      original_max_position_embeddings: Math.ceil(L),
    },
  };
  const check = Number.isFinite(L) && L > 0 && hff > 1 ? llama3RopeFactors(fitted) : null;
  if (!check || check.some((f, j) => !near(f, factors[j]!)))
    throw new CheckpointError(
      path,
      'rope_freqs.weight does not follow Llama 3 rope scaling (the only kind implemented)',
    );
  return fitted;
}

/** Reads a Llama GGUF's weights under HF names. @throws CheckpointError */
export async function loadGgufWeights(
  path: string,
): Promise<{ config: LlamaConfig; weights: Map<string, tf.Tensor>; gguf: GgufFile }> {
  const file = await inspectGguf(path);
  let config = llamaConfigFromGguf(file, path);
  const expected = llamaParameterShapes(config);
  const kvHeads = config.num_key_value_heads ?? config.num_attention_heads;
  const weights = new Map<string, tf.Tensor>();
  try {
    for (const info of file.tensors) {
      if (info.name === 'rope_freqs.weight') {
        config = fitLlama3RopeScaling(config, await readTensorF32(path, info), path);
        continue;
      }
      const name = hfTensorName(info.name);
      if (!name || !expected.has(name)) throw new CheckpointError(path, `unexpected tensor ${info.name}`);
      const shape = [...info.dims].reverse();
      const want = expected.get(name)!;
      if (shape.join() !== want.join())
        throw new CheckpointError(path, `tensor ${info.name} is [${shape}] (HF order), expected [${want}]`);
      let data = await readTensorF32(path, info);
      if (name.endsWith('self_attn.q_proj.weight'))
        data = unpermuteRopeRows(data, config.num_attention_heads, shape[1]!);
      else if (name.endsWith('self_attn.k_proj.weight')) data = unpermuteRopeRows(data, kvHeads, shape[1]!);
      weights.set(name, tf.tensor(data, shape, 'float32'));
    }
    const missing = [...expected.keys()].filter((n) => !weights.has(n));
    if (missing.length > 0)
      throw new CheckpointError(path, `${missing.length} missing tensor(s): ${missing.join(', ')}`);
  } catch (error) {
    tf.dispose([...weights.values()]);
    throw error;
  }
  return { config, weights, gguf: file };
}

/** Loads a Llama GGUF into TensorFlow.js. @throws CheckpointError (or GgufError for a malformed file) */
export async function loadGgufModel(path: string): Promise<LoadedGgufModel> {
  const { config, weights, gguf } = await loadGgufWeights(path);
  const model = new LlamaModel(config, weights); // takes the tensors over
  return { model, config, gguf };
}

const WRITE_TYPE_NAMES: Record<number, GgufScalar['type']> = {
  [GgufValueType.UINT8]: 'uint8',
  [GgufValueType.INT8]: 'int8',
  [GgufValueType.UINT16]: 'uint16',
  [GgufValueType.INT16]: 'int16',
  [GgufValueType.UINT32]: 'uint32',
  [GgufValueType.INT32]: 'int32',
  [GgufValueType.FLOAT32]: 'float32',
  [GgufValueType.BOOL]: 'bool',
  [GgufValueType.STRING]: 'string',
  [GgufValueType.UINT64]: 'uint64',
  [GgufValueType.INT64]: 'int64',
  [GgufValueType.FLOAT64]: 'float64',
};

/**
 * A read file's metadata keys that start with `prefix` (`tokenizer.`), as writer values with their
 * stored types: re-exporting a model keeps its tokenizer exactly.
 */
export function copyGgufMetadata(file: GgufFile, prefix: string): Map<string, GgufWriteValue> {
  const out = new Map<string, GgufWriteValue>();
  for (const [key, value] of Object.entries(file.metadata)) {
    if (!key.startsWith(prefix)) continue;
    const kind = file.metadataKinds[key]!;
    if (kind.type === GgufValueType.ARRAY) {
      const itemType = WRITE_TYPE_NAMES[kind.itemType!];
      if (!itemType) throw new CheckpointError('(gguf)', `metadata ${key}: arrays of arrays are not copied`);
      out.set(key, { type: 'array', itemType, value: value as (number | bigint | boolean | string)[] });
    } else {
      out.set(key, { type: WRITE_TYPE_NAMES[kind.type]!, value } as GgufScalar);
    }
  }
  return out;
}
