/**
 * LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") the way Hugging Face
 * PEFT does it, so adapters move between this code and `peft` unchanged:
 * - a projection W [out, in] gets y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ with A [r, in], B [out, r] and
 *   scale = lora_alpha / r (lora_alpha / √r with `use_rslora`);
 * - initialization as PEFT's default (`init_lora_weights=True`): A kaiming-uniform with a = √5,
 *   i.e. U(−1/√in, 1/√in), and B zero, so a fresh adapter changes nothing;
 * - the base weights are frozen (`trainable = false`) while adapters are attached;
 * - files: `adapter_model.safetensors` with names
 *   `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` [r, in] and
 *   `...lora_B.weight` [out, r], and `adapter_config.json` (peft_type "LORA").
 *
 * The adapters live in `LlamaModel.adapters`, keyed by module name (`model.layers.0.self_attn.q_proj`),
 * where the model's `linear()` picks them up. Not implemented: dropout (only 0), DoRA, bias
 * training, per-layer rank or alpha patterns; adapter files that use them are refused.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { LlamaModel, LoraAdapter } from './llama.ts';
import { type FloatTensor, parseSafetensors, SafetensorsError, serializeSafetensors } from './safetensors.ts';

/** The projections an adapter can target, by PEFT's short names. */
export const LORA_TARGET_MODULES = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;
export type LoraTargetModule = (typeof LORA_TARGET_MODULES)[number];

export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';

export interface LoraConfig {
  /** Rank of the update. The paper used 16. */
  r: number;
  /** PEFT's `lora_alpha`: the update is scaled by alpha / r. */
  alpha: number;
  /** Short names of the projections to adapt in every layer (`['q_proj', 'v_proj']`). */
  targetModules: readonly string[];
  /** Only 0 is implemented (PEFT's default is 0 too). @default 0 */
  dropout?: number;
  /** Seed of A's initialization. @default 0 */
  seed?: number;
  /** Scale by alpha / √r instead of alpha / r (rank-stabilized LoRA). @default false */
  useRslora?: boolean;
  /** Written to `adapter_config.json` as `base_model_name_or_path`. @default null */
  baseModelNameOrPath?: string | null;
}

/** What `attachLora` recorded, for saving. */
const attached = new WeakMap<LlamaModel, LoraConfig>();
let adapterCount = 0;

const SELF_ATTN = new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj']);

/** `model.layers.{i}.self_attn.q_proj` (or `.mlp.gate_proj`) for a short name. */
function modulePath(layer: number, short: string): string {
  return `model.layers.${layer}.${SELF_ATTN.has(short) ? 'self_attn' : 'mlp'}.${short}`;
}

/** PEFT's tensor name for a module's A or B. */
export function peftTensorName(module: string, which: 'A' | 'B'): string {
  return `base_model.model.${module}.lora_${which}.weight`;
}

function scaleOf(config: Pick<LoraConfig, 'r' | 'alpha' | 'useRslora'>): number {
  return config.useRslora ? config.alpha / Math.sqrt(config.r) : config.alpha / config.r;
}

function checkConfig(config: LoraConfig): void {
  if (!Number.isInteger(config.r) || config.r < 1)
    throw new RangeError(`LoRA r must be a positive integer, got ${config.r}`);
  if (!(config.alpha > 0)) throw new RangeError(`LoRA alpha must be positive, got ${config.alpha}`);
  if ((config.dropout ?? 0) !== 0)
    throw new RangeError(`LoRA dropout ${config.dropout} is not implemented (only 0)`);
  if (config.targetModules.length === 0) throw new RangeError('LoRA targetModules is empty');
  for (const name of config.targetModules) {
    if (!(LORA_TARGET_MODULES as readonly string[]).includes(name))
      throw new RangeError(`LoRA target module ${name} is not one of ${LORA_TARGET_MODULES.join(', ')}`);
  }
}

function freezeBase(model: LlamaModel, frozen: boolean): void {
  for (const v of model.params.values()) v.trainable = !frozen;
}

/** [out, in] of a module's base weight. */
function weightShape(model: LlamaModel, module: string): [number, number] | undefined {
  const w = model.params.get(`${module}.weight`);
  return w?.rank === 2 ? (w.shape as [number, number]) : undefined;
}

