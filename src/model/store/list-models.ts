/**
 * What the store holds (`corgi models`) and taking a model out of it (`corgi rm`).
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type ModelManifest, modelDir, modelsRoot, partialDir, readManifest } from './manifest.ts';
import { ModelStoreError } from './model-store-error.ts';

export interface InstalledModel {
  manifest: ModelManifest;
  /** The model's directory. */
  dir: string;
  /** The main file: the GGUF, or `model.safetensors`. */
  path: string;
}

/** Every installed model (directories with a manifest), by name; partial pulls are not listed. */
export async function listModels({ dataDir }: { dataDir: string }): Promise<InstalledModel[]> {
  let names: string[];
  try {
    names = await readdir(modelsRoot(dataDir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const models: InstalledModel[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const manifest = await readManifest(dataDir, name).catch(() => null);
    if (!manifest) continue;
    const dir = modelDir(dataDir, name);
    models.push({ manifest, dir, path: join(dir, manifest.file) });
  }
  return models;
}

/**
 * Removes an installed model (and any partial pull of that name). The directory is first renamed
 * aside, so the model stops looking installed at once even if the delete is cut short.
 * @throws ModelStoreError `not_installed`
 */
export async function removeModel(name: string, { dataDir }: { dataDir: string }): Promise<ModelManifest> {
  const manifest = await readManifest(dataDir, name);
  if (!manifest) {
    const installed = (await listModels({ dataDir })).map((model) => model.manifest.name);
    throw new ModelStoreError(
      'not_installed',
      `${name} is not installed; installed: ${installed.length > 0 ? installed.join(', ') : 'none'}`,
    );
  }
  const work = partialDir(dataDir, name);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  await rename(modelDir(dataDir, name), join(work, 'removed'));
  await rm(work, { recursive: true, force: true });
  return manifest;
}
