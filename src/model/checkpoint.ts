/**
 * Checkpoints in Hugging Face layout: a directory with `config.json` (LlamaConfig names) and
 * `model.safetensors` (HF tensor names), loadable by `LlamaForCausalLM.from_pretrained` and loaded
 * here the way `from_pretrained` does it: an explicit table of expected names (llama.ts
 * `llamaParameterShapes`), every shape asserted, unexpected and missing tensors refused by name.
 * Nothing is transposed: HF stores Linear weights as [out, in] and so does the model.
 *
 * Saving is atomic: everything is written into a temporary directory beside the target, each file
 * fsynced, a `checksums.sha256` (sha256sum format: `sha256sum -c checksums.sha256` verifies it)
 * written last, then the directory is renamed into place. Loading verifies the checksums when the
 * file is there (checkpoints we wrote); checkpoints from elsewhere have none, and then the
 * safetensors header checks catch truncation.
 */

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CorgiError } from '../common/errors.ts';
import { ConfigError, type LlamaConfig, parseLlamaConfig, toConfigJson } from './config.ts';
import { LlamaModel, llamaParameterShapes } from './llama.ts';
import { type FloatTensor, parseSafetensors, SafetensorsError, serializeSafetensors } from './safetensors.ts';

/** A checkpoint that cannot be loaded (or saved), with the directory and the reason. */
export class CheckpointError extends CorgiError {
  constructor(
    readonly dir: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super('invalid_checkpoint', `checkpoint ${dir}: ${reason}`, options);
  }
}

export const CHECKSUM_FILE = 'checksums.sha256';

/**
 * The names `saveCheckpoint` gives a checkpoint before it is in place: `.<name>.tmp-<pid>-<hex>` while
 * being written, `.<name>.old-<pid>-<hex>` for the one it replaces. A directory named so is what a
 * process killed mid-save left behind: possibly complete, possibly not, never meant to be used.
 */
const UNFINISHED_NAME = /^\.(.+)\.(tmp|old)-\d+-[0-9a-f]{8}$/;

/**
 * Why `dir` must not be used as a checkpoint because `saveCheckpoint` never finished it (a leftover
 * of a killed writer), or null. Checked by name: a writer killed after the last fsync leaves a
 * temporary directory whose files all verify, yet it was never renamed into place.
 */
export function unfinishedCheckpointReason(dir: string): string | null {
  const match = UNFINISHED_NAME.exec(basename(resolve(dir)));
  if (!match) return null;
  return match[2] === 'tmp'
    ? `an unfinished checkpoint (the temporary directory of a save of "${match[1]}" that never completed)`
    : `a checkpoint set aside while "${match[1]}" was being replaced, not a checkpoint in place`;
}

/**
 * Buffers that HF's own loader ignores when a checkpoint carries them (`_keys_to_ignore_on_load_unexpected`
 * in LlamaPreTrainedModel): the RoPE frequencies some older conversions saved per layer.
 */
const IGNORED_TENSORS = [/^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/];

export interface LoadedCheckpoint {
  config: LlamaConfig;
  weights: Map<string, tf.Tensor>;
}

/** Loads a checkpoint directory (or a Llama `.gguf` file) into a model. @throws CheckpointError */
export async function loadCheckpoint(dir: string): Promise<LlamaModel> {
  const { config, weights } = await loadCheckpointWeights(dir);
  return new LlamaModel(config, weights);
}

/**
 * Reads and checks a checkpoint's config and weights without building a model. A path to a `.gguf`
 * file loads that file (dequantized, see src/model/gguf/gguf-to-llama.ts). @throws CheckpointError
 */
