/**
 * The trainer's two engines on one model: TensorFlow.js holds the weights being trained, llama.cpp
 * decodes the rollouts. Each step the model under training becomes a llama.cpp policy again:
 *
 * - LoRA: its adapters are written as a llama.cpp adapter GGUF and applied in a new context on the
 *   loaded base (`LlamaCppPolicy`'s adapters, as a promotion's hot swap does);
 * - full fine-tuning (tiny models): its weights are written as a GGUF F32 file and loaded.
 *
 * Both engines start from the same weights (`resolveTrainingBase`): a GGUF file or store model is
 * what llama.cpp decodes and what TensorFlow.js dequantizes; a checkpoint directory is what
 * TensorFlow.js loads and, converted once to GGUF F32 (serving-loader.ts's cache), what llama.cpp
 * decodes. Prompt ids come from one tokenizer: the llama.cpp policy's `encodePrompt`, which the
 * trainer's samples use too.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CheckpointError, sha256OfFile } from '../../model/checkpoint.ts';
import { writeLlamaGguf } from '../../model/gguf/checkpoint-to-gguf.ts';
import { writeLoraAdapterGguf } from '../../model/gguf/lora-to-gguf.ts';
import type { LlamaModel } from '../../model/llama.ts';
import { MANIFEST_FILE, type ModelManifest } from '../../model/store/manifest.ts';
import { resolvePolicySpec } from '../../model/store/resolve-policy-spec.ts';
import { Tokenizer } from '../../model/tokenizer.ts';
import {
  type BaseModelRef,
  isAdapterCheckpoint,
  readBaseModelRef,
  resolveBaseModel,
} from '../../policy/adapter-base.ts';
import { checkGgufFile } from '../../policy/gguf-file.ts';
import { LlamaCppPolicy, tokenizerForGguf } from '../../policy/llama-cpp-policy.ts';
import { convertedCheckpoint } from '../../policy/serving-loader.ts';

/** Where a training run's weights come from, for each engine. */
export interface TrainingBase {
  /** What TensorFlow.js loads: a checkpoint directory (its adapter merged in) or a GGUF file. */
  weights: string;
  /** The GGUF llama.cpp decodes from: `weights` itself, or the checkpoint converted to F32. */
  gguf: string;
  /** The tokenizer both engines' ids come from. */
  tokenizer: Tokenizer;
  /** An adapter checkpoint on the GGUF base: its adapter is trained further. */
  adapterDir: string | null;
  /** The GGUF base by store name and sha256 (what an adapter checkpoint records), or null for a checkpoint directory. */
  ref: BaseModelRef | null;
}

/**
 * Resolves a policy spec for training: a store name, a GGUF file, a store directory, a checkpoint
 * directory, or an adapter checkpoint (`base_model.json`).
 * @throws CheckpointError / ModelStoreError naming the spec
 */
export async function resolveTrainingBase(
  spec: string,
  { dataDir, cacheDir = join(dataDir, 'cache', 'gguf') }: { dataDir: string; cacheDir?: string },
): Promise<TrainingBase> {
  const asPath = resolve(spec);
  if (isAdapterCheckpoint(asPath)) {
    const ref = readBaseModelRef(asPath);
    const gguf = await resolveBaseModel(ref, dataDir, asPath);
    return { weights: gguf, gguf, tokenizer: await ggufTokenizer(gguf), adapterDir: asPath, ref };
  }
  const resolved = resolvePolicySpec(spec, { dataDir });
  if (resolved.kind === 'remote')
    throw new CheckpointError(spec, 'is a remote model: training needs local weights');
  if (resolved.kind === 'checkpoint') {
    const gguf = await convertedCheckpoint(resolved.dir, cacheDir);
    return {
      weights: resolved.dir,
      gguf,
      tokenizer: Tokenizer.fromFile(resolved.dir),
      adapterDir: null,
      ref: null,
    };
  }
  // A GGUF named by its path inside the store is still that store model.
  const manifest = resolved.manifest ?? storeManifestOf(resolved.path);
  const ref: BaseModelRef = {
    name: manifest?.name ?? null,
    sha256: manifest?.sha256 ?? (await sha256OfFile(resolved.path)),
    path: resolved.path,
  };
  return {
    weights: resolved.path,
    gguf: resolved.path,
    tokenizer: await ggufTokenizer(resolved.path),
    adapterDir: null,
    ref,
  };
}

