/**
 * A fixed set of slots (a llama.cpp context's sequences) handed out first come, first served.
 * `acquire` resolves with a free slot, or waits in a FIFO queue while all are busy; aborting the
 * signal while waiting leaves the queue at once.
 */
import { CorgiError } from '../common/errors.ts';

/** Raised by `acquire` when its signal aborts before a slot is free, or the pool is closed. */
export class SlotWaitAborted extends CorgiError {
  constructor(message: string) {
    super('aborted', message);
  }
}

interface Waiter<T> {
  resolve(slot: T): void;
  reject(error: Error): void;
}

export class SequencePool<T> {
  private readonly free: T[];
  private readonly size: number;
  private readonly waiting: Waiter<T>[] = [];
  private closed = false;

  constructor(slots: readonly T[]) {
    if (slots.length === 0) throw new RangeError('a sequence pool needs at least one slot');
    this.free = [...slots];
    this.size = slots.length;
  }

  /** Slots in use, callers waiting for one, and free slots. */
  get load(): { busy: number; waiting: number; free: number } {
    return { busy: this.size - this.free.length, waiting: this.waiting.length, free: this.free.length };
  }

  /**
   * A free slot; give it back with `release`.
   * @throws SlotWaitAborted when `signal` aborts first or the pool closes
   */
  acquire(signal?: AbortSignal): Promise<T> {
    if (this.closed) return Promise.reject(new SlotWaitAborted('the pool is closed'));
    if (signal?.aborted) return Promise.reject(new SlotWaitAborted('aborted before a sequence was free'));
    const slot = this.free.shift();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(new SlotWaitAborted('aborted while waiting for a free sequence'));
      };
      const waiter: Waiter<T> = {
        resolve: (s) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Gives a slot back: the longest waiter gets it, else it is free again. */
  release(slot: T): void {
    const next = this.waiting.shift();
    if (next) next.resolve(slot);
    else this.free.push(slot);
  }

  /** Fails every waiter; later `acquire` calls fail too. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.reject(new SlotWaitAborted('the pool is closed'));
  }
}