export async function loadCheckpointWeights(dir: string): Promise<LoadedCheckpoint> {
  const fail = (reason: string, cause?: unknown): never => {
    throw new CheckpointError(dir, reason, { cause });
  };
  if (!existsSync(dir)) fail(dir.endsWith('.gguf') ? 'file does not exist' : 'directory does not exist');
  if (dir.endsWith('.gguf') && (await stat(dir)).isFile()) {
    // Imported here: the GGUF loader imports this module (CheckpointError).
    const { loadGgufWeights } = await import('./gguf/gguf-to-llama.ts');
    const { GgufError } = await import('./gguf/errors.ts');
    try {
      const { config, weights } = await loadGgufWeights(dir);
      return { config, weights };
    } catch (error) {
      if (GgufError.isInstance(error)) return fail(error.message, error);
      throw error;
    }
  }
  const unfinished = unfinishedCheckpointReason(dir);
  if (unfinished) fail(unfinished);
  await verifyChecksums(dir);

  let config: LlamaConfig;
  try {
    config = parseLlamaConfig(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')));
  } catch (error) {
    if (ConfigError.isInstance(error)) return fail(error.message, error);
    return fail(`config.json: ${(error as Error).message}`, error);
  }

  const tensors = new Map<string, FloatTensor>();
  for (const file of await weightFiles(dir)) {
    let parsed: ReturnType<typeof parseSafetensors>;
    try {
      parsed = parseSafetensors(await readFile(join(dir, file)), file);
    } catch (error) {
      if (SafetensorsError.isInstance(error)) return fail(error.message, error);
      return fail(`${file}: ${(error as Error).message}`, error);
    }
    for (const [name, t] of parsed.tensors) {
      if (tensors.has(name)) fail(`tensor ${name} appears in more than one weight file`);
      tensors.set(name, t);
    }
  }

  const expected = llamaParameterShapes(config);
  if (config.tie_word_embeddings && tensors.has('lm_head.weight')) {
    // Some exporters write the tied head too; accept it only if it really is the embedding.
    const head = tensors.get('lm_head.weight')!.data;
    const embed = tensors.get('model.embed_tokens.weight')?.data;
    if (!embed || head.length !== embed.length || head.some((v, i) => v !== embed[i])) {
      fail('config.tie_word_embeddings is true but lm_head.weight differs from model.embed_tokens.weight');
    }
    tensors.delete('lm_head.weight');
  }
  for (const name of [...tensors.keys()]) {
    if (IGNORED_TENSORS.some((pattern) => pattern.test(name))) tensors.delete(name);
  }
  const unexpected = [...tensors.keys()].filter((name) => !expected.has(name));
  const missing = [...expected.keys()].filter((name) => !tensors.has(name));
  if (unexpected.length > 0 || missing.length > 0) {
    const parts = [];
    if (missing.length > 0) parts.push(`${missing.length} missing tensor(s): ${missing.join(', ')}`);
    if (unexpected.length > 0)
      parts.push(`${unexpected.length} unexpected tensor(s): ${unexpected.join(', ')}`);
    fail(parts.join('; '));
  }
  const wrong: string[] = [];
  for (const [name, shape] of expected) {
    const got = tensors.get(name)!.shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      wrong.push(`${name} is [${got}], expected [${shape}]`);
    }
  }
  if (wrong.length > 0) fail(`shape mismatch: ${wrong.join('; ')}`);

  const weights = new Map<string, tf.Tensor>();
  for (const [name, shape] of expected)
    weights.set(name, tf.tensor(tensors.get(name)!.data, shape, 'float32'));
  return { config, weights };
}

/** `model.safetensors`, or the shards listed in `model.safetensors.index.json` (larger HF checkpoints). */
async function weightFiles(dir: string): Promise<string[]> {
  if (existsSync(join(dir, 'model.safetensors'))) return ['model.safetensors'];
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (existsSync(indexPath)) {
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: Record<string, string> };
    const files = [...new Set(Object.values(index.weight_map ?? {}))].sort();
    const absent = files.filter((f) => !existsSync(join(dir, f)));
    if (absent.length > 0) throw new CheckpointError(dir, `missing weight shard(s): ${absent.join(', ')}`);
    return files;
  }
  throw new CheckpointError(dir, 'no model.safetensors (or model.safetensors.index.json)');
}

/** Checks every file listed in `checksums.sha256`, if the checkpoint has one. @throws CheckpointError */
export async function verifyChecksums(dir: string): Promise<void> {
  const listPath = join(dir, CHECKSUM_FILE);
  if (!existsSync(listPath)) return;
  const lines = (await readFile(listPath, 'utf8')).split('\n').filter((l) => l.trim() !== '');
  for (const line of lines) {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!match) throw new CheckpointError(dir, `${CHECKSUM_FILE}: malformed line "${line}"`);
    const [, want, file] = match as unknown as [string, string, string];
    const path = join(dir, file);
    if (!existsSync(path))
      throw new CheckpointError(
        dir,
        `${file} is listed in ${CHECKSUM_FILE} but missing (partial checkpoint?)`,
      );
    const got = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
    if (got !== want) {
      throw new CheckpointError(
        dir,
        `${file} is corrupt: sha256 ${got.slice(0, 12)}…, expected ${want.slice(0, 12)}…`,
      );
    }
  }
}

