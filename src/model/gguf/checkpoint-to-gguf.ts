/**
 * Our Llama checkpoints (HF layout, or a model in memory) as GGUF files llama.cpp loads, written the
 * way llama.cpp's `convert_hf_to_gguf.py` writes a `LlamaForCausalLM`: `general.architecture =
 * llama`, the `llama.*` hyperparameters, llama.cpp's tensor names with q/k rows permuted for its
 * RoPE, `rope_freqs.weight` for Llama 3 rope scaling, and the tokenizer as `tokenizer.*` metadata.
 *
 * Types: F32 writes every tensor as F32; Q8_0 quantizes the 2-D weights whose rows are a multiple
 * of 32 and keeps the norms (and any narrower matrix) in F32, as the converter does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError, loadCheckpoint } from '../checkpoint.ts';
import { headDimOf, kvHeadsOf, type LlamaConfig } from '../config.ts';
import type { LlamaModel } from '../llama.ts';
import { hasLoraAdapter, loadLoraAdapter, mergeLora } from '../lora.ts';
import { Tokenizer } from '../tokenizer.ts';
import { GgmlType } from './ggml-types.ts';
import { ggufTensorName, permuteRopeRows, ropePermutedHeads } from './llama-tensor-names.ts';
import { tokenizerGgufMetadata } from './tokenizer-metadata.ts';
import {
  type GgufTensorInput,
  type GgufWritableType,
  type GgufWriteValue,
  gguf,
  writeGguf,
} from './writer.ts';

/** The output types `corgi convert` offers. */
export type GgufOutputType = 'f32' | 'q8_0';

/** `general.file_type` (llama.cpp's `llama_ftype`) of each output type. */
const FILE_TYPE: Record<GgufOutputType, number> = { f32: 0, q8_0: 7 };

export interface WriteLlamaGgufOptions {
  /** @default 'f32' */
  type?: GgufOutputType;
  /** `general.name`. @default 'corgi' */
  name?: string;
  /** A Jinja chat template; our tokenizers get ours when none is given. @default null */
  chatTemplate?: string | null;
}

/**
 * llama.cpp's rope frequency factors for Llama 3 scaling (convert_hf_to_gguf `generate_extra_tensors`):
 * llama.cpp divides each base frequency by its factor.
 */
