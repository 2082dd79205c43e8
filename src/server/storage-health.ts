/**
 * Whether the database answers, known without waiting on it. A failed connection or a query past
 * its deadline marks the store unavailable; from then on new sessions are refused at once with
 * `storage_unavailable` (503, Retry-After) rather than each waiting out the deadlines, and a probe
 * (`SELECT 1` with a short deadline) runs every `probeIntervalMs` until the database answers
 * again, which lifts the refusal with no restart. `/healthz` probes on every call, bounded by
 * `probeTimeoutMs`.
 */
import type pg from 'pg';
import { defaultLogger, type Logger } from '../common/logger.ts';
import { pingDatabase } from '../db/database.ts';
import { HttpError, isStorageError } from './http-error.ts';

export interface StorageHealthOptions {
  /** How long a probe waits for `SELECT 1`. @default 1_500 (so /healthz answers within 2 s) */
  probeTimeoutMs?: number;
  /** Probe interval while the database is unavailable. @default 1_000 */
  probeIntervalMs?: number;
  /** Seconds clients are told to wait (Retry-After). @default 5 */
  retryAfterSeconds?: number;
  /** Where outages and recoveries are logged. @default defaultLogger (logger.ts) */
  logger?: Logger;
}

export interface ProbeResult {
  ok: boolean;
  /** Why not, when not ok: the error, or that no answer came in time. */
  reason: string | null;
  ms: number;
}

export class StorageHealth {
  private unavailableSince: number | null = null;
  private lastReason: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<ProbeResult> | undefined;
  private readonly probeTimeoutMs: number;
  private readonly probeIntervalMs: number;
  readonly retryAfterSeconds: number;
  private readonly log: Logger;

  constructor(
    private readonly pool: pg.Pool,
    options: StorageHealthOptions = {},
  ) {
    this.probeTimeoutMs = options.probeTimeoutMs ?? 1_500;
    this.probeIntervalMs = options.probeIntervalMs ?? 1_000;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 5;
    this.log = (options.logger ?? defaultLogger).child('db');
  }

  /** True while the last thing known of the database is that it failed. */
  get unavailable(): boolean {
    return this.unavailableSince !== null;
  }

  /** Runs `SELECT 1`, answering within `probeTimeoutMs` whatever the database does. */
  async probe(): Promise<ProbeResult> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer to SELECT 1 within ${this.probeTimeoutMs} ms`)),
        this.probeTimeoutMs,
      );
    });
    const query = pingDatabase(this.pool, this.probeTimeoutMs);
    try {
      await Promise.race([query, deadline]);
      this.markAvailable();
      return { ok: true, reason: null, ms: performance.now() - started };
    } catch (error) {
      // A late answer or failure of the raced query must not become an unhandled rejection.
      query.catch(() => {});
      const reason = (error as Error).message ?? String(error);
      this.markUnavailable(reason);
      return { ok: false, reason, ms: performance.now() - started };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Records `error` if it says the database is unreachable; returns whether it did. */
  noteError(error: unknown): boolean {
    if (!isStorageError(error)) return false;
    this.markUnavailable((error as Error).message ?? String(error));
    return true;
  }

  /**
   * Resolves at once while the database is known to answer. While it is known not to, probes it
   * (one probe shared by concurrent callers, so within `probeTimeoutMs`) and throws the 503 new
   * sessions get unless it answers now: refused quickly during an outage, served as soon as it ends.
   */
  async ensureAvailable(): Promise<void> {
    if (this.unavailableSince === null) return;
    this.inflight ??= this.probe().finally(() => {
      this.inflight = undefined;
    });
    if (!(await this.inflight).ok) throw this.unavailableError();
  }

  unavailableError(cause?: unknown): HttpError {
    const since =
      this.unavailableSince === null
        ? ''
        : ` (for ${Math.round((Date.now() - this.unavailableSince) / 1000)} s: ${this.lastReason})`;
    return new HttpError(
      503,
      'storage_unavailable',
      `the session store is unavailable${since}; try again shortly`,
      {
        cause,
        headers: { 'Retry-After': String(this.retryAfterSeconds) },
      },
    );
  }

  /** Stops probing (shutdown). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private markUnavailable(reason: string): void {
    this.lastReason = reason;
    if (this.unavailableSince === null) {
      this.unavailableSince = Date.now();
      this.log.error(`unavailable: ${reason}`);
    }
    this.schedule();
  }

  private markAvailable(): void {
    if (this.unavailableSince !== null) {
      this.log.info(`available again after ${Math.round((Date.now() - this.unavailableSince) / 1000)} s`);
    }
    this.unavailableSince = null;
    this.lastReason = null;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(async () => {
      await this.probe();
      this.timer = undefined;
      if (this.unavailableSince !== null) this.schedule();
    }, this.probeIntervalMs);
    this.timer.unref();
  }
}
