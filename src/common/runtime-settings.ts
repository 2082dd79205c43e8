/**
 * Process-wide defaults for the two pools of native threads a process may start: llama.cpp's
 * decoding threads and backend, and the check workers of a server. The command layer sets them
 * once from the environment (`runtimeSettingsFromEnv` in `src/cli/command-env.ts`); a program using
 * the library calls `configureRuntime` or passes the values per policy / per server. Unset, each
 * falls back to what the machine offers.
 */

/** The llama.cpp backend to ask node-llama-cpp for (`false`: the CPU). */
export type LlamaGpu = 'auto' | false | 'cuda' | 'vulkan' | 'metal';

export const LLAMA_GPU_CHOICES: readonly LlamaGpu[] = ['auto', false, 'cuda', 'vulkan', 'metal'];

export interface RuntimeSettings {
  /** llama.cpp decoding threads of a policy that does not say. @default os.availableParallelism() */
  llamaThreads?: number;
  /** llama.cpp backend. @default detected: `auto` on macOS or with a GPU device node, else `false` */
  llamaGpu?: LlamaGpu;
  /** Worker threads of a server's check pool. @default os.availableParallelism() */
  checkThreads?: number;
  /** Per-check budget in ms of a worker's time. @default 5_000 */
  checkTimeoutMs?: number;
}

let settings: Readonly<RuntimeSettings> = {};

/**
 * Sets the process's defaults (merged over what was set before; `undefined` leaves a field as it
 * was). The llama.cpp backend is chosen when the first model loads: set it before that.
 * @throws RangeError naming a field that is not a positive integer / not a known backend
 */
export function configureRuntime(next: RuntimeSettings): void {
  for (const field of ['llamaThreads', 'checkThreads', 'checkTimeoutMs'] as const) {
    const value = next[field];
    if (value !== undefined && (!Number.isInteger(value) || value < 1))
      throw new RangeError(`${field} must be a positive integer, got ${value}`);
  }
  if (next.llamaGpu !== undefined && !LLAMA_GPU_CHOICES.includes(next.llamaGpu))
    throw new RangeError(`llamaGpu must be auto, false, cuda, vulkan or metal, got ${String(next.llamaGpu)}`);
  const defined = Object.entries(next).filter(([, value]) => value !== undefined);
  settings = { ...settings, ...Object.fromEntries(defined) };
}

/** The defaults set so far. */
export function runtimeSettings(): Readonly<RuntimeSettings> {
  return settings;
}
