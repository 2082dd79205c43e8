/**
 * `corgi serve` (and `npm start`): the live service with the shipped model (or `--policy` /
 * `CORGI_POLICY`) on the embedded database (or `DATABASE_URL`).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { preloadTextModels } from '../checkers/text.ts';
import { openDatabase } from '../db/database.ts';
import { selectBackend } from '../policy/backend.ts';
import { LocalPolicy } from '../policy/local-policy.ts';
import { PolicyRegistry } from '../policy/policy-registry.ts';
import { startServer } from './server.ts';

/** The model `npm start` serves when nothing else is configured. */
export const DEFAULT_POLICY_DIR = 'models/base';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('Serve the writing tool, the dashboard and the API (socket.io + HTTP)')
    .option('--port <port>', 'port to listen on (env PORT)', process.env.PORT ?? '3000')
    .option('--host <host>', 'address to bind (env HOST)', process.env.HOST ?? '127.0.0.1')
    .option(
      '--policy <dir>',
      'checkpoint directory to serve (env CORGI_POLICY)',
      process.env.CORGI_POLICY ?? DEFAULT_POLICY_DIR,
    )
    .action(async (options: { port: string; host: string; policy: string }) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new Error(`--port: expected an integer in 0..65535, got "${options.port}"`);
      }
      const policyDir = resolve(options.policy);
      if (!existsSync(join(policyDir, 'config.json'))) {
        throw new Error(
          `--policy: no checkpoint at ${policyDir} (config.json missing). Point --policy or CORGI_POLICY at a ` +
            'checkpoint directory, or build the base model with `corgi pretrain`.',
        );
      }
      await selectBackend();
      // Train IFEval's sentence splitter now rather than inside the first session that needs it.
      preloadTextModels();
      // Load the model before opening the database: a bad checkpoint then leaves nothing open.
      const policy = await LocalPolicy.load(policyDir);
      const registry = new PolicyRegistry(policy);
      let db: Awaited<ReturnType<typeof openDatabase>> | undefined;
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        db = await openDatabase();
        server = await startServer({ db, policy: registry, port, host: options.host });
      } catch (error) {
        await db?.close();
        await registry.close();
        throw error;
      }
      registry.onSwap((version) => server.io.emit('policy:swap', { version }));
      process.stderr.write(
        `CORGI Live on ${server.url} — policy ${registry.version}, database ${db.embedded ? 'embedded (PGlite)' : 'DATABASE_URL'}\n`,
      );
      const shutdown = async (signal: string) => {
        process.stderr.write(`${signal}: shutting down\n`);
        await server.close();
        await registry.close();
        await db.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void shutdown('SIGINT'));
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
    });
}
