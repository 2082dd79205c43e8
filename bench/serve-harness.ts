/**
 * What the serving benches (serve.ts, load.ts, cycle.ts) share: their command-line checks, the fixed
 * sessions they run (seeded cases from the test split, one sampling seed per session), the socket.io
 * clients, which run in a worker thread (bench/serve-clients.ts) so their clocks are not held up by
 * whatever else the bench does, a `corgi serve` child process, and the machine fields of their reports.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { parseConstraints } from '../src/checkers/registry.ts';
import type { ConstraintSpec, ParsedConstraint } from '../src/checkers/types.ts';
import { createRng } from '../src/common/random.ts';
import type { SamplingOptions } from '../src/policy/types.ts';
import { MAX_ATTEMPTS_LIMIT } from '../src/session/session-runner.ts';
import { buildTaskPool } from '../src/tasks/index.ts';
import type { ClientsRequest } from './serve-clients.ts';
import type { QueueResult } from './serve-session.ts';
import { round } from './stats.ts';

/** The real PostgreSQL of the development and CI machines (as the tests use it). */
export const LOCAL_POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** A session that has not ended after this long counts as an error (and the bench moves on). */
export const SESSION_TIMEOUT_MS = 10 * 60_000;

/** commander's parser for an option that takes a positive integer. */
export const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got "${value}"`);
  return n;
};
/** commander's parser for an option that takes a non-negative integer. */
export const nonNegativeInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got "${value}"`);
  return n;
};

/** Throws if `--max-attempts` is above what a session allows or `--temperature` is outside 0..2. */
export function checkSessionOptions(o: { maxAttempts: number; temperature: number }): void {
  if (o.maxAttempts > MAX_ATTEMPTS_LIMIT) throw new Error(`--max-attempts: at most ${MAX_ATTEMPTS_LIMIT}`);
  if (!(o.temperature >= 0 && o.temperature <= 2)) throw new Error('--temperature: expected 0..2');
}

export interface BenchCase {
  id: string;
  /** What the client sends (`session:start` requires a prompt; '' means the constraints alone). */
  prompt: string;
  specs: ConstraintSpec[];
  constraints: ParsedConstraint[];
  sampling: SamplingOptions;
}

/** `count` cases from the test split's task pool, with fixed sampling and a per-session seed. */
export function buildCases(
  count: number,
  { seed, temperature, maxTokens }: { seed: number; temperature: number; maxTokens: number },
): BenchCase[] {
  const seeds = createRng(seed, 'bench/session-seeds');
  return buildTaskPool({ split: 'test', size: count, seed }).map((instance) => ({
    id: instance.id,
    prompt: instance.prompt ?? '',
    specs: instance.constraints,
    constraints: parseConstraints(instance.constraints),
    sampling: {
      temperature,
      maxTokens,
      // Within the 31-bit range the API accepts, leaving room for the runner's seed + attempt − 1.
      seed: Math.floor(seeds.next() * (2 ** 31 - MAX_ATTEMPTS_LIMIT)),
    },
  }));
}

/** The `session:start` payload of a case. */
export const sessionPayload = (item: BenchCase, maxAttempts: number) => ({
  prompt: item.prompt,
  constraints: item.specs,
  maxAttempts,
  sampling: item.sampling,
});

/** The socket.io clients' worker thread (see bench/serve-clients.ts for why a thread). */
export function startClientsWorker(): Worker {
  // tsx's loader hooks do not cross threads: a small bootstrap registers them in the worker first
  // (as src/training/lm/train.ts does for its gradient worker).
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./serve-clients.ts', import.meta.url).href;
  const bootstrap = `(async () => {
    const { register } = await import(${JSON.stringify(tsxApi)});
    register();
    await import(${JSON.stringify(entry)});
  })().catch((error) => { throw error; });`;
  return new Worker(bootstrap, { eval: true });
}

/** Runs one batch of sessions on the clients' worker. */
export function runClients(worker: Worker, request: ClientsRequest): Promise<QueueResult> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { ok: true; result: QueueResult } | { ok: false; error: string }) => {
      worker.off('error', reject);
      if (message.ok) resolve(message.result);
      else reject(new Error(`socket.io clients: ${message.error}`));
    };
    worker.once('message', onMessage);
    worker.once('error', reject);
    worker.postMessage(request);
  });
}

/** A report's machine fields: Node, the CPU, and the 1-minute load average at the start (`loadAtStart`) and now. */
export function machineReport(loadAtStart: number) {
  return {
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    loadavg_1m_at_start: round(loadAtStart, 2),
    loadavg_1m_at_end: round(os.loadavg()[0], 2),
  };
}

// ---------------------------------------------------------------------------------------------
// The server: a `corgi serve` child, as deployed (the tests' process helpers).

export { type ServeProcess, startServe, stopGently } from '../test/support/processes.ts';

/** Every bench client shares one IP and no key: the per-minute limits would refuse them. */
export const NO_RATE_LIMITS = [
  ...['--host', '127.0.0.1', '--rate-limit', '0', '--rate-limit-ip', '0'],
  ...['--session-rate-limit', '0', '--socket-rate-limit', '0'],
];

/** The last lines of a process's stderr, for the report when something goes wrong. */
export const stderrTail = (server: { stderr(): string }, lines = 20) =>
  server.stderr().split('\n').slice(-lines).join('\n');
