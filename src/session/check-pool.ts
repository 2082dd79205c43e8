/**
 * Checks off the event loop: a piscina pool of worker threads, sized to the cores, that the HTTP
 * `/v1/check` route, socket and SSE sessions share. Each check has a time budget; past it the
 * check fails with `CheckError('check_timeout')` and its worker is terminated (piscina stops a
 * worker whose running task is aborted) and replaced, so a pathological response costs one
 * worker for at most the budget and never the server's responsiveness.
 *
 * `checkInProcess` is the same contract without threads, for the trainer, `corgi eval` and tests.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { type CheckResult, checkAll, parseConstraints } from '../checkers/registry.ts';
import type { ParsedConstraint } from '../checkers/types.ts';
import { runtimeSettings } from '../common/runtime-settings.ts';
import { CheckError } from './check-error.ts';
import type { CheckTask } from './check-worker.ts';

/** Checks a response against parsed constraints; what `runSession` and the routes call. */
export type CheckFunction = (
  response: string,
  constraints: readonly ParsedConstraint[],
  options?: { signal?: AbortSignal },
) => Promise<CheckResult>;

/** `checkAll` on this thread, with no budget. */
export const checkInProcess: CheckFunction = async (response, constraints) => checkAll(response, constraints);

/** @default 5_000: the slowest adversarial response measured (256 KB, corgi:concepts) takes ~2 s on a busy core. */
export const DEFAULT_CHECK_TIMEOUT_MS = 5_000;
/** @default 1_024 checks waiting: beyond that a check is refused with `checks_busy`. */
export const DEFAULT_CHECK_QUEUE = 1_024;

export interface CheckPoolOptions {
  /** Worker threads. @default `configureRuntime`'s checkThreads (`CORGI_CHECK_THREADS`), else os.availableParallelism() */
  threads?: number;
  /** Per-check budget in ms of a worker's time (queue wait not included). @default checkTimeoutMs (`CORGI_CHECK_TIMEOUT_MS`), else 5_000 */
  timeoutMs?: number;
  /** Checks allowed to wait for a worker. @default 1_024 */
  maxQueue?: number;
}

export interface CheckPool {
  check: CheckFunction;
  /** Worker threads the pool keeps. */
  readonly threads: number;
  readonly timeoutMs: number;
  /** Checks stopped at their budget since the pool started. */
  readonly timeouts: number;
  /** Resolves once the workers have loaded the text models and checked a first response. */
  ready(): Promise<void>;
  /** Stops every worker; pending checks reject. */
  close(): Promise<void>;
}

/** The worker module: the compiled one next to this file, or the TypeScript one through tsx. */
function workerFilename(): string {
  const here = new URL(import.meta.url);
  const compiled = here.pathname.endsWith('.js');
  return new URL(compiled ? './check-worker.js' : './check-worker-tsx.mjs', here).href;
}

/** Starts a pool of warm check workers (each loads the text models once). */
export function createCheckPool(options: CheckPoolOptions = {}): CheckPool {
  const defaults = runtimeSettings();
  const threads = options.threads ?? defaults.checkThreads ?? availableParallelism();
  const timeoutMs = options.timeoutMs ?? defaults.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const piscina = new Piscina<CheckTask, CheckResult>({
    filename: workerFilename(),
    minThreads: threads,
    maxThreads: threads,
    // Workers stay up: a new one spends ~0.5 s loading the text models.
    idleTimeout: Number.POSITIVE_INFINITY,
    maxQueue: options.maxQueue ?? DEFAULT_CHECK_QUEUE,
  });
  let timeouts = 0;
  let closed = false;

  const check: CheckFunction = async (response, constraints, { signal } = {}) => {
    // The budget runs from the moment a worker starts the check (it says so on `started`), so
    // neither queueing behind other checks nor a replacement worker's start-up eats into it.
    const { port1: started, port2: startedInWorker } = new MessageChannel();
    const budget = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    started.once('message', () => {
      timer = setTimeout(() => budget.abort(), timeoutMs);
    });
    const task: CheckTask = {
      response,
      constraints: constraints.map(({ id, kwargs }) => ({ id, kwargs })),
      started: startedInWorker,
    };
    try {
      return await piscina.run(task, {
        signal: signal ? AbortSignal.any([budget.signal, signal]) : budget.signal,
        transferList: [startedInWorker],
      });
    } catch (error) {
      if (budget.signal.aborted && !signal?.aborted) {
        timeouts++;
        throw new CheckError(
          'check_timeout',
          `response: checking took longer than the ${timeoutMs} ms budget (${response.length} characters); the check was stopped`,
          { cause: error },
        );
      }
      if (!closed && /queue is at limit/i.test((error as Error)?.message ?? '')) {
        throw new CheckError(
          'checks_busy',
          `the check queue is full (${piscina.options.maxQueue} waiting); try again shortly`,
          { cause: error },
        );
      }
      throw error;
    } finally {
      clearTimeout(timer);
      started.close();
    }
  };

  const warmUp = parseConstraints([{ id: 'punctuation:no_comma' }]);
  let ready: Promise<void> | undefined;

  return {
    check,
    threads,
    ready() {
      ready ??= Promise.all(Array.from({ length: threads }, () => check('Ready.', warmUp))).then(() => {});
      return ready;
    },
    timeoutMs,
    get timeouts() {
      return timeouts;
    },
    async close() {
      closed = true;
      await piscina.destroy();
    },
  };
}