export interface SaveCheckpointOptions {
  /** More files to write into the checkpoint (`tokenizer.json`, `generation_config.json`, ...). */
  files?: Record<string, string | Uint8Array>;
  /** Replace an existing directory (moved aside, then removed after the rename). @default false */
  overwrite?: boolean;
}

/**
 * Writes `model` to `dir` atomically: a reader sees either no directory (or the previous one) or the
 * complete checkpoint, never a partial one.
 */
export async function saveCheckpoint(
  model: LlamaModel,
  dir: string,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  const tensors = new Map<string, FloatTensor>();
  for (const [name, v] of model.params)
    tensors.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
  await writeCheckpointFiles(
    dir,
    {
      'config.json': `${JSON.stringify(toConfigJson(model.config), null, 2)}\n`,
      'model.safetensors': serializeSafetensors(tensors),
      ...options.files,
    },
    options,
  );
}

/**
 * Writes `files` as the directory `dir`, atomically and with a `checksums.sha256`, as
 * `saveCheckpoint` writes a checkpoint: for checkpoints without base weights (an adapter on a
 * GGUF base).
 */
export async function writeCheckpointFiles(
  dir: string,
  files: Record<string, string | Uint8Array>,
  options: Pick<SaveCheckpointOptions, 'overwrite'> = {},
): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  if (existsSync(target) && !options.overwrite) {
    throw new CheckpointError(dir, 'already exists (pass overwrite: true to replace it)');
  }
  await mkdir(parent, { recursive: true });
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const temp = join(parent, `.${basename(target)}.tmp-${suffix}`);
  await mkdir(temp);
  try {
    const sums: string[] = [];
    for (const [name, content] of Object.entries(files)) {
      if (name.includes('/') || name === CHECKSUM_FILE)
        throw new CheckpointError(dir, `cannot write a file named ${name}`);
      await writeDurably(join(temp, name), content);
      sums.push(`${createHash('sha256').update(content).digest('hex')}  ${name}`);
    }
    await writeDurably(join(temp, CHECKSUM_FILE), `${sums.join('\n')}\n`);
    await fsyncPath(temp);

    let old: string | null = null;
    if (existsSync(target)) {
      old = join(parent, `.${basename(target)}.old-${suffix}`);
      await rename(target, old);
    }
    await rename(temp, target);
    await fsyncPath(parent);
    if (old) await rm(old, { recursive: true, force: true });
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

async function writeDurably(path: string, content: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync a directory so the entries (new files, a rename) survive a crash. */
async function fsyncPath(path: string): Promise<void> {
  if (!(await stat(path)).isDirectory()) return;
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Files that make up a checkpoint when it has no `checksums.sha256` (one from elsewhere). */
const CHECKPOINT_FILE =
  /^(config|generation_config|tokenizer|tokenizer_config|adapter_config|manifest)\.json$|\.safetensors(\.index\.json)?$|\.gguf$/;

/**
 * An identity for a checkpoint's contents, stored with its version so a directory replaced after
 * registration is noticed: the sha256 of its `checksums.sha256` (which lists every file's sha256,
 * above), or for a checkpoint without one (a store model, a download), of its files' own sha256s,
 * each read as a stream (a GGUF may be gigabytes).
 */
export async function checkpointDigest(dir: string): Promise<string> {
  const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
  // A single-file model (a GGUF named directly) is identified by its own contents.
  if ((await stat(dir)).isFile()) return `sha256:${await sha256OfFile(dir)}`;
  const list = join(dir, CHECKSUM_FILE);
  if (existsSync(list)) return `sha256:${sha256(await readFile(list))}`;
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((entry) => entry.isFile() && CHECKPOINT_FILE.test(entry.name))
    .map((entry) => entry.name)
    .sort();
  const lines: string[] = [];
  for (const name of names) lines.push(`${await sha256OfFile(join(dir, name))}  ${name}\n`);
  return `sha256:${sha256(lines.join(''))}`;
}

/** The hex sha256 of a file, read as a stream. */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