function addAdapter(model: LlamaModel, module: string, a: tf.Tensor, b: tf.Tensor, scale: number): void {
  model.adapters.set(module, newAdapter(module, a, b, scale, true));
}

function newAdapter(
  module: string,
  a: tf.Tensor,
  b: tf.Tensor,
  scale: number,
  trainable: boolean,
): LoraAdapter {
  const prefix = `lora${adapterCount}`;
  const adapter: LoraAdapter = {
    a: tf.variable(a, trainable, `${prefix}/${peftTensorName(module, 'A')}`),
    b: tf.variable(b, trainable, `${prefix}/${peftTensorName(module, 'B')}`),
    scale,
  };
  tf.dispose([a, b]); // the variables hold their own reference to the data
  return adapter;
}

/**
 * Attaches fresh adapters (A random, B zero) to the target projections of every layer and freezes
 * the base weights. @throws when the model already has adapters or the config is invalid
 */
export function attachLora(model: LlamaModel, config: LoraConfig): void {
  checkConfig(config);
  if (model.adapters.size > 0)
    throw new Error(
      `the model already has ${model.adapters.size} LoRA adapters: merge them first (mergeLora)`,
    );
  const seed = config.seed ?? 0;
  adapterCount++;
  let n = 0;
  for (let i = 0; i < model.config.num_hidden_layers; i++) {
    for (const short of config.targetModules) {
      const module = modulePath(i, short);
      const [out, inputs] = weightShape(model, module)!;
      const bound = 1 / Math.sqrt(inputs); // kaiming_uniform_(a=√5): gain·√(3/fan_in) = 1/√fan_in
      const a = tf.randomUniform([config.r, inputs], -bound, bound, 'float32', seed + n++);
      addAdapter(model, module, a, tf.zeros([out, config.r]), scaleOf(config));
    }
  }
  freezeBase(model, true);
  attached.set(model, { ...config });
}

/** The adapters' variables by PEFT tensor name (what an optimizer trains). */
export function loraParameters(model: LlamaModel): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  for (const [module, { a, b }] of model.adapters) {
    params.set(peftTensorName(module, 'A'), a);
    params.set(peftTensorName(module, 'B'), b);
  }
  return params;
}

/** `adapter_config.json` as PEFT writes it (the fields PEFT needs to load the adapter). */
function adapterConfigJson(config: LoraConfig): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: config.baseModelNameOrPath ?? null,
    r: config.r,
    lora_alpha: config.alpha,
    lora_dropout: config.dropout ?? 0,
    target_modules: [...config.targetModules],
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: config.useRslora ?? false,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    layers_to_transform: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
}

/** The config recorded when the adapters were attached or loaded, if any. */
export function loraConfigOf(model: LlamaModel): LoraConfig | undefined {
  const config = attached.get(model);
  return config && model.adapters.size > 0 ? { ...config } : undefined;
}

/**
 * The two adapter files' contents, for `saveCheckpoint(model, dir, { files })` (atomic with the
 * rest of a checkpoint) or `saveLoraAdapter`. `config` defaults to the one attached.
 */
export function loraAdapterFiles(
  model: LlamaModel,
  config: LoraConfig | undefined = loraConfigOf(model),
): Record<string, string | Uint8Array> {
  if (model.adapters.size === 0) throw new Error('the model has no LoRA adapters to save');
  if (!config) throw new Error('no LoRA config: pass the one the adapters were attached with');
  checkConfig(config);
  for (const [module, { a, scale }] of model.adapters) {
    if (a.shape[0] !== config.r)
      throw new Error(`adapter ${module} has rank ${a.shape[0]}, but the config says r = ${config.r}`);
    if (Math.abs(scale - scaleOf(config)) > 1e-12 * Math.abs(scale))
      throw new Error(`adapter ${module} has scale ${scale}, but the config gives ${scaleOf(config)}`);
  }
  const tensors = new Map<string, FloatTensor>();
  for (const [name, v] of loraParameters(model))
    tensors.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  return {
    [ADAPTER_WEIGHTS_FILE]: serializeSafetensors(tensors),
    [ADAPTER_CONFIG_FILE]: `${JSON.stringify(adapterConfigJson(config), null, 2)}\n`,
  };
}

/**
 * Writes `adapter_model.safetensors` and `adapter_config.json` into `dir` (created if needed), each
 * through a temporary file and a rename, weights first, so a reader never sees a partial file.
 */
