/**
 * The built-in model: `models/base` ships inside the package, so the default policy spec works both
 * in a clone (from the repository root) and where `corgi-live` is installed as a dependency.
 */
import { existsSync } from 'node:fs';
import { basename, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The spec that names the built-in model. @default "models/base" */
export const BUILTIN_MODEL_SPEC = 'models/base';

/** The package's own copy of the built-in model (src/ and dist/ both sit one level below the root). */
export const BUILTIN_MODEL_DIR = fileURLToPath(new URL('../../models/base', import.meta.url));

/**
 * A checkpoint directory spec as an absolute path: relative to the working directory, except that
 * `models/base` falls back to the package's copy when the working directory has none.
 */
export function resolveCheckpointDir(spec: string): string {
  const local = resolve(spec);
  if (normalize(spec).replace(/[/\\]+$/, '') !== normalize(BUILTIN_MODEL_SPEC)) return local;
  return existsSync(join(local, 'config.json')) ? local : BUILTIN_MODEL_DIR;
}

/** A local model's version name: its directory's name, or its file's without `.gguf`. */
export function modelVersionName(path: string): string {
  return basename(path).replace(/\.gguf$/i, '');
}
