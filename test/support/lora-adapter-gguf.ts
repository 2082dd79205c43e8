/**
 * A LoRA adapter GGUF for SmolLM2-135M in llama.cpp's adapter format (`general.type = "adapter"`,
 * `adapter.type = "lora"`, `adapter.lora.alpha`, `<tensor>.lora_a` [in, r] / `.lora_b` [r, out] in
 * ggml order), with seeded random weights: enough to change what the model writes, so a test can
 * tell base from adapter. Written with the GGUF test encoder.
 */
import { writeFileSync } from 'node:fs';
import { kvHeadsOf } from '../../src/model/config.ts';
import { GgmlType, GgufValueType } from '../../src/model/gguf/ggml-types.ts';
import { llamaConfigFromGguf } from '../../src/model/gguf/gguf-to-llama.ts';
import { type LoraModuleWeights, loraGgufContent } from '../../src/model/gguf/lora-to-gguf.ts';
import { inspectGguf } from '../../src/model/gguf/reader.ts';
import { writeGguf } from '../../src/model/gguf/writer.ts';
import { buildGguf, type TestTensor } from '../model/gguf/gguf-builder.ts';

/** SmolLM2-135M: 30 layers, hidden 576, 3 key/value heads of 64. */
const LAYERS = 30;
const HIDDEN = 576;
const KV = 3 * 64;

function seededFloats(count: number, seed: number, scale: number): Uint8Array {
  const values = new Float32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    values[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return new Uint8Array(values.buffer);
}

/** Writes the adapter (rank `rank`, on attn_q and attn_v of every layer) to `path`. */
export function writeSmolLm2LoraAdapter(path: string, { rank = 4, scale = 0.08, seed = 7 } = {}): void {
  const tensors: TestTensor[] = [];
  for (let layer = 0; layer < LAYERS; layer++) {
    for (const [name, out] of [
      ['attn_q', HIDDEN],
      ['attn_v', KV],
    ] as const) {
      const base = `blk.${layer}.${name}.weight`;
      tensors.push(
        {
          name: `${base}.lora_a`,
          dims: [HIDDEN, rank],
          type: GgmlType.F32,
          data: seededFloats(HIDDEN * rank, seed + layer * 2, scale),
        },
        {
          name: `${base}.lora_b`,
          dims: [rank, out],
          type: GgmlType.F32,
          data: seededFloats(rank * out, seed + layer * 2 + 1, scale),
        },
      );
    }
  }
  const bytes = buildGguf({
    metadata: {
      'general.architecture': { type: GgufValueType.STRING, value: 'llama' },
      'general.type': { type: GgufValueType.STRING, value: 'adapter' },
      'adapter.type': { type: GgufValueType.STRING, value: 'lora' },
      'adapter.lora.alpha': { type: GgufValueType.FLOAT32, value: rank },
    },
    tensors,
  });
  writeFileSync(path, bytes);
}

/**
 * A LoRA adapter for the Llama GGUF at `basePath` (rank `rank` on q_proj and v_proj of every layer,
 * seeded random weights), written by the product's adapter writer (`loraGgufContent`): any base,
 * the built-in model's converted GGUF as well as SmolLM2.
 */
export async function writeRandomLoraAdapter(
  basePath: string,
  out: string,
  { rank = 4, scale = 0.08, seed = 7 } = {},
): Promise<void> {
  const config = llamaConfigFromGguf(await inspectGguf(basePath), basePath);
  const headDim = config.head_dim ?? config.hidden_size / config.num_attention_heads;
  const modules: LoraModuleWeights[] = [];
  let n = 0;
  for (let layer = 0; layer < config.num_hidden_layers; layer++) {
    for (const [name, outputs] of [
      ['q_proj', config.num_attention_heads * headDim],
      ['v_proj', kvHeadsOf(config) * headDim],
    ] as const) {
      const floats = (count: number) => new Float32Array(seededFloats(count, seed + n++, scale).buffer);
      modules.push({
        module: `model.layers.${layer}.self_attn.${name}`,
        a: { shape: [rank, config.hidden_size], data: floats(rank * config.hidden_size) },
        b: { shape: [outputs, rank], data: floats(outputs * rank) },
        scale: 1,
      });
    }
  }
  const { metadata, tensors } = loraGgufContent(config, modules, `random-lora-${seed}`);
  await writeGguf(out, metadata, tensors);
}
