/**
 * A fixed number of async tasks with at most `concurrency` in flight: the loop `corgi eval`'s cases
 * and the trainer's rollout sessions both run on.
 */
import { setMaxListeners } from 'node:events';

/**
 * Runs `task(i, signal)` for every i in 0..count−1, at most `concurrency` at once, started in index
 * order. Aborting `signal` reaches the tasks in flight through the signal they are given, and no
 * task starts after it. That signal is one of our own, allowed any number of listeners: every task
 * listens, and Node warns past 10 on the caller's.
 */
export async function runConcurrently(
  count: number,
  concurrency: number,
  task: (index: number, signal: AbortSignal) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const inner = new AbortController();
  setMaxListeners(0, inner.signal);
  const forward = () => inner.abort(signal?.reason);
  if (signal?.aborted) forward();
  signal?.addEventListener('abort', forward, { once: true });
  let next = 0;
  const worker = async () => {
    while (next < count && !inner.signal.aborted) await task(next++, inner.signal);
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  } finally {
    signal?.removeEventListener('abort', forward);
  }
}
