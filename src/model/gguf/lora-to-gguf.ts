/**
 * PEFT LoRA adapters as llama.cpp adapter GGUFs (what `convert_lora_to_gguf.py` writes, what
 * `llama_adapter_lora_init` and node-llama-cpp's `lora` context option load): `general.type =
 * "adapter"`, `adapter.type = "lora"`, `adapter.lora.alpha`, and per adapted projection
 * `<base tensor>.lora_a` (PEFT's A [r, in], GGUF dims [in, r]) and `.lora_b` (B [out, r], dims
 * [r, out]). llama.cpp scales B·A by alpha / r, r read from lora_a, so alpha here is our scale · r
 * (PEFT's lora_alpha, or its rank-stabilized equivalent). B's rows of q_proj and k_proj are permuted
 * as the base weights are, since llama.cpp adds B·A·x to the permuted projection.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kvHeadsOf, type LlamaConfig, parseLlamaConfig } from '../config.ts';
import type { LlamaModel } from '../llama.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, LORA_TARGET_MODULES } from '../lora.ts';
import { parseSafetensors } from '../safetensors.ts';
import { GgmlType } from './ggml-types.ts';
import { ggufTensorName, permuteRopeRows, ropePermutedHeads } from './llama-tensor-names.ts';
import { type GgufTensorInput, GgufWriteError, type GgufWriteValue, gguf, writeGguf } from './writer.ts';

/** One adapted projection: HF module name, A [r, in], B [out, r], and the scale B·A is added with. */
export interface LoraModuleWeights {
  module: string;
  a: { shape: number[]; data: Float32Array };
  b: { shape: number[]; data: Float32Array };
  scale: number;
}

export interface WriteLoraAdapterGgufOptions {
  /** The base model's config (head counts for the q/k permutation), when `source` is a directory without config.json. */
  baseConfig?: LlamaConfig;
  /** `general.name`. @default 'corgi-lora' */
  name?: string;
}

/** The adapter GGUF's metadata and tensors for adapters over a base with `config`. */
export function loraGgufContent(
  config: LlamaConfig,
  modules: readonly LoraModuleWeights[],
  name = 'corgi-lora',
): { metadata: Map<string, GgufWriteValue>; tensors: GgufTensorInput[] } {
  if (modules.length === 0) throw new GgufWriteError('adapter: no LoRA modules to write');
  const r = modules[0]!.a.shape[0]!;
  const scale = modules[0]!.scale;
  const tensors: GgufTensorInput[] = [];
  // Layer by layer, projections in PEFT's order: the same adapter gives the same bytes from any source.
  const rank = (module: string) => {
    const layer = Number(/\.layers\.(\d+)\./.exec(module)?.[1] ?? -1);
    return layer * 100 + LORA_TARGET_MODULES.findIndex((short) => module.endsWith(`.${short}`));
  };
  for (const m of [...modules].sort((x, y) => rank(x.module) - rank(y.module))) {
    if (m.a.shape[0] !== r || Math.abs(m.scale - scale) > 1e-9 * Math.abs(scale))
      throw new GgufWriteError(
        `adapter ${m.module}: rank ${m.a.shape[0]} scale ${m.scale} differ from ${r} / ${scale}: llama.cpp adapters have one alpha`,
      );
    const base = ggufTensorName(`${m.module}.weight`);
    if (!base) throw new GgufWriteError(`adapter ${m.module}: no llama.cpp tensor for this module`);
    const heads = ropePermutedHeads(`${m.module}.weight`, config.num_attention_heads, kvHeadsOf(config));
    const b = heads === undefined ? m.b.data : permuteRopeRows(m.b.data, heads, m.b.shape[1]!);
    tensors.push({ name: `${base}.lora_a`, dims: [m.a.shape[1]!, r], type: GgmlType.F32, data: m.a.data });
    tensors.push({ name: `${base}.lora_b`, dims: [r, m.b.shape[0]!], type: GgmlType.F32, data: b });
  }
  const metadata = new Map<string, GgufWriteValue>([
    ['general.architecture', gguf.str('llama')],
    ['general.type', gguf.str('adapter')],
    ['general.name', gguf.str(name)],
    ['adapter.type', gguf.str('lora')],
    ['adapter.lora.alpha', gguf.f32(scale * r)],
  ]);
  return { metadata, tensors };
}

/** The adapters attached to a model (`attachLora`, `loadLoraAdapter`). */
export function loraModulesOf(model: LlamaModel): LoraModuleWeights[] {
  return [...model.adapters].map(([module, { a, b, scale }]) => ({
    module,
    a: { shape: [...a.shape], data: a.dataSync() as Float32Array },
    b: { shape: [...b.shape], data: b.dataSync() as Float32Array },
    scale,
  }));
}

/** A PEFT adapter directory's modules, read without building a model. */
async function loraModulesFromDir(dir: string): Promise<LoraModuleWeights[]> {
  for (const file of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE])
    if (!existsSync(join(dir, file))) throw new GgufWriteError(`LoRA adapter ${dir}: no ${file}`);
  const json = JSON.parse(await readFile(join(dir, ADAPTER_CONFIG_FILE), 'utf8')) as {
    r?: unknown;
    lora_alpha?: unknown;
    use_rslora?: unknown;
  };
  if (typeof json.r !== 'number' || typeof json.lora_alpha !== 'number')
    throw new GgufWriteError(`LoRA adapter ${dir}: ${ADAPTER_CONFIG_FILE} lacks numeric r and lora_alpha`);
  const scale = json.use_rslora === true ? json.lora_alpha / Math.sqrt(json.r) : json.lora_alpha / json.r;
  const { tensors } = parseSafetensors(await readFile(join(dir, ADAPTER_WEIGHTS_FILE)), ADAPTER_WEIGHTS_FILE);
  const byModule = new Map<string, Partial<LoraModuleWeights>>();
  for (const [name, t] of tensors) {
    const match = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/.exec(name);
    if (!match) throw new GgufWriteError(`LoRA adapter ${dir}: unexpected tensor ${name}`);
    const entry = byModule.get(match[1]!) ?? { module: match[1]!, scale };
    entry[match[2] === 'A' ? 'a' : 'b'] = { shape: t.shape, data: t.data };
    byModule.set(match[1]!, entry);
  }
  return [...byModule.values()].map((m) => {
    if (!m.a || !m.b) throw new GgufWriteError(`LoRA adapter ${dir}: ${m.module} lacks lora_A or lora_B`);
    return m as LoraModuleWeights;
  });
}

/**
 * Writes the LoRA adapter of `source` (a model with adapters attached, or a PEFT adapter directory)
 * as a llama.cpp adapter GGUF at `out` (atomically).
 * @throws GgufWriteError when there is no adapter, or no base config for a directory
 */
export async function writeLoraAdapterGguf(
  source: string | LlamaModel,
  out: string,
  options: WriteLoraAdapterGgufOptions = {},
): Promise<void> {
  let config = options.baseConfig;
  let modules: LoraModuleWeights[];
  if (typeof source === 'string') {
    modules = await loraModulesFromDir(source);
    if (!config && existsSync(join(source, 'config.json')))
      config = parseLlamaConfig(JSON.parse(await readFile(join(source, 'config.json'), 'utf8')));
    if (!config)
      throw new GgufWriteError(
        `LoRA adapter ${source}: no config.json beside it; pass baseConfig (the q/k permutation needs the head counts)`,
      );
  } else {
    modules = loraModulesOf(source);
    config ??= source.config;
  }
  const { metadata, tensors } = loraGgufContent(config, modules, options.name);
  await writeGguf(out, metadata, tensors);
}
