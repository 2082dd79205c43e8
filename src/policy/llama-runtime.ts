/**
 * The process's llama.cpp: one `Llama` (native backend, thread pool) and one loaded `LlamaModel`
 * per GGUF path, shared by every policy serving from that file. A hot swap to an adapter on the
 * same base makes a new context on the already loaded model instead of loading it twice; a model is
 * unloaded when the last policy using it lets go.
 *
 * The backend is llama.cpp's prebuilt binary from npm (`build: 'never'`: nothing is compiled at
 * run time): CPU here, CUDA/Vulkan/Metal where the machine has a GPU (`gpuChoice`).
 */
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel } from 'node-llama-cpp';
import { type LlamaGpu, runtimeSettings } from '../common/runtime-settings.ts';

let runtime: Promise<Llama> | null = null;

/**
 * Decoding threads when a policy does not say: `configureRuntime({ llamaThreads })` (the commands
 * take `CORGI_LLAMA_THREADS`), else the machine's available parallelism. On a busy machine fewer is
 * faster: llama.cpp's threads meet at a barrier every layer, and one descheduled thread stalls the
 * rest (2 cores under load ≈ 14: 0.7 tokens/s with 2 threads, 27 with 1, SmolLM2 at batch 1).
 */
export function defaultThreads(): number {
  return runtimeSettings().llamaThreads ?? availableParallelism();
}

/**
 * Which backend to ask node-llama-cpp for: `configureRuntime({ llamaGpu })` (the commands take
 * `CORGI_LLAMA_GPU`) when set; else `auto` on macOS (Metal) or when a GPU device node exists,
 * otherwise `false` — with `auto` on a machine without a GPU node-llama-cpp first tries to load the
 * GPU binaries and fails, which costs start-up time and prints warnings.
 */
export function gpuChoice(): LlamaGpu {
  const configured = runtimeSettings().llamaGpu;
  if (configured !== undefined) return configured;
  if (process.platform === 'darwin') return 'auto';
  if (existsSync('/dev/nvidia0') || existsSync('/dev/dxg')) return 'auto';
  try {
    if (readdirSync('/dev/dri').some((name) => name.startsWith('renderD'))) return 'auto';
  } catch {
    // No /dev/dri: no GPU that Vulkan could use.
  }
  return false;
}

/** The process's llama.cpp backend, created on first use. */
export function getLlamaRuntime(): Promise<Llama> {
  runtime ??= getLlama({ gpu: gpuChoice(), build: 'never', logLevel: LlamaLogLevel.error }).catch((error) => {
    runtime = null;
    throw error;
  });
  return runtime;
}

interface CachedModel {
  model: Promise<LlamaModel>;
  users: number;
}

const models = new Map<string, CachedModel>();

/** A loaded model and the call that gives it back. */
export interface ModelLease {
  model: LlamaModel;
  /** Unloads the model when no other lease holds it. Idempotent. */
  release(): Promise<void>;
}

/**
 * The model at `path` (an absolute path, already checked by `checkGgufFile`), loaded once per
 * process however many policies use it.
 */
export async function acquireModel(path: string): Promise<ModelLease> {
  let entry = models.get(path);
  if (!entry) {
    const model = getLlamaRuntime().then((llama) => llama.loadModel({ modelPath: path }));
    entry = { model, users: 0 };
    models.set(path, entry);
    model.catch(() => {
      if (models.get(path) === entry) models.delete(path);
    });
  }
  entry.users++;
  const held = entry;
  let model: LlamaModel;
  try {
    model = await held.model;
  } catch (error) {
    held.users--;
    throw error;
  }
  let released = false;
  return {
    model,
    release: async () => {
      if (released) return;
      released = true;
      held.users--;
      if (held.users > 0) return;
      if (models.get(path) === held) models.delete(path);
      await model.dispose();
    },
  };
}

/** Models loaded now, by path, with how many leases hold each (for tests and `/metrics`). */
export function loadedModels(): Map<string, number> {
  return new Map([...models].map(([path, entry]) => [path, entry.users]));
}