export async function saveLoraAdapter(model: LlamaModel, dir: string, config?: LoraConfig): Promise<void> {
  const files = loraAdapterFiles(model, config);
  await mkdir(dir, { recursive: true });
  for (const name of [ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE]) {
    const temp = join(dir, `.${name}.tmp-${process.pid}`);
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(files[name]!);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, join(dir, name));
  }
}

/** The fields of `adapter_config.json` we read; anything that would change the math is checked. */
const adapterConfigSchema = z.looseObject({
  peft_type: z.literal('LORA'),
  r: z.number().int().positive(),
  lora_alpha: z.number().positive(),
  target_modules: z.union([z.array(z.string()), z.string()]),
  lora_dropout: z.number().optional(),
  bias: z.literal('none', { error: 'only bias "none" is implemented' }).optional(),
  fan_in_fan_out: z.literal(false, { error: 'fan_in_fan_out is for GPT-2 Conv1D layers' }).optional(),
  use_rslora: z.boolean().optional(),
  use_dora: z.literal(false, { error: 'DoRA is not implemented' }).optional(),
  rank_pattern: z.record(z.string(), z.unknown()).nullish(),
  alpha_pattern: z.record(z.string(), z.unknown()).nullish(),
  base_model_name_or_path: z.string().nullish(),
  modules_to_save: z.array(z.string()).nullish(),
});

/** Whether `dir` holds adapter files. */
export function hasLoraAdapter(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG_FILE)) || existsSync(join(dir, ADAPTER_WEIGHTS_FILE));
}

/**
 * Loads a PEFT LoRA adapter from `dir` into `model` (which must have none) and freezes the base.
 * Every tensor must name a projection of this model with the right shape; anything else is
 * refused by name. Returns the adapter's config.
 */
export async function loadLoraAdapter(model: LlamaModel, dir: string): Promise<LoraConfig> {
  if (model.adapters.size > 0)
    throw new Error(`LoRA adapter ${dir}: the model already has ${model.adapters.size} adapters`);
  const { config, adapters } = await readLoraAdapter(model, dir, true);
  for (const [module, adapter] of adapters) model.adapters.set(module, adapter);
  freezeBase(model, true);
  attached.set(model, config);
  return config;
}

/**
 * Reads a PEFT LoRA adapter from `dir` for `model`'s projections without attaching it: the
 * variables (trainable or not) keyed by module, for `loadLoraAdapter` or `withAdapters`.
 */
