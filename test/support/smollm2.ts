/**
 * Where tests find the real SmolLM2-135M-Instruct GGUF: `CORGI_SMOLLM2_GGUF`, else the model store
 * (`$CORGI_DATA_DIR/models/smollm2-135m-instruct/*.gguf`). Tests that need it skip, saying why, when
 * it is absent (CI pulls it with `corgi pull smollm2-135m-instruct`).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The file's absolute path (the engine keys loaded models by it), or null. */
export function smollm2GgufPath(): string | null {
  const configured = process.env.CORGI_SMOLLM2_GGUF;
  if (configured) return existsSync(configured) ? resolve(configured) : null;
  const dir = join(process.env.CORGI_DATA_DIR ?? 'data', 'models', 'smollm2-135m-instruct');
  if (!existsSync(dir)) return null;
  const file = readdirSync(dir).find((name) => name.endsWith('.gguf'));
  return file ? resolve(dir, file) : null;
}

export const SMOLLM2_SKIP_REASON =
  'SmolLM2-135M-Instruct GGUF not found: set CORGI_SMOLLM2_GGUF or run `corgi pull smollm2-135m-instruct`';

/** Logs why a suite is skipped (vitest's skip has no reason field). */
export function noteSkip(suite: string, path: string | null): void {
  if (!path) console.warn(`[skip] ${suite}: ${SMOLLM2_SKIP_REASON}`);
}
