/**
 * A real server for end-to-end tests: the built-in model (`models/base`) on llama.cpp as `corgi serve`
 * loads it, sessions in the real PostgreSQL (a schema of its own) and a real API key.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApiKey } from '../../src/db/api-keys.ts';
import type { Database } from '../../src/db/database.ts';
import type { LlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { servingPolicyLoader } from '../../src/policy/serving-loader.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { type RunningServer, type ServerOptions, startServer } from '../../src/server/server.ts';
import { openTestDatabase } from './database.ts';

/** The model `npm start` serves when nothing is promoted. */
export const BUILTIN_MODEL_DIR = fileURLToPath(new URL('../../models/base', import.meta.url));

/**
 * The built-in model on llama.cpp, its GGUF converted once per machine into a shared temp cache
 * (keyed by the checkpoint's digest, written atomically, so test files may race for it).
 */
export function loadBuiltinModel(version = 'base', sequences = 8): Promise<LlamaCppPolicy> {
  return servingPolicyLoader({ cacheDir: join(tmpdir(), 'corgi-test-gguf-cache'), sequences, threads: 1 })(
    BUILTIN_MODEL_DIR,
    version,
  );
}

export interface BuiltinModelServer {
  db: Database;
  policy: LlamaCppPolicy;
  server: RunningServer;
  /** A live API key (not admin). */
  key: string;
  close(): Promise<void>;
}

export async function startBuiltinModelServer(
  options: Pick<ServerOptions, 'security'> = {},
): Promise<BuiltinModelServer> {
  const policy = await loadBuiltinModel();
  const db = await openTestDatabase();
  const server = await startServer({ db, policy: fixedPolicy(policy), port: 0, ...options });
  const { key } = await createApiKey(db.pool, { name: 'openai-client' });
  return {
    db,
    policy,
    server,
    key,
    close: async () => {
      await server.close();
      await db.close();
      await policy.dispose();
    },
  };
}
