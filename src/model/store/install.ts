/**
 * Putting a staged model in place: its files and manifest are assembled in
 * `<dataDir>/models/.partial/<name>/ready/` and the directory is renamed to `models/<name>` in one
 * step, so a model is either wholly installed or not at all.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type ModelManifest, modelDir, partialDir, readManifest, writeManifest } from './manifest.ts';
import { ModelStoreError } from './model-store-error.ts';

/** The directory a pull or import assembles a model in. */
export function stagingDir(dataDir: string, name: string): string {
  return join(partialDir(dataDir, name), 'ready');
}

/** @throws ModelStoreError `already_installed` when `name` is installed and `force` is not set */
export async function checkNotInstalled(dataDir: string, name: string, force = false): Promise<void> {
  if (force) return;
  const manifest = await readManifest(dataDir, name);
  if (manifest) {
    throw new ModelStoreError(
      'already_installed',
      `${name} is already installed at ${modelDir(dataDir, name)} (from ${manifest.source}); pass --force to replace it`,
    );
  }
}

/** An empty staging directory for `name`, keeping any partial downloads beside it. */
export async function prepareStaging(dataDir: string, name: string): Promise<string> {
  const dir = stagingDir(dataDir, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * Writes the manifest into the staging directory (the last file) and renames the directory into
 * place, replacing an installed model of that name; then clears `.partial/<name>`.
 */
export async function commitStaging(dataDir: string, manifest: ModelManifest): Promise<string> {
  const staged = stagingDir(dataDir, manifest.name);
  await writeManifest(staged, manifest);
  const target = modelDir(dataDir, manifest.name);
  await mkdir(join(target, '..'), { recursive: true });
  const old = join(partialDir(dataDir, manifest.name), 'replaced');
  await rm(old, { recursive: true, force: true });
  // A directory without a manifest (an install cut before it finished, or a stray copy) is moved aside too.
  try {
    await rename(target, old);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await rename(staged, target);
  await rm(partialDir(dataDir, manifest.name), { recursive: true, force: true });
  return target;
}