export function llama3RopeFactors(config: LlamaConfig): Float32Array | null {
  const s = config.rope_scaling;
  if (!s) return null;
  const hd = headDimOf(config);
  const factors = new Float32Array(hd / 2);
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  for (let j = 0; j < hd / 2; j++) {
    const freq = Math.fround(1 / Math.fround(config.rope_theta ** ((2 * j) / hd)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) factors[j] = 1;
    else if (wavelen > lowWavelen) factors[j] = s.factor;
    else {
      const smooth =
        (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
        (s.high_freq_factor - s.low_freq_factor);
      factors[j] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return factors;
}

/** The `general.*` and `llama.*` keys for a config. */
export function llamaGgufMetadata(config: LlamaConfig, options: WriteLlamaGgufOptions = {}) {
  const { type = 'f32', name = 'corgi' } = options;
  const hd = headDimOf(config);
  const metadata = new Map<string, GgufWriteValue>([
    ['general.architecture', gguf.str('llama')],
    ['general.type', gguf.str('model')],
    ['general.name', gguf.str(name)],
    ['general.file_type', gguf.u32(FILE_TYPE[type])],
    ['general.quantization_version', gguf.u32(2)],
    ['llama.vocab_size', gguf.u32(config.vocab_size)],
    ['llama.context_length', gguf.u32(config.max_position_embeddings)],
    ['llama.embedding_length', gguf.u32(config.hidden_size)],
    ['llama.block_count', gguf.u32(config.num_hidden_layers)],
    ['llama.feed_forward_length', gguf.u32(config.intermediate_size)],
    ['llama.rope.dimension_count', gguf.u32(hd)],
    ['llama.attention.head_count', gguf.u32(config.num_attention_heads)],
    ['llama.attention.head_count_kv', gguf.u32(kvHeadsOf(config))],
    ['llama.attention.key_length', gguf.u32(hd)],
    ['llama.attention.value_length', gguf.u32(hd)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.f32(config.rms_norm_eps)],
    ['llama.rope.freq_base', gguf.f32(config.rope_theta)],
  ]);
  return metadata;
}

/** The tensor's GGUF type under `type`: Q8_0 only for matrices whose rows fill whole 32-value blocks. */
function tensorType(type: GgufOutputType, shape: readonly number[]): GgufWritableType {
  if (type === 'q8_0' && shape.length === 2 && shape[1]! % 32 === 0) return GgmlType.Q8_0;
  return GgmlType.F32;
}

/** The model's weights as GGUF tensors (HF [out, in] → dims [in, out], q/k rows permuted). */
export function llamaGgufTensors(model: LlamaModel, type: GgufOutputType = 'f32'): GgufTensorInput[] {
  const { config } = model;
  const tensors: GgufTensorInput[] = [];
  for (const [hfName, variable] of model.params) {
    const name = ggufTensorName(hfName);
    if (!name) throw new CheckpointError('(model)', `tensor ${hfName} has no llama.cpp name`);
    let data = variable.dataSync() as Float32Array;
    const heads = ropePermutedHeads(hfName, config.num_attention_heads, kvHeadsOf(config));
    if (heads !== undefined) data = permuteRopeRows(data, heads, variable.shape[1]!);
    tensors.push({ name, dims: [...variable.shape].reverse(), type: tensorType(type, variable.shape), data });
  }
  const factors = llama3RopeFactors(config);
  if (factors)
    tensors.push({ name: 'rope_freqs.weight', dims: [factors.length], type: GgmlType.F32, data: factors });
  return tensors;
}

/** Writes a model and its tokenizer as a llama.cpp GGUF (atomically); returns the tensor count. */
export async function writeLlamaGguf(
  model: LlamaModel,
  tokenizer: Tokenizer,
  out: string,
  options: WriteLlamaGgufOptions = {},
): Promise<number> {
  if (model.adapters.size > 0)
    throw new CheckpointError('(model)', 'has LoRA adapters attached: merge them first (mergeLora)');
  const metadata = llamaGgufMetadata(model.config, options);
  for (const [key, value] of tokenizerGgufMetadata(tokenizer, model.config.vocab_size, options.chatTemplate))
    metadata.set(key, value);
  const tensors = llamaGgufTensors(model, options.type);
  await writeGguf(out, metadata, tensors);
  return tensors.length;
}

/** What `convertCheckpointToGguf` wrote. */
export interface ConvertResult {
  path: string;
  type: GgufOutputType;
  tensors: number;
  parameters: number;
  /** Whether a PEFT adapter found in the directory was merged into the weights. */
  mergedAdapter: boolean;
}

/**
 * Converts a checkpoint directory (config.json, safetensors, tokenizer.json, optional PEFT adapter,
 * merged in) to a GGUF file.
 * @throws CheckpointError when the directory cannot be loaded or has no tokenizer
 */
export async function convertCheckpointToGguf(
  dir: string,
  out: string,
  options: WriteLlamaGgufOptions = {},
): Promise<ConvertResult> {
  if (!existsSync(dir)) throw new CheckpointError(dir, 'directory does not exist');
  if (!existsSync(join(dir, 'tokenizer.json')))
    throw new CheckpointError(dir, 'no tokenizer.json (a GGUF carries its tokenizer)');
  const tokenizer = Tokenizer.fromFile(dir);
  const model = await loadCheckpoint(dir);
  try {
    const mergedAdapter = hasLoraAdapter(dir);
    if (mergedAdapter) {
      await loadLoraAdapter(model, dir);
      mergeLora(model);
    }
    const chatTemplate = options.chatTemplate ?? configuredChatTemplate(dir);
    const tensors = await writeLlamaGguf(model, tokenizer, out, { ...options, chatTemplate });
    return {
      path: out,
      type: options.type ?? 'f32',
      tensors,
      parameters: model.numParameters(),
      mergedAdapter,
    };
  } finally {
    model.dispose();
  }
}

/** `chat_template` from tokenizer_config.json, when the checkpoint names one. */
function configuredChatTemplate(dir: string): string | null {
  const path = join(dir, 'tokenizer_config.json');
  if (!existsSync(path)) return null;
  const template = (JSON.parse(readFileSync(path, 'utf8')) as { chat_template?: unknown }).chat_template;
  return typeof template === 'string' ? template : null;
}
