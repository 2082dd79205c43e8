/**
 * The environment, as the commands read it (docs/operations.md lists every variable). Only the
 * command layer (`src/cli/main.ts`, the `*-command.ts` files) calls these; library functions take the
 * values as options with documented defaults, so a program importing the package is configured by
 * its own code, not by its process's environment.
 */
import { join } from 'node:path';
import { createLogger, type Logger, parseLogFormat } from '../common/logger.ts';
import { LLAMA_GPU_CHOICES, type LlamaGpu, type RuntimeSettings } from '../common/runtime-settings.ts';
import type { DatabaseOptions, DatabaseTimeouts } from '../db/database.ts';
import type { BackendName, SelectBackendOptions } from '../model/tfjs/backend.ts';

type Env = NodeJS.ProcessEnv;

/** The commands' logger: `CORGI_LOG_FORMAT` (`text` | `json`), else text on a terminal and JSON lines otherwise. */
export function loggerFromEnv(env: Env = process.env, isTTY = process.stderr.isTTY === true): Logger {
  return createLogger({ format: parseLogFormat(env.CORGI_LOG_FORMAT, isTTY) });
}

/** The data directory: `CORGI_DATA_DIR`, else `./data` (models, checkpoints, the embedded database). */
export function dataDirFromEnv(env: Env = process.env): string {
  return env.CORGI_DATA_DIR || './data';
}

/** Hugging Face Hub settings: `HF_ENDPOINT`, `HF_TOKEN`. */
export function hubOptionsFromEnv(env: Env = process.env): { hubUrl?: string; accessToken?: string } {
  return {
    ...(env.HF_ENDPOINT ? { hubUrl: env.HF_ENDPOINT.replace(/\/+$/, '') } : {}),
    ...(env.HF_TOKEN ? { accessToken: env.HF_TOKEN } : {}),
  };
}

const TIMEOUT_VARIABLES: Record<keyof DatabaseTimeouts, string> = {
  connectMs: 'CORGI_DB_CONNECT_TIMEOUT_MS',
  queryMs: 'CORGI_DB_QUERY_TIMEOUT_MS',
  statementMs: 'CORGI_DB_STATEMENT_TIMEOUT_MS',
  idleInTransactionMs: 'CORGI_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS',
};

/**
 * The database deadlines `CORGI_DB_*_TIMEOUT_MS` set (`openDatabase` applies the defaults to the rest).
 * @throws Error naming a malformed variable
 */
export function databaseTimeoutsFromEnv(env: Env = process.env): Partial<DatabaseTimeouts> {
  const timeouts: Partial<DatabaseTimeouts> = {};
  for (const [key, name] of Object.entries(TIMEOUT_VARIABLES) as [keyof DatabaseTimeouts, string][]) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0)
      throw new Error(`${name} must be a whole number of milliseconds (0 = no deadline), got "${raw}"`);
    timeouts[key] = value;
  }
  return timeouts;
}

/** `DATABASE_URL` (unset: the embedded database under the data directory) and the deadlines. */
export function databaseOptionsFromEnv(env: Env = process.env, logger?: Logger): DatabaseOptions {
  return {
    ...(env.DATABASE_URL ? { url: env.DATABASE_URL } : {}),
    dataDir: join(dataDirFromEnv(env), 'pglite'),
    timeouts: databaseTimeoutsFromEnv(env),
    ...(logger ? { logger } : {}),
  };
}

const BACKENDS: readonly BackendName[] = ['gpu', 'node', 'wasm', 'cpu'];

/**
 * The TensorFlow.js backend settings: `CORGI_BACKEND` forces one; `CORGI_SIMD_MATMUL=0` turns the
 * wasm SIMD matmul kernel off (for comparisons). With `logger`, the "which backend" notice goes to it.
 * @throws Error naming `CORGI_BACKEND` when it names no backend
 */
export function backendOptionsFromEnv(env: Env = process.env, logger?: Logger): SelectBackendOptions {
  const value = env.CORGI_BACKEND;
  if (value && !(BACKENDS as readonly string[]).includes(value))
    throw new Error(`CORGI_BACKEND must be one of ${BACKENDS.join(', ')}; got "${value}"`);
  const backendLog = logger?.child('backend');
  return {
    // A long-running command's notice goes through its logger (a JSON line when logs are JSON).
    ...(backendLog ? { log: (line: string) => backendLog.info(line) } : {}),
    ...(value ? { preferred: value as BackendName } : {}),
    ...(env.CORGI_SIMD_MATMUL === '0' ? { simdMatMul: false } : {}),
  };
}

/** The admin key `corgi keys --server` and `corgi promote --server` send: `CORGI_API_KEY`. */
export function adminKeyFromEnv(env: Env = process.env): string | undefined {
  return env.CORGI_API_KEY || undefined;
}

/**
 * Whether `corgi serve` keeps a spare context (`LlamaCppPolicySpec.spareContext`): `CORGI_SPARE_CONTEXT`
 * `0`/`false`/`off` saves one KV cache of memory (SmolLM2 at 8 × 2048: 377 MB) at the cost of a slower
 * hot swap; unset or `1`/`true`/`on` keeps one.
 * @throws Error naming the variable for any other value
 */
export function spareContextFromEnv(env: Env = process.env): boolean {
  const value = env.CORGI_SPARE_CONTEXT?.trim().toLowerCase();
  if (!value || value === '1' || value === 'true' || value === 'on') return true;
  if (value === '0' || value === 'false' || value === 'off') return false;
  throw new Error(
    `CORGI_SPARE_CONTEXT must be on or off (1/0, true/false), got "${env.CORGI_SPARE_CONTEXT}"`,
  );
}

/** A positive integer from `env[name]`, or undefined when unset; throws naming the variable when malformed. */
function positiveIntFromEnv(env: Env, name: string): number | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

/**
 * The process's native-thread defaults (`configureRuntime`): `CORGI_LLAMA_THREADS` and
 * `CORGI_LLAMA_GPU` (`auto`, `false`/`cpu`, `cuda`, `vulkan`, `metal`) for llama.cpp,
 * `CORGI_CHECK_THREADS` and `CORGI_CHECK_TIMEOUT_MS` for a server's check workers.
 * @throws Error naming a malformed variable
 */
export function runtimeSettingsFromEnv(env: Env = process.env): RuntimeSettings {
  const gpu = env.CORGI_LLAMA_GPU?.trim();
  let llamaGpu: LlamaGpu | undefined;
  if (gpu === 'false' || gpu === 'cpu') llamaGpu = false;
  else if (gpu) {
    if (!LLAMA_GPU_CHOICES.includes(gpu as LlamaGpu))
      throw new Error(`CORGI_LLAMA_GPU must be auto, false, cuda, vulkan or metal, got "${gpu}"`);
    llamaGpu = gpu as LlamaGpu;
  }
  return {
    llamaThreads: positiveIntFromEnv(env, 'CORGI_LLAMA_THREADS'),
    llamaGpu,
    checkThreads: positiveIntFromEnv(env, 'CORGI_CHECK_THREADS'),
    checkTimeoutMs: positiveIntFromEnv(env, 'CORGI_CHECK_TIMEOUT_MS'),
  };
}
