/**
 * Chooses the TensorFlow.js backend at run time: tfjs-node-gpu → tfjs-node → wasm → cpu.
 *
 * The two native backends are optionalDependencies: their install script downloads libtensorflow,
 * which fails on machines without that host (ours), so they are imported dynamically and skipped
 * when absent. `CORGI_BACKEND` (gpu | node | wasm | cpu) or `preferred` forces one; a forced
 * backend that cannot load is an error, not a silent fallback.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { patchWasmKernels, setSimdMatMul, unpatchWasmKernels } from './wasm-kernels.ts';

export type BackendName = 'gpu' | 'node' | 'wasm' | 'cpu';

const ORDER: readonly BackendName[] = ['gpu', 'node', 'wasm', 'cpu'];

export interface SelectBackendOptions {
  /** Force one backend. @default the first that loads, in the order gpu, node, wasm, cpu */
  preferred?: BackendName;
  /** Where the one-line "which backend" notice goes. @default process.stderr, as `corgi: <notice>` */
  log?: (line: string) => void;
  /** Apply the wasm kernel patches (see wasm-kernels.ts); false restores the stock kernels, for comparisons. @default true */
  patchKernels?: boolean;
  /** With the patches: batched products on the SIMD kernel (false: the older routes, for comparisons). @default true */
  simdMatMul?: boolean;
}

let selected: BackendName | null = null;

/** The backend chosen by the last `selectBackend` call, or null before one. */
export function selectedBackend(): BackendName | null {
  return selected;
}

/**
 * Loads and activates a backend, logs one line to stderr naming it, and returns its name.
 * Safe to call more than once; a later call can switch backends (tests compare wasm with cpu).
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendName> {
  const log = options.log ?? ((line: string) => process.stderr.write(`corgi: ${line}\n`));
  const candidates = options.preferred ? [options.preferred] : ORDER;
  if (options.simdMatMul !== undefined) setSimdMatMul(options.simdMatMul);
  const failures: string[] = [];
  for (const name of candidates) {
    try {
      await activate(name, options);
      selected = name;
      const patched = options.patchKernels ?? true;
      const detail = name === 'wasm' ? ` (XNNPACK, 1 thread${patched ? ', patched kernels' : ''})` : '';
      log(`tensorflow.js backend ${name}${detail}`);
      return name;
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could load (${failures.join('; ')})`);
}

async function activate(name: BackendName, options: SelectBackendOptions): Promise<void> {
  switch (name) {
    case 'gpu':
      // The package registers the 'tensorflow' backend (CUDA build) on import.
      await importOptional('@tensorflow/tfjs-node-gpu');
      await setOrThrow('tensorflow');
      return;
    case 'node':
      await importOptional('@tensorflow/tfjs-node');
      await setOrThrow('tensorflow');
      return;
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      if (!wasmPathsSet) {
        // Under Node the backend looks for the .wasm files beside the calling script; point it at
        // the package's own dist directory instead.
        wasm.setWasmPaths(`${join(wasmPackageDir(), 'dist')}/`);
        wasmPathsSet = true;
      }
      if (options.patchKernels ?? true) await patchWasmKernels();
      else unpatchWasmKernels();
      await setOrThrow('wasm');
      return;
    }
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      await setOrThrow('cpu');
      return;
  }
}

let wasmPathsSet = false;

function wasmPackageDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
}

/** A module that may be absent: a computed specifier keeps bundlers and tsc from resolving it. */
async function importOptional(specifier: string): Promise<unknown> {
  return import(/* @vite-ignore */ specifier);
}

async function setOrThrow(tfName: string): Promise<void> {
  const ok = await tf.setBackend(tfName);
  if (!ok) throw new Error(`tf.setBackend('${tfName}') failed`);
  await tf.ready();
}
