/**
 * `corgi keys create|list|revoke`: API keys in the database the environment points at
 * (`DATABASE_URL`, or the embedded one under `CORGI_DATA_DIR`), or, with `--server URL`, through a
 * running server's admin routes (the way in while `corgi serve` holds the embedded database;
 * authenticated with `CORGI_API_KEY` unless the server is on loopback).
 *
 *   corgi keys create --name N [--admin] [--json]   prints {"id", "key"}; the key is shown once
 *   corgi keys list [--json]
 *   corgi keys revoke <id> [--json]
 */

import type { Command } from 'commander';
import { type ApiKey, createApiKey, listApiKeys, revokeApiKey } from '../db/api-keys.ts';
import { type Database, openDatabase } from '../db/database.ts';
import { callAdminRoute } from './admin-client.ts';
import { adminKeyFromEnv, databaseOptionsFromEnv } from './command-env.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function withDatabase<T>(work: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(databaseOptionsFromEnv());
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

const SERVER_HELP =
  "a running server's URL: manage keys through its admin routes (env CORGI_API_KEY: an admin key)";

const print = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};

export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description('Create, list and revoke API keys');

  keys
    .command('create')
    .description('Create an API key; the key is printed once and only its hash is stored')
    .requiredOption('--name <name>', 'who or what the key is for')
    .option('--admin', 'admin scope: promote, roll back and manage keys')
    .option('--json', 'print {"id", "key"}')
    .option('--server <url>', SERVER_HELP)
    .action(async (options: { name: string; admin?: boolean; json?: boolean; server?: string }) => {
      if (options.name.trim() === '') throw new Error('--name: must not be empty');
      const request = { name: options.name, admin: options.admin ?? false };
      const created = options.server
        ? await callAdminRoute<{ id: string; key: string }>(options.server, 'POST', '/v1/admin/keys', {
            body: request,
            apiKey: adminKeyFromEnv(),
          })
        : await withDatabase((db) => createApiKey(db.pool, request));
      if (options.json) return print(created);
      process.stdout.write(
        `id   ${created.id}\nkey  ${created.key}\n` +
          'The key is shown only now; store it. Clients send it as "Authorization: Bearer <key>".\n',
      );
    });

  keys
    .command('list')
    .description('List API keys (names, scopes, dates; never the keys)')
    .option('--json', 'print a JSON array')
    .option('--server <url>', SERVER_HELP)
    .action(async (options: { json?: boolean; server?: string }) => {
      const all = options.server
        ? (
            await callAdminRoute<{ keys: ApiKey[] }>(options.server, 'GET', '/v1/admin/keys', {
              apiKey: adminKeyFromEnv(),
            })
          ).keys
        : await withDatabase((db) => listApiKeys(db.pool));
      if (options.json) return print(all);
      if (all.length === 0) {
        process.stdout.write('no keys (create one with `corgi keys create --name N`)\n');
        return;
      }
      for (const key of all) {
        const state = key.revokedAt ? `revoked ${key.revokedAt}` : 'live';
        process.stdout.write(
          `${key.id}  ${key.admin ? 'admin' : 'user '}  ${state.padEnd(32)}  created ${key.createdAt}  ${key.name}\n`,
        );
      }
    });

  keys
    .command('revoke')
    .description('Revoke an API key by id (servers stop accepting it within seconds)')
    .argument('<id>', 'the key id (from `corgi keys list`)')
    .option('--json', 'print {"id", "revoked"}')
    .option('--server <url>', SERVER_HELP)
    .action(async (id: string, options: { json?: boolean; server?: string }) => {
      if (!UUID.test(id)) throw new Error(`id: expected a key id (UUID), got "${id}"`);
      if (options.server) {
        await callAdminRoute(options.server, 'DELETE', `/v1/admin/keys/${id}`, { apiKey: adminKeyFromEnv() });
      } else if (!(await withDatabase((db) => revokeApiKey(db.pool, id)))) {
        throw new Error(`id: no live key ${id}`);
      }
      if (options.json) return print({ id, revoked: true });
      process.stdout.write(`revoked ${id}\n`);
    });
}