export async function readLoraAdapter(
  model: LlamaModel,
  dir: string,
  trainable = false,
): Promise<{ config: LoraConfig; adapters: Map<string, LoraAdapter> }> {
  const fail = (reason: string): never => {
    throw new Error(`LoRA adapter ${dir}: ${reason}`);
  };
  for (const file of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE])
    if (!existsSync(join(dir, file))) fail(`no ${file}`);

  const parsed = adapterConfigSchema.safeParse(
    JSON.parse(await readFile(join(dir, ADAPTER_CONFIG_FILE), 'utf8')) as unknown,
  );
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return fail(`${ADAPTER_CONFIG_FILE}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const json = parsed.data;
  if (Object.keys(json.rank_pattern ?? {}).length > 0 || Object.keys(json.alpha_pattern ?? {}).length > 0)
    fail('per-module rank_pattern/alpha_pattern is not implemented');
  if ((json.modules_to_save ?? []).length > 0) fail('modules_to_save is not implemented');

  let tensors: Map<string, FloatTensor>;
  try {
    tensors = parseSafetensors(await readFile(join(dir, ADAPTER_WEIGHTS_FILE)), ADAPTER_WEIGHTS_FILE).tensors;
  } catch (error) {
    if (SafetensorsError.isInstance(error)) return fail(error.message);
    throw error;
  }
  // PEFT drops the adapter name (`.default`) when saving; accept it if present anyway.
  const pattern = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/;
  const byModule = new Map<string, { A?: FloatTensor; B?: FloatTensor }>();
  for (const [name, tensor] of tensors) {
    const match = pattern.exec(name);
    if (!match) return fail(`unexpected tensor ${name} (expected base_model.model.<module>.lora_A/B.weight)`);
    const [, module, which] = match as unknown as [string, string, 'A' | 'B'];
    if (!weightShape(model, module) || module.endsWith('embed_tokens'))
      fail(`tensor ${name}: the model has no projection ${module}`);
    const entry = byModule.get(module) ?? {};
    entry[which] = tensor;
    byModule.set(module, entry);
  }
  if (byModule.size === 0) fail(`${ADAPTER_WEIGHTS_FILE} holds no tensors`);
  const r = json.r;
  const wrong: string[] = [];
  for (const [module, { A, B }] of byModule) {
    if (!A) fail(`${peftTensorName(module, 'B')} has no matching lora_A`);
    if (!B) fail(`${peftTensorName(module, 'A')} has no matching lora_B`);
    const [out, inputs] = weightShape(model, module)!;
    const same = (got: number[], want: number[]) =>
      got.length === 2 && got[0] === want[0] && got[1] === want[1];
    if (!same(A!.shape, [r, inputs]))
      wrong.push(`${peftTensorName(module, 'A')} is [${A!.shape}], expected [${r},${inputs}]`);
    if (!same(B!.shape, [out, r]))
      wrong.push(`${peftTensorName(module, 'B')} is [${B!.shape}], expected [${out},${r}]`);
  }
  if (wrong.length > 0) fail(`shape mismatch: ${wrong.join('; ')}`);

  const config: LoraConfig = {
    r,
    alpha: json.lora_alpha,
    targetModules:
      typeof json.target_modules === 'string'
        ? [...new Set([...byModule.keys()].map((m) => m.split('.').pop()!))]
        : json.target_modules,
    dropout: 0, // dropout only acts in training; inference is the same either way
    useRslora: json.use_rslora ?? false,
    baseModelNameOrPath: json.base_model_name_or_path ?? null,
  };
  adapterCount++;
  const scale = scaleOf(config);
  const adapters = new Map<string, LoraAdapter>();
  for (const [module, { A, B }] of byModule) {
    adapters.set(
      module,
      newAdapter(module, tf.tensor(A!.data, A!.shape), tf.tensor(B!.data, B!.shape), scale, trainable),
    );
  }
  return { config, adapters };
}

/**
 * Runs `fn` with `adapters` in place of the model's own (an empty map: the weights alone), then puts
 * the model's back. Scores the KL reference of a LoRA run on the frozen weights it already holds
 * instead of a second copy of them (what PEFT's `disable_adapter` does for TRL).
 */
export function withAdapters<T>(
  model: LlamaModel,
  adapters: ReadonlyMap<string, LoraAdapter>,
  fn: () => T,
): T {
  const own = [...model.adapters];
  model.adapters.clear();
  for (const [module, adapter] of adapters) model.adapters.set(module, adapter);
  try {
    return fn();
  } finally {
    model.adapters.clear();
    for (const [module, adapter] of own) model.adapters.set(module, adapter);
  }
}

/**
 * Folds every adapter into its base weight (W ← W + scale·B·A), removes the adapters and makes the
 * base trainable again. Generation then costs what the base model costs.
 */
export function mergeLora(model: LlamaModel): void {
  for (const [module, { a, b, scale }] of model.adapters) {
    const w = model.params.get(`${module}.weight`)!;
    tf.tidy(() => w.assign(tf.add(w, tf.mul(tf.matMul(b, a), scale)))); // [out, r]·[r, in]
    tf.dispose([a, b]);
  }
  model.adapters.clear();
  attached.delete(model);
  freezeBase(model, false);
}

/**
 * Writes `source`'s effective weights into `target` (same config, no adapters): each base weight,
 * with its adapter folded in where `source` has one (W + scale·B·A), leaving `source` as it is.
 * The trainer samples rollouts from such a merged copy, which decodes at the base model's cost,
 * while it keeps training the adapters.
 */
export function copyMergedWeights(target: LlamaModel, source: LlamaModel): void {
  if (target.adapters.size > 0) throw new Error('copyMergedWeights: the target must have no adapters');
  for (const [name, w] of source.params) {
    const t = target.params.get(name);
    if (!t || t.shape.join() !== w.shape.join())
      throw new Error(`copyMergedWeights: the target has no weight ${name} of shape [${w.shape}]`);
    const adapter = name.endsWith('.weight')
      ? source.adapters.get(name.slice(0, -'.weight'.length))
      : undefined;
    tf.tidy(() => t.assign(adapter ? tf.add(w, tf.mul(tf.matMul(adapter.b, adapter.a), adapter.scale)) : w));
  }
}
