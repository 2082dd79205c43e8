/**
 * Adapter checkpoints on a GGUF base: a directory with the LoRA adapter (PEFT files and llama.cpp's
 * adapter GGUF) and `base_model.json`, which names the base by its store name and the sha256 of its
 * GGUF (and where the file was, for a base outside the store). The base itself is never copied.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { CheckpointError, sha256OfFile } from '../model/checkpoint.ts';
import { MANIFEST_FILE, manifestSchema, modelDir } from '../model/store/manifest.ts';

export const BASE_MODEL_FILE = 'base_model.json';
/** The llama.cpp adapter GGUF in an adapter checkpoint. */
export const ADAPTER_GGUF_FILE = 'adapter.gguf';

export const baseModelRefSchema = z.object({
  /** The store name (`corgi models`), or null for a GGUF named by path. */
  name: z.string().nullable(),
  /** sha256 of the base GGUF. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The base GGUF's absolute path when the adapter was trained. */
  path: z.string(),
});
export type BaseModelRef = z.infer<typeof baseModelRefSchema>;

/** Whether `dir` is an adapter checkpoint on a GGUF base. */
export function isAdapterCheckpoint(dir: string): boolean {
  return existsSync(join(dir, BASE_MODEL_FILE));
}

/** Reads `base_model.json`. @throws CheckpointError naming the file and the field */
export function readBaseModelRef(dir: string): BaseModelRef {
  const path = join(dir, BASE_MODEL_FILE);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CheckpointError(dir, `${BASE_MODEL_FILE}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = baseModelRefSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CheckpointError(
      dir,
      `${BASE_MODEL_FILE}: ${issue.path.join('.') || 'value'}: ${issue.message}`,
    );
  }
  return parsed.data;
}

/**
 * The base GGUF of a reference: the store model of that name when its manifest's sha256 matches,
 * else the recorded path when that file's sha256 matches.
 * @throws CheckpointError saying what was found instead
 */
export async function resolveBaseModel(
  ref: BaseModelRef,
  dataDir: string,
  dir = '(adapter)',
): Promise<string> {
  const tried: string[] = [];
  if (ref.name !== null) {
    const storeDir = modelDir(dataDir, ref.name);
    const manifestPath = join(storeDir, MANIFEST_FILE);
    if (existsSync(manifestPath)) {
      const manifest = manifestSchema.safeParse(JSON.parse(readFileSync(manifestPath, 'utf8')));
      if (manifest.success && manifest.data.format === 'gguf' && manifest.data.sha256 === ref.sha256)
        return join(storeDir, manifest.data.file);
      tried.push(
        `the store's ${ref.name} has sha256 ${manifest.success ? manifest.data.sha256.slice(0, 12) : 'unreadable'}…`,
      );
    } else tried.push(`${ref.name} is not in the store at ${resolve(dataDir)}`);
  }
  if (existsSync(ref.path)) {
    const sha256 = await sha256OfFile(ref.path);
    if (sha256 === ref.sha256) return ref.path;
    tried.push(`${ref.path} has sha256 ${sha256.slice(0, 12)}…`);
  } else tried.push(`${ref.path} does not exist`);
  throw new CheckpointError(
    dir,
    `base model ${ref.name ?? ref.path} (sha256 ${ref.sha256.slice(0, 12)}…) not found: ${tried.join('; ')}`,
  );
}
