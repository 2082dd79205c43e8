/**
 * `corgi serve` (and `npm start`): the live service with the shipped model (or `--policy` /
 * `CORGI_POLICY`) on the embedded database (or `DATABASE_URL`).
 */
import type { Command } from 'commander';
import type { Database } from '../db/database.ts';
import { openDatabase } from '../db/database.ts';
import { expandStoreName } from '../model/store/resolve-policy-spec.ts';
import { dataDirFromEnv } from '../model/store/store-commands.ts';
import { selectBackend } from '../policy/backend.ts';
import { PolicyRegistry } from '../policy/policy-registry.ts';
import { loadPolicyFromSpec, parsePolicySpec, remotePromotionLoader } from '../policy/remote-policy.ts';
import {
  followPromotions,
  loadLivePolicy,
  loadLocalPolicy,
  type PolicyFollower,
} from '../trainer/promotion.ts';
import {
  addTrainerFlags,
  startServeTrainer,
  type TrainerFlags,
  type TrainerWorker,
} from '../trainer/trainer-worker.ts';
import {
  addSecurityFlags,
  describeSecurity,
  type SecurityFlags,
  securityOptionsFromFlags,
} from './security-flags.ts';
import { startServer } from './server.ts';

/** The model `npm start` serves when nothing else is configured. */
export const DEFAULT_POLICY_DIR = 'models/base';

export interface ServedPolicy {
  registry: PolicyRegistry;
  promotions: PolicyFollower;
}

/**
 * The policy a server starts on and the follower that keeps it on the promoted version, for any
 * `--policy` spec. The spec's own model yields to the version promoted in the database, and becomes
 * the first live version when there is none (a remote model recorded under its spec), so the first
 * promotion has something to roll back to. Loading a version means: a checkpoint directory, the
 * TensorFlow.js model; `vllm:`, asking vLLM to load the version's LoRA adapter and then naming it as
 * the model; a plain `openai:` endpoint, nothing it can do (promotions are refused, and it says so).
 * @throws when the spec is malformed or its directory holds no checkpoint
 */
export async function startServedPolicy(
  db: Database,
  policySpec: string,
  {
    field = '--policy',
    pollMs,
    log = (line: string) => process.stderr.write(`${line}\n`),
  }: { field?: string; pollMs?: number; log?: (line: string) => void } = {},
): Promise<ServedPolicy> {
  const spec = parsePolicySpec(policySpec, field);
  const load = spec.kind === 'local' ? loadLocalPolicy : remotePromotionLoader(spec);
  if (spec.kind === 'openai' && !spec.vllm) {
    log(
      `[policy] ${policySpec} is a plain OpenAI-compatible endpoint: this server serves ${spec.model} ` +
        'whatever is promoted (it cannot load a version at run time); serve vllm:<baseURL>#<model> to follow promotions',
    );
  }
  const { policy } = await loadLivePolicy(db, {
    fallback: () => loadPolicyFromSpec(policySpec, { field }),
    fallbackDir: spec.kind === 'local' ? spec.dir : policySpec,
    load,
    log,
  });
  const registry = new PolicyRegistry(policy);
  try {
    return { registry, promotions: await followPromotions({ db, registry, load, pollMs, log }) };
  } catch (error) {
    await registry.close();
    throw error;
  }
}

export function registerServeCommand(program: Command): void {
  addTrainerFlags(addSecurityFlags(program.command('serve')))
    .description('Serve the writing tool, the dashboard and the API (socket.io + HTTP)')
    .option('--port <port>', 'port to listen on (env PORT)', process.env.PORT ?? '3000')
    .option('--host <host>', 'address to bind (env HOST)', process.env.HOST ?? '127.0.0.1')
    .option(
      '--policy <spec>',
      'store model name (corgi models), checkpoint directory, or openai:<baseURL>#<model> / vllm:<baseURL>#<model> to serve (env CORGI_POLICY)',
      process.env.CORGI_POLICY ?? DEFAULT_POLICY_DIR,
    )
    .action(
      async (options: { port: string; host: string; policy: string } & SecurityFlags & TrainerFlags) => {
        const port = Number(options.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          throw new Error(`--port: expected an integer in 0..65535, got "${options.port}"`);
        }
        const security = securityOptionsFromFlags(options, options.host);
        await selectBackend();
        // A store name (`corgi models`) becomes its path here: the loaders below take paths.
        const policy = expandStoreName(options.policy, { dataDir: dataDirFromEnv() });
        // A malformed --policy fails here, before anything is opened.
        parsePolicySpec(policy, '--policy');
        let db: Awaited<ReturnType<typeof openDatabase>> | undefined;
        let registry: PolicyRegistry | undefined;
        let promotions: PolicyFollower | undefined;
        let server: Awaited<ReturnType<typeof startServer>>;
        try {
          db = await openDatabase();
          ({ registry, promotions } = await startServedPolicy(db, policy));
          server = await startServer({
            db,
            policy: registry,
            port,
            host: options.host,
            security,
            promotions,
          });
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
        // Trains when due, in a low-priority child process (src/trainer/trainer-worker.ts).
        const trainer: TrainerWorker | null = startServeTrainer(db, policy, options);
        const shutdown = async (signal: string) => {
          process.stderr.write(`${signal}: shutting down\n`);
          await server.close();
          await trainer?.close();
          await promotions?.close();
          await registry.close();
          await db.close();
          process.exit(0);
        };
        process.once('SIGINT', () => void shutdown('SIGINT'));
        process.once('SIGTERM', () => void shutdown('SIGTERM'));
      },
    );
}
