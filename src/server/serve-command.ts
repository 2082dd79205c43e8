/**
 * `corgi serve` (and `npm start`): the live service with the shipped model (or `--policy` /
 * `CORGI_POLICY`) on the embedded database (or `DATABASE_URL`).
 */
import type { Command } from 'commander';
import { preloadTextModels } from '../checkers/text.ts';
import { openDatabase } from '../db/database.ts';
import { selectBackend } from '../policy/backend.ts';
import { PolicyRegistry } from '../policy/policy-registry.ts';
import { loadPolicyFromSpec, parsePolicySpec } from '../policy/remote-policy.ts';
import { followPromotions, loadLivePolicy, type PolicyFollower } from '../trainer/promotion.ts';
import {
  addSecurityFlags,
  describeSecurity,
  type SecurityFlags,
  securityOptionsFromFlags,
} from './security-flags.ts';
import { startServer } from './server.ts';

/** The model `npm start` serves when nothing else is configured. */
export const DEFAULT_POLICY_DIR = 'models/base';

export function registerServeCommand(program: Command): void {
  addSecurityFlags(program.command('serve'))
    .description('Serve the writing tool, the dashboard and the API (socket.io + HTTP)')
    .option('--port <port>', 'port to listen on (env PORT)', process.env.PORT ?? '3000')
    .option('--host <host>', 'address to bind (env HOST)', process.env.HOST ?? '127.0.0.1')
    .option(
      '--policy <spec>',
      'checkpoint directory, or openai:<baseURL>#<model> / vllm:<baseURL>#<model> to serve (env CORGI_POLICY)',
      process.env.CORGI_POLICY ?? DEFAULT_POLICY_DIR,
    )
    .action(async (options: { port: string; host: string; policy: string } & SecurityFlags) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new Error(`--port: expected an integer in 0..65535, got "${options.port}"`);
      }
      const security = securityOptionsFromFlags(options, options.host);
      await selectBackend();
      // Train IFEval's sentence splitter now rather than inside the first session that needs it.
      preloadTextModels();
      // A malformed --policy fails here, before anything is opened.
      const spec = parsePolicySpec(options.policy, '--policy');
      const loadFlagPolicy = () => loadPolicyFromSpec(options.policy, { field: '--policy' });
      let db: Awaited<ReturnType<typeof openDatabase>> | undefined;
      let registry: PolicyRegistry | undefined;
      let promotions: PolicyFollower | undefined;
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        db = await openDatabase();
        // A checkpoint directory yields to the version promoted in the database (and becomes the
        // first live version when there is none), then follows promotions; a remote model is served as is.
        const policy =
          spec.kind === 'local'
            ? (await loadLivePolicy(db, { fallback: loadFlagPolicy, fallbackDir: spec.dir })).policy
            : await loadFlagPolicy();
        registry = new PolicyRegistry(policy);
        if (spec.kind === 'local') promotions = await followPromotions({ db, registry });
        server = await startServer({ db, policy: registry, port, host: options.host, security, promotions });
      } catch (error) {
        await promotions?.close();
        await registry?.close();
        await db?.close();
        throw error;
      }
      // Each server tells its own clients when it swaps (`local`): with the cluster adapter a plain
      // emit would reach every server's clients, once per server, before their servers had swapped.
      registry.onSwap((version) => server.io.local.emit('policy:swap', { version }));
      process.stderr.write(
        `CORGI Live on ${server.url} — policy ${registry.version}, database ${db.embedded ? 'embedded (PGlite)' : 'DATABASE_URL'}, ${describeSecurity(security)}\n`,
      );
      const shutdown = async (signal: string) => {
        process.stderr.write(`${signal}: shutting down\n`);
        await server.close();
        await promotions?.close();
        await registry.close();
        await db.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void shutdown('SIGINT'));
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
    });
}
