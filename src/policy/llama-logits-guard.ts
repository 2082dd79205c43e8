/**
 * Keeps node-llama-cpp's parallel sampling off a race in llama.cpp (node-llama-cpp 3.21.1).
 *
 * With several sequences, llama.cpp splits a batch by sequence; when the split computes the output
 * rows in another order than the batch lists them (sequences out of order, or a prompt among
 * single-token steps), it records the row swaps and applies them on the next `llama_get_logits*`
 * call. That reorder is not thread-safe. node-llama-cpp samples each sequence of a batch in its own
 * worker on libuv's thread pool, and each worker starts with such a call: two workers applying the
 * swaps at once leave rows holding another sequence's logits (or half of one), so every sequence of
 * that batch draws its token — and reports its log-probability — from a wrong distribution.
 *
 * The guard makes the first sampling after each decode run alone (it applies the swaps); the rest of
 * the batch's samplings wait for it and then run in parallel as before.
 */
import type { LlamaContext } from 'node-llama-cpp';

/** The two calls of node-llama-cpp's native context object the guard wraps. */
interface NativeContext {
  decodeBatch(...args: unknown[]): Promise<unknown>;
  sampleToken(...args: unknown[]): Promise<unknown>;
}

const guarded = new WeakSet<object>();

/**
 * Installs the guard on `context` (idempotent).
 * @throws Error when node-llama-cpp's native context does not have the shape this was written for
 */
export function guardLogitsReorder(context: LlamaContext): void {
  const native = (context as unknown as { _ctx?: NativeContext })._ctx;
  if (!native || typeof native.decodeBatch !== 'function' || typeof native.sampleToken !== 'function') {
    throw new Error(
      'node-llama-cpp: the context has no native decodeBatch/sampleToken to guard; this code expects node-llama-cpp 3.21.1',
    );
  }
  if (guarded.has(native)) return;
  guarded.add(native);
  const decodeBatch = native.decodeBatch;
  const sampleToken = native.sampleToken;
  // Settles when the first sampling since the last decode has read the logits; null until it starts.
  let first: Promise<void> | null = null;
  Object.defineProperty(native, 'decodeBatch', {
    value: (...args: unknown[]) => {
      first = null;
      return decodeBatch.apply(native, args);
    },
  });
  Object.defineProperty(native, 'sampleToken', {
    value: (...args: unknown[]) => {
      if (first) return first.then(() => sampleToken.apply(native, args));
      const sampled = sampleToken.apply(native, args);
      first = sampled.then(
        () => undefined,
        () => undefined,
      );
      return sampled;
    },
  });
}
