/**
 * Memory of one LoRA step of a GGUF model in wasm, plain autodiff against the recomputing op:
 *
 *   node bin/run-ts.js bench/lora-memory.ts <model.gguf> <tokens> <completion> plain|recompute
 *
 * Prints live bytes after load, the peak of live bytes during the step (the backend's allocations,
 * counted by wrapping the wasm module's malloc/free) and the heap size (its high-water mark), in GB.
 * docs/experiments/2026-12-07-lora-training-memory.md has the numbers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadGgufModel } from '../src/model/gguf/gguf-to-llama.ts';
import { attachLora, LORA_TARGET_MODULES } from '../src/model/lora.ts';
import { selectBackend } from '../src/model/tfjs/backend.ts';
import { crossEntropy } from '../src/model/tfjs/wasm-kernels.ts';
import {
  computeGradients,
  maskedLmLoss,
  toTokenBatch,
  trainableParameters,
} from '../src/training/lm/sequence-logprobs.ts';

const [path, tokens = '128', targets = '32', mode = 'recompute'] = process.argv.slice(2);
if (!path || (mode !== 'plain' && mode !== 'recompute'))
  throw new Error('usage: lora-memory.ts <model.gguf> <tokens> <completion> plain|recompute');
const T = Number(tokens);
const C = Number(targets);
await selectBackend({ preferred: 'wasm' });
const wasm = (tf.backend() as unknown as { wasm: Record<string, unknown> }).wasm as {
  asm: { malloc(n: number): number; free(p: number): void };
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
};
const sizes = new Map<number, number>();
let live = 0;
let peak = 0;
wasm._malloc = (n) => {
  const p = wasm.asm.malloc(n) >>> 0; // offsets above 2 GB come back negative
  sizes.set(p, n);
  live += n;
  peak = Math.max(peak, live);
  return p;
};
wasm._free = (p) => {
  live -= sizes.get(p >>> 0) ?? 0;
  sizes.delete(p >>> 0);
  wasm.asm.free(p);
};
const { model } = await loadGgufModel(path);
attachLora(model, { r: 16, alpha: 32, targetModules: LORA_TARGET_MODULES });
const params = trainableParameters(model);
const ids = Array.from({ length: T }, (_, i) => ((i * 7919) % 49_000) + 10);
const batch = toTokenBatch([{ ids, mask: ids.map((_, i) => (i >= T - C ? 1 : 0)) }]);
const V = model.config.vocab_size;
// The plain graph: every position through the head, autodiff keeping every intermediate.
const plain = () =>
  tf.tidy(() => {
    const logits = tf.reshape(model.forward(tf.slice(batch.ids, [0, 0], [1, T - 1])), [
      T - 1,
      V,
    ]) as tf.Tensor2D;
    const next = tf.reshape(tf.slice(batch.ids, [0, 1], [1, T - 1]), [T - 1]) as tf.Tensor1D;
    return crossEntropy(
      logits,
      next,
      tf.reshape(tf.slice(batch.mask, [0, 1], [1, T - 1]), [T - 1]) as tf.Tensor1D,
    );
  });
const gb = (x: number) => (x / 1e9).toFixed(2);
const loaded = live;
for (let i = 0; i < 2; i++) {
  peak = live;
  const { grads } = computeGradients(params, mode === 'plain' ? plain : () => maskedLmLoss(model, batch));
  tf.dispose([...grads.values()]);
}
console.log(
  JSON.stringify({
    mode,
    tokens: T,
    completion: C,
    live_after_load_gb: gb(loaded),
    peak_live_gb: gb(peak),
    heap_gb: gb(wasm.HEAPU8.length),
  }),
);
