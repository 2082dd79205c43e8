/**
 * Writes that failed because the database was unreachable, retried until it is back. The session
 * service uses it for a session's final status: when the store drops mid-session the turns already
 * acknowledged are durable, but the row would otherwise say `running` forever.
 *
 * In memory only: a process that dies while the database is down loses its queue (those rows stay
 * `running`). Retries stop on the first error that is not a storage error (the write itself is
 * wrong, or the pool was closed at shutdown) and after `maxAgeMs`.
 */
import { defaultLogger, type Logger } from '../common/logger.ts';
import { isStorageError } from './http-error.ts';

export interface DeferredWritesOptions {
  /** Milliseconds between retries. @default 2_000 */
  retryMs?: number;
  /** Give a write up after this long. @default 600_000 */
  maxAgeMs?: number;
  /** Called when a write is given up. @default logs it to `logger` */
  onDrop?: (error: unknown) => void;
  /** @default defaultLogger (logger.ts) */
  logger?: Logger;
}

interface Pending {
  write: () => Promise<void>;
  since: number;
}

export class DeferredWrites {
  private readonly pending: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;
  private readonly retryMs: number;
  private readonly maxAgeMs: number;
  private readonly onDrop: (error: unknown) => void;

  constructor(options: DeferredWritesOptions = {}) {
    this.retryMs = options.retryMs ?? 2_000;
    this.maxAgeMs = options.maxAgeMs ?? 600_000;
    const log = (options.logger ?? defaultLogger).child('db');
    this.onDrop = options.onDrop ?? ((error) => log.error('gave up a deferred write', { error }));
  }

  /** Writes waiting for the database. */
  get size(): number {
    return this.pending.length;
  }

  /** Queues `write` for a retry in `retryMs`. */
  add(write: () => Promise<void>): void {
    this.pending.push({ write, since: Date.now() });
    this.schedule();
  }

  /** Tries every queued write once, in order, keeping the ones the store is still refusing. */
  async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (const item of this.pending.splice(0)) {
        try {
          await item.write();
        } catch (error) {
          if (isStorageError(error) && Date.now() - item.since < this.maxAgeMs) this.pending.push(item);
          else this.onDrop(error);
        }
      }
    } finally {
      this.flushing = false;
      if (this.pending.length > 0) this.schedule();
    }
  }

  /** Stops retrying (shutdown); queued writes are dropped. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.length = 0;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.retryMs);
    // Retries alone never keep a process alive.
    this.timer.unref();
  }
}
