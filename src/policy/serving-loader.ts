/**
 * What a serving process loads for a local policy version: every local model is served by
 * llama.cpp (`LlamaCppPolicy`), whatever form it arrives in.
 *
 * - a `.gguf` file: that model;
 * - a directory holding GGUF files (a store model, or LoRA adapter GGUFs on a configured base):
 *   `llamaCppPolicyLoader`;
 * - an adapter checkpoint (`base_model.json`, adapter-base.ts): its adapter GGUF on the base it names;
 * - a checkpoint directory in Hugging Face layout (the built-in model, a fully fine-tuned model, a
 *   downloaded Llama): written once as a GGUF F32 file into `cacheDir`, keyed by the checkpoint's
 *   digest (so a replaced directory is converted anew), and served with the directory's own
 *   tokenizer, so the ids llama.cpp decodes are the ones the trainer scores.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CheckpointError, checkpointDigest, verifyChecksums } from '../model/checkpoint.ts';
import { convertCheckpointToGguf } from '../model/gguf/checkpoint-to-gguf.ts';
import { selectBackend, selectedBackend } from '../model/tfjs/backend.ts';
import { Tokenizer } from '../model/tokenizer.ts';
import { isAdapterCheckpoint, readBaseModelRef, resolveBaseModel } from './adapter-base.ts';
import { type LlamaCppLoaderOptions, LlamaCppPolicy, llamaCppPolicyLoader } from './llama-cpp-policy.ts';
import { isRemotePolicySpec } from './policy-spec.ts';

export interface ServingLoaderOptions extends LlamaCppLoaderOptions {
  /** Where converted checkpoints are kept. @default `<dataDir>/cache/gguf` */
  cacheDir?: string;
  /**
   * The model store adapter checkpoints name their base in.
   * @default `cacheDir`'s data directory, else `./data` (commands pass $CORGI_DATA_DIR)
   */
  dataDir?: string;
}

/** Loads `path` as the policy `version` on llama.cpp (see the file header). @throws CheckpointError */
export type ServingLoader = (path: string, version: string) => Promise<LlamaCppPolicy>;

/**
 * The loader every local policy goes through: `corgi serve` and its promotions, `corgi eval`,
 * `corgi generate`, `corgi promote`, `CorgiChatModel`. Remote specs are not its business: it refuses them.
 */
export function servingPolicyLoader({
  cacheDir,
  dataDir = cacheDir ? resolve(cacheDir, '..', '..') : resolve('data'),
  ...engine
}: ServingLoaderOptions = {}): ServingLoader {
  const cache = cacheDir ?? join(dataDir, 'cache', 'gguf');
  const fromDirectory = llamaCppPolicyLoader(engine);
  const { baseModelPath: _base, ...spec } = engine;
  return async function loadServingPolicy(path, version) {
    if (isRemotePolicySpec(path)) throw new CheckpointError(path, 'is a remote model, not a local one');
    const target = resolve(path);
    if (!existsSync(target)) throw new CheckpointError(target, 'does not exist');
    if (statSync(target).isFile()) return LlamaCppPolicy.load({ ...spec, modelPath: target, version });
    if (isAdapterCheckpoint(target)) {
      const baseModelPath = await resolveBaseModel(readBaseModelRef(target), dataDir, target);
      return llamaCppPolicyLoader({ ...engine, baseModelPath })(target, version);
    }
    if (readdirSync(target).some((name) => name.endsWith('.gguf'))) return fromDirectory(target, version);
    if (!existsSync(join(target, 'config.json')))
      throw new CheckpointError(target, 'holds no GGUF file and no config.json: not a model');
    const modelPath = await convertedCheckpoint(target, cache);
    return LlamaCppPolicy.load({ ...spec, modelPath, version, tokenizer: Tokenizer.fromFile(target) });
  };
}

/** The GGUF of a checkpoint directory, converted on first use (atomically: the writer renames into place). */
export async function convertedCheckpoint(dir: string, cacheDir: string): Promise<string> {
  const digest = (await checkpointDigest(dir)).replace(/^sha256:/, '');
  const out = join(cacheDir, `${digest}.gguf`);
  if (existsSync(out)) {
    // The digest trusts `checksums.sha256`: a checkpoint corrupted after it was written would be
    // served from an earlier conversion unless its files are checked here (a conversion loads
    // through loadCheckpoint, which checks them itself).
    await verifyChecksums(dir);
    return out;
  }
  await mkdir(cacheDir, { recursive: true });
  // Conversion reads the checkpoint through TensorFlow.js: any backend does, chosen quietly if none is.
  if (selectedBackend() === null) await selectBackend({ log: () => {} });
  await convertCheckpointToGguf(dir, out, { type: 'f32' });
  return out;
}
