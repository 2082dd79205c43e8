/**
 * `importModel`: a GGUF file or a Hugging Face Llama directory already on disk, copied into the
 * store (hashed as it is copied, checked, then renamed into place with a manifest).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { checkGgufFile } from './gguf-check.ts';
import { appendHashed } from './hashed-file.ts';
import {
  checkHfDirectory,
  HF_OPTIONAL_FILES,
  HF_REQUIRED_FILES,
  hfDirectoryManifest,
} from './hf-directory.ts';
import { checkNotInstalled, commitStaging, prepareStaging } from './install.ts';
import { checkModelName, type ModelFileEntry, type ModelManifest } from './manifest.ts';
import { ModelStoreError } from './model-store-error.ts';

export interface ImportOptions {
  /** The store name. */
  name: string;
  /** The store's root (`CORGI_DATA_DIR`). */
  dataDir: string;
  /** Replace an installed model of the same name. @default false */
  force?: boolean;
}

export interface ImportResult {
  name: string;
  path: string;
  sha256: string;
  source: string;
  manifest: ModelManifest;
}

async function copyHashed(from: string, to: string): Promise<ModelFileEntry> {
  const hash = createHash('sha256');
  const size = await appendHashed(to, createReadStream(from), { offset: 0, hash });
  return { path: basename(to), size, sha256: hash.digest('hex') };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Imports `path` (a `.gguf` file, or a directory with config.json, model.safetensors and
 * tokenizer.json) as `name`. The source is checked before anything is copied.
 * @throws ModelStoreError `invalid_input` (missing or malformed input, naming it), `already_installed`,
 *   `corrupt_gguf`, `truncated`, `unsupported_quantization`
 */
export async function importModel(
  path: string,
  { name, dataDir, force = false }: ImportOptions,
): Promise<ImportResult> {
  checkModelName(name, '--name');
  const from = resolve(path);
  const info = await stat(from).catch(() => {
    throw new ModelStoreError('invalid_input', `${path}: no such file or directory`);
  });
  await checkNotInstalled(dataDir, name, force);
  const source = `import:${from}`;
  const createdAt = new Date().toISOString();

  if (info.isFile()) {
    if (!from.toLowerCase().endsWith('.gguf')) {
      throw new ModelStoreError(
        'invalid_input',
        `${path}: expected a .gguf file or a Hugging Face model directory`,
      );
    }
    const summary = await checkGgufFile(from);
    const staged = await prepareStaging(dataDir, name);
    const file = await copyHashed(from, join(staged, basename(from)));
    const manifest: ModelManifest = {
      name,
      source,
      sha256: file.sha256,
      size: file.size,
      format: 'gguf',
      file: file.path,
      chatTemplate: summary.chatTemplate,
      parameters: summary.parameters,
      architecture: summary.architecture,
      quantization: summary.quantization,
      createdAt,
    };
    const dir = await commitStaging(dataDir, manifest);
    return { name, path: join(dir, file.path), sha256: file.sha256, source, manifest };
  }

  const summary = await checkHfDirectory(from);
  const staged = await prepareStaging(dataDir, name);
  const files: ModelFileEntry[] = [];
  for (const file of [...HF_REQUIRED_FILES, ...HF_OPTIONAL_FILES]) {
    if (await exists(join(from, file))) files.push(await copyHashed(join(from, file), join(staged, file)));
  }
  const manifest = hfDirectoryManifest({ name, source, files, summary, createdAt });
  const dir = await commitStaging(dataDir, manifest);
  return { name, path: dir, sha256: manifest.sha256, source, manifest };
}