/** The manifest of the store model whose main file `path` is, if it is one. */
function storeManifestOf(path: string): ModelManifest | undefined {
  const dir = dirname(path);
  const resolved = existsSync(join(dir, MANIFEST_FILE)) ? resolvePolicySpec(dir, { dataDir: dir }) : null;
  return resolved?.kind === 'gguf' && resolved.path === path ? resolved.manifest : undefined;
}

/** The tokenizer `LlamaCppPolicy` decodes a GGUF with. */
async function ggufTokenizer(path: string): Promise<Tokenizer> {
  return tokenizerForGguf(path, (await checkGgufFile(path)).metadata);
}

export interface LlamaRolloutsOptions {
  /** Where each step's adapter (or model) GGUF is written. */
  dir: string;
  /** Recorded with every attempt. */
  version: string;
  /** Sessions decoding at once. */
  sequences: number;
}

/** The model under training as a llama.cpp policy, renewed after each update (see the file comment). */
export class LlamaRollouts {
  private current: { policy: LlamaCppPolicy; file: string } | null = null;
  private renewals = 0;

  constructor(
    private readonly base: TrainingBase,
    private readonly options: LlamaRolloutsOptions,
  ) {}

  /** The policy decoding now (after `renew`). */
  get policy(): LlamaCppPolicy {
    if (!this.current) throw new Error('LlamaRollouts: renew() first');
    return this.current.policy;
  }

  /** The GGUF of the policy decoding now: the adapter (LoRA) or the model (full fine-tuning). */
  get file(): string {
    if (!this.current) throw new Error('LlamaRollouts: renew() first');
    return this.current.file;
  }

  /** Writes `model` as it is now for llama.cpp and loads it; the previous policy is disposed first. */
  async renew(model: LlamaModel): Promise<LlamaCppPolicy> {
    const lora = model.adapters.size > 0;
    // A new file name each time: node-llama-cpp caches adapters by path for the model's lifetime.
    const file = join(this.options.dir, `${lora ? 'adapter' : 'model'}-${++this.renewals}.gguf`);
    if (lora) await writeLoraAdapterGguf(model, file);
    else await writeLlamaGguf(model, this.base.tokenizer, file);
    // Disposed before the next load: the base is then reloaded, which frees the adapters llama.cpp
    // keeps per loaded model (one per step otherwise; SmolLM2 at r = 16 on every projection is 20 MB).
    await this.dispose();
    const policy = await LlamaCppPolicy.load({
      modelPath: lora ? this.base.gguf : file,
      adapters: lora ? [{ path: file }] : [],
      tokenizer: this.base.tokenizer,
      version: this.options.version,
      sequences: this.options.sequences,
      contextSize: Math.min(2048, model.config.max_position_embeddings),
    });
    this.current = { policy, file };
    return policy;
  }

  async dispose(): Promise<void> {
    const previous = this.current;
    this.current = null;
    if (!previous) return;
    await previous.policy.dispose();
    await rm(previous.file, { force: true });
  }
}

/** `base_model.json`'s content for an adapter trained on `ref`. */
export function baseModelJson(ref: BaseModelRef): string {
  return `${JSON.stringify(ref, null, 2)}\n`;
}

/** The name an adapter's PEFT config records as its base. */
export function baseModelName(ref: BaseModelRef): string {
  return ref.name ?? basename(ref.path);
}
