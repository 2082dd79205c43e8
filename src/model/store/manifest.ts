/**
 * Where the store keeps things and what `manifest.json` says. A model is installed exactly when
 * `<dataDir>/models/<name>/manifest.json` exists: it is written last, inside a staging directory
 * that is renamed into place in one step.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ModelStoreError } from './model-store-error.ts';

export const MANIFEST_FILE = 'manifest.json';

/** Store names: what `--policy` and `corgi rm` take; a path segment, so no slashes or leading dot. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const fileEntrySchema = z.object({
  path: z.string(),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export const manifestSchema = z.object({
  name: z.string().regex(NAME_PATTERN),
  /** `pypi:<pkg>==<ver>:<member>`, `hf:<repo>@<revision>:<file>` or `import:<absolute path>`. */
  source: z.string(),
  /** Of `file`. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Bytes of `file`. */
  size: z.number().int().nonnegative(),
  format: z.enum(['gguf', 'hf']),
  /** The main file, relative to the model directory: the GGUF, or `model.safetensors`. */
  file: z.string(),
  /** The Jinja chat template the model ships with, or null when it has none. */
  chatTemplate: z.string().nullable(),
  parameters: z.number().int().nonnegative().optional(),
  architecture: z.string().optional(),
  /** The GGUF's dominant tensor type ("Q4_1"), or the safetensors dtype ("BF16"). */
  quantization: z.string().optional(),
  /** Every file of the model (HF directories have several). */
  files: z.array(fileEntrySchema).optional(),
  createdAt: z.string(),
});
export type ModelManifest = z.infer<typeof manifestSchema>;
export type ModelFileEntry = z.infer<typeof fileEntrySchema>;

/** @throws ModelStoreError `invalid_input` naming the field when `name` cannot be a store name */
export function checkModelName(name: string, field = 'name'): string {
  if (!NAME_PATTERN.test(name)) {
    throw new ModelStoreError(
      'invalid_input',
      `${field}: "${name}" is not a store name (letters, digits, '.', '_', '-'; up to 100; not starting with '.' or '-')`,
    );
  }
  return name;
}

/** `<dataDir>/models`. */
export function modelsRoot(dataDir: string): string {
  return join(dataDir, 'models');
}

/** `<dataDir>/models/<name>`: an installed model's directory. */
export function modelDir(dataDir: string, name: string): string {
  return join(modelsRoot(dataDir), checkModelName(name));
}

/** `<dataDir>/models/.partial/<name>`: downloads and staging; never looks installed. */
export function partialDir(dataDir: string, name: string): string {
  return join(modelsRoot(dataDir), '.partial', checkModelName(name));
}

/** The manifest of an installed model, or null when `name` is not installed. */
export async function readManifest(dataDir: string, name: string): Promise<ModelManifest | null> {
  const path = join(modelDir(dataDir, name), MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const parsed = manifestSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new ModelStoreError(
      'invalid_input',
      `${path}: not a model manifest (${parsed.error.issues[0]?.message})`,
    );
  }
  return parsed.data;
}

/** Writes `manifest.json` into `dir` through a temporary file and a rename. */
export async function writeManifest(dir: string, manifest: ModelManifest): Promise<void> {
  const path = join(dir, MANIFEST_FILE);
  await writeFile(`${path}.tmp`, `${JSON.stringify(manifestSchema.parse(manifest), null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}
