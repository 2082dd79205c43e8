/**
 * A real server for end-to-end tests: the built-in model (`models/base`, TensorFlow.js), sessions in
 * the real PostgreSQL (a schema of its own) and a real API key.
 */
import { fileURLToPath } from 'node:url';
import { createApiKey } from '../../src/db/api-keys.ts';
import type { Database } from '../../src/db/database.ts';
import { selectBackend } from '../../src/policy/backend.ts';
import { LocalPolicy } from '../../src/policy/local-policy.ts';
import { fixedPolicy } from '../../src/policy/types.ts';
import { type RunningServer, type ServerOptions, startServer } from '../../src/server/server.ts';
import { openTestDatabase } from './database.ts';

/** The model `npm start` serves when nothing is promoted. */
export const BUILTIN_MODEL_DIR = fileURLToPath(new URL('../../models/base', import.meta.url));

export interface BuiltinModelServer {
  db: Database;
  policy: LocalPolicy;
  server: RunningServer;
  /** A live API key (not admin). */
  key: string;
  close(): Promise<void>;
}

export async function startBuiltinModelServer(
  options: Pick<ServerOptions, 'security'> = {},
): Promise<BuiltinModelServer> {
  await selectBackend({ preferred: 'wasm', log: () => {} });
  const policy = await LocalPolicy.load(BUILTIN_MODEL_DIR);
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
      policy.dispose();
    },
  };
}
