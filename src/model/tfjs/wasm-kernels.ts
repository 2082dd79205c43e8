/**
 * Making @tensorflow/tfjs-backend-wasm (4.22) fast enough to train on: three kernels re-registered
 * and three ops with hand-written gradients. Each change answers a measurement on a 2-core machine
 * (numbers below are from `tf.profile` and micro-benchmarks there).
 *
 * 1. `BatchMatMul`. The wasm kernel sends a product to XNNPACK only when both operands are a single
 *    matrix and neither transpose flag is set; everything else runs a scalar triple loop at 1-2 GFLOP/s
 *    against XNNPACK's ~20. The gradient of every matmul uses the flags, and attention is batched, so
 *    backprop lived in the slow loop. The replacement:
 *    - folds `[batch, m, k] · [k, n]` into one `[batch·m, k] · [k, n]` product;
 *    - removes the transpose flags of single-matrix products with explicit transposes, choosing
 *      between `A·Bᵀ` and `(B·Aᵀ)ᵀ` (and the like) by the number of elements to move, since the
 *      transpose kernel is not free (1024×2048 took 17 ms);
 *    - remembers the transpose of an operand it sees a second time (a frozen weight, step after
 *      step: the base model under LoRA, the reference model), so it is neither re-transposed nor
 *      re-packed; the copy dies with its source;
 *    - runs every other batched product (attention, both ways; a matrix broadcast against a batch)
 *      in our own WebAssembly SIMD kernel (simd-matmul.ts), on the backend's memory in place and with
 *      the transpose flags handled by its two loops, so no transposes either. It does 16-18 GMAC/s
 *      where the scalar loop did ~1, and beat the XNNPACK-per-matrix views at each shape measured
 *      (64 × (64×32 · 32×64): 1.98 → 0.50 ms; training's 16 × (512×48 · 48×256)ᵀ: 9.3 → 6.8 ms and
 *      16 × (256×512 · 512×48) with Aᵀ: 15.0 → 6.2 ms). A training step of the built-in model's shape
 *      (`bench/policy.ts --layers 4 --dim 192 --heads 4 --kv-heads 2 --vocab 4096 --ctx 256 --batch 8`)
 *      took 1,788-1,838 ms with it and 1,914-2,056 ms without on a quiet machine (docs/engine.md).
 *      The old routes, kept behind `CORGI_SIMD_MATMUL=0` for comparisons: one XNNPACK call per
 *      matrix over aliases ("views") of the operands' memory for products with at least
 *      VIEW_MIN_MACS multiply-adds per matrix and VIEW_MIN_SIDE rows and columns (64 × (64×32 ·
 *      32×64): 8.4 ms in the loop, 1.7 ms over views), the stock loop for the others.
 * 2. `crossEntropy` and `tokenLogProbs`: `logSoftmax` cost 27 ms on 1024×2048 and the gradient of
 *    `max` ran a broadcasting `Equal` (258 ms per step); here the forward is one softmax and the
 *    gradient is softmax − onehot.
 * 3. `embeddingLookup`: `gather`'s gradient needs `UnsortedSegmentSum`, which the wasm backend lacks;
 *    `ScatterNd` sums duplicate rows, so it is the scatter-add (0.6 ms for 1024×128 into 2048 rows).
 * 4. `Identity` (and `Cast` to the same dtype) copy their input in wasm, and the engine clones every
 *    tensor it saves for backprop: 166 copies per training step of the bench model. Tensors are
 *    immutable and no wasm kernel writes into its inputs, so these now share the data and count a
 *    reference, as the cpu backend's Identity does.
 *
 * Not used: the threaded-SIMD build. It can be started under Node (worker script from a file
 * instead of a blob: URL, XNNPACK's pool sized from a doubled core count) and a 1024³ matmul then
 * took 48 ms instead of 99 on two idle cores, but one start-up of two hung, and with the second core
 * busy every op got slower (pool threads spin). The second core is used by data parallelism instead
 * (train.ts `DataParallelTrainer`: two single-threaded wasm instances).
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node build registers no gradient functions; the union package's build does (and it is
// what the native tfjs-node backends depend on anyway).
import '@tensorflow/tfjs';
import { instantiateSimdMatMul, loadSimdMatMul, type SimdMatMul, simdMatMulModule } from './simd-matmul.ts';

/** With the SIMD kernel off: batched products with fewer multiply-adds per matrix than this stay in the wasm loop. */
export const VIEW_MIN_MACS = 16_384;
/**
 * ... and so do those whose product has fewer rows or columns than this: XNNPACK's kernels tile
 * several rows at once, so 64 × (2×48 · 48×256) ran in 8.4 ms over views against 1.7 ms in the
 * loop; from 8 rows on the views win (4.6 vs 6.5 ms).
 */
export const VIEW_MIN_SIDE = 8;

// ---------------------------------------------------------------------------------------------
// The wasm backend's internals we rely on (tfjs-backend-wasm 4.22; checked at patch time).

interface WasmTensorData {
  id: number;
  memoryOffset: number;
}

interface WasmBackendInternals {
  wasm: {
    /** The emscripten module's exports; `memory` holds every tensor's data. */
    asm: { memory: WebAssembly.Memory };
    cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
    tfjs: {
      registerTensor(id: number, size: number, memoryOffset: number): void;
      disposeData(id: number): void;
    };
  };
  dataIdMap: { get(dataId: tf.DataId): WasmTensorData | undefined };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

type MatMulC = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: number,
  transposeB: number,
  outId: number,
) => void;

interface BackendState {
  matMul: MatMulC;
  /** Transposed copies of `b` operands seen more than once, keyed by the source's dataId. */
  transposed: Map<tf.DataId, { key: string; info: tf.TensorInfo }>;
  seenAsB: WeakSet<tf.DataId>;
  /** The SIMD kernels (simd-matmul.ts) instantiated on this backend's memory. */
  simd: SimdMatMul;
}

const states = new WeakMap<object, BackendState>();
let originalBatchMatMul: tf.KernelConfig | null = null;
let originalIdentity: tf.KernelConfig | null = null;
let originalCast: tf.KernelConfig | null = null;
let transposeKernel: tf.KernelFunc | null = null;
/** Batched products run the SIMD kernel (else the old routes: loop or views); see `setSimdMatMul`. */
let simdEnabled = true;

/**
 * Whether batched products use the SIMD kernel (simd-matmul.ts) or the old routes (loop, views),
 * for before/after comparisons and tests. Returns the previous setting.
 */
export function setSimdMatMul(enabled: boolean): boolean {
  const previous = simdEnabled;
  simdEnabled = enabled;
  return previous;
}

/** True while the replacement `BatchMatMul` is registered for 'wasm'. */
export function wasmKernelsPatched(): boolean {
  return originalBatchMatMul !== null;
}

/**
 * Re-registers the wasm `BatchMatMul`, `Identity` and `Cast` kernels (see the file comment), after
 * compiling the SIMD matmul module (once per process). Idempotent. Call after importing
 * `@tensorflow/tfjs-backend-wasm`; `selectBackend` does.
 */
export async function patchWasmKernels(): Promise<void> {
  await loadSimdMatMul();
  if (originalBatchMatMul) return;
  const original = tf.getKernel(tf.BatchMatMul, 'wasm');
  const transpose = tf.getKernel(tf.Transpose, 'wasm');
  if (!original || !transpose) {
    throw new Error(
      'patchWasmKernels: import @tensorflow/tfjs-backend-wasm first (no wasm BatchMatMul kernel)',
    );
  }
  originalBatchMatMul = original;
  transposeKernel = transpose.kernelFunc;
  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  tf.registerKernel({
    kernelName: tf.BatchMatMul,
    backendName: 'wasm',
    // The original kernel's setup binds its C function; ours binds lazily (the backend may already
    // be initialized, and then setup functions do not run again).
    setupFunc: original.setupFunc,
    disposeFunc: original.disposeFunc,
    kernelFunc: batchMatMul as unknown as tf.KernelFunc,
  });

  originalIdentity = tf.getKernel(tf.Identity, 'wasm');
  originalCast = tf.getKernel(tf.Cast, 'wasm');
  tf.unregisterKernel(tf.Identity, 'wasm');
  tf.registerKernel({ ...originalIdentity, kernelFunc: shareOr(originalIdentity.kernelFunc, () => true) });
  tf.unregisterKernel(tf.Cast, 'wasm');
  tf.registerKernel({
    ...originalCast,
    kernelFunc: shareOr(originalCast.kernelFunc, (x, attrs) => attrs.dtype === x.dtype),
  });
}

/** A kernel that returns its input's data (one more reference) when `same` holds, else runs `kernel`. */
function shareOr(
  kernel: tf.KernelFunc,
  same: (x: tf.TensorInfo, attrs: tf.NamedAttrMap) => boolean,
): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string' || !same(x, args.attrs ?? {})) return kernel(args);
    (args.backend as unknown as { incRef(dataId: tf.DataId): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/** Puts the stock kernels back (for before/after profiles). */
export function unpatchWasmKernels(): void {
  if (!originalBatchMatMul) return;
  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  tf.registerKernel(originalBatchMatMul);
  originalBatchMatMul = null;
  for (const original of [originalIdentity, originalCast]) {
    if (!original) continue;
    tf.unregisterKernel(original.kernelName, 'wasm');
    tf.registerKernel(original);
  }
  originalIdentity = null;
  originalCast = null;
}

function stateOf(backend: WasmBackendInternals): BackendState {
  let state = states.get(backend);
  if (state) return state;
  if (
    typeof backend.dataIdNextNumber !== 'number' ||
    typeof backend.wasm?.tfjs?.registerTensor !== 'function'
  ) {
    throw new Error('patchWasmKernels: unexpected tfjs-backend-wasm internals (expected version 4.22)');
  }
  const matMul = backend.wasm.cwrap(tf.BatchMatMul, null, [
    'number', // a_id
    'array', // a_shape
    'number', // a_shape.length
    'number', // b_id
    'array', // b_shape
    'number', // b_shape.length
    'number', // transpose_a
    'number', // transpose_b
    'number', // out_id
  ]) as unknown as MatMulC;
  const memory = backend.wasm.asm?.memory;
  const module = simdMatMulModule();
  if (!(memory instanceof WebAssembly.Memory) || !module) {
    throw new Error('patchWasmKernels: no wasm memory to run the SIMD kernel on (or it was not compiled)');
  }
  state = {
    matMul,
    transposed: new Map(),
    seenAsB: new WeakSet(),
    simd: instantiateSimdMatMul(module, memory),
  };
  states.set(backend, state);
  // Drop a cached transpose when its source's memory is freed (a variable was assigned, a weight
  // disposed). The engine calls `backend.disposeData`, so an instance property intercepts it.
  const disposeData = backend.disposeData.bind(backend);
  const cache = state.transposed;
  backend.disposeData = (dataId: tf.DataId, force?: boolean): boolean => {
    const freed = disposeData(dataId, force);
    if (freed) {
      const copy = cache.get(dataId);
      if (copy) {
        cache.delete(dataId);
        disposeData(copy.info.dataId, true);
      }
    }
    return freed;
  };
  return state;
}

// ---------------------------------------------------------------------------------------------
// The replacement BatchMatMul kernel.

interface BatchMatMulArgs {
  inputs: { a: tf.TensorInfo; b: tf.TensorInfo };
  backend: WasmBackendInternals;
  attrs: { transposeA: boolean; transposeB: boolean };
}

const size = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);
const as = (x: tf.TensorInfo, shape: number[]): tf.TensorInfo => ({
  dataId: x.dataId,
  shape,
  dtype: x.dtype,
});

function batchMatMul(args: BatchMatMulArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { a, b } = inputs;
  const { transposeA, transposeB } = attrs;
  const stock = (x: tf.TensorInfo, y: tf.TensorInfo, tA: boolean, tB: boolean) =>
    originalBatchMatMul!.kernelFunc({
      inputs: { a: x, b: y },
      backend: backend as unknown as tf.KernelBackend,
      attrs: { transposeA: tA, transposeB: tB },
    }) as tf.TensorInfo;

  const ra = a.shape.length;
  const rb = b.shape.length;
  const batchA = size(a.shape.slice(0, -2));
  const batchB = size(b.shape.slice(0, -2));
  const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kB = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  // Anything unusual goes to the stock kernel, which also raises the stock error messages.
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || k !== kB || m * n * k === 0) {
    return stock(a, b, transposeA, transposeB);
  }
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const outShape = [...outer, m, n];

  const simd = () => simdMatMul(a, b, transposeA, transposeB, [batchA, batchB, m, k, n], outShape, backend);
  let batch = batchA;
  let rows = m;
  if (batchA > 1 && batchB === 1 && !transposeA) {
    // [batch, m, k] · [k, n] is one [batch·m, k] · [k, n] product.
    batch = 1;
    rows = batchA * m;
  } else if (batchA !== batchB) {
    // One matrix against a batch of them: the SIMD kernel broadcasts it, as the stock loop does
    // (which also raises the stock error for batch sizes that do not broadcast).
    return simdEnabled && (batchA === 1 || batchB === 1) ? simd() : stock(a, b, transposeA, transposeB);
  }
  if (batch > 1) {
    // Every batched product, flags and all, runs in the SIMD kernel: it beat the views below at each
    // shape measured (file comment). Without it (CORGI_SIMD_MATMUL=0): the loop or the views.
    if (simdEnabled) return simd();
    if (m * k * n < VIEW_MIN_MACS || Math.min(m, n) < VIEW_MIN_SIDE)
      return stock(a, b, transposeA, transposeB);
  }

  const state = stateOf(backend);
  // Operands as stored: A is [batch, rows, k] (or [batch, k, m] when transposeA), B likewise.
  const A = as(a, transposeA ? [batch, k, m] : [batch, rows, k]);
  const B = as(b, transposeB ? [batch, n, k] : [batch, k, n]);
  const temps: tf.TensorInfo[] = [];
  const T = (x: tf.TensorInfo) => {
    const t = transpose3d(x, backend);
    temps.push(t);
    return t;
  };
  const product = (x: tf.TensorInfo, y: tf.TensorInfo) => {
    const out = x.shape[0] === 1 ? stock(x, y, false, false) : viewsMatMul(x, y, backend, state);
    return as(out, [x.shape[0]!, x.shape[1]!, y.shape[2]!]);
  };

  let out: tf.TensorInfo;
  if (!transposeA && !transposeB) {
    out = product(A, B);
  } else {
    const cachedBT = transposeB ? lookupTranspose(b, B, state) : undefined;
    // A `b` seen before (a weight, step after step) gets its transpose kept: count it as free.
    const reused = transposeB && (cachedBT !== undefined || state.seenAsB.has(b.dataId));
    if (transposeB) state.seenAsB.add(b.dataId);
    // direct: op(A)·op(B) with explicit transposes;  swapped: (op(B)ᵀ·op(A)ᵀ)ᵀ.
    const direct = (transposeA ? size(A.shape) : 0) + (transposeB && !reused ? size(B.shape) : 0);
    const swapped = (transposeB ? 0 : size(B.shape)) + (transposeA ? 0 : size(A.shape)) + batch * rows * n;
    if (direct <= swapped) {
      const right = transposeB ? (cachedBT ?? transposeMaybeKeep(b, B, reused, backend, state, temps)) : B;
      out = product(transposeA ? T(A) : A, right);
    } else {
      const outT = product(transposeB ? B : T(B), transposeA ? A : T(A)); // [batch, n, rows]
      temps.push(outT);
      out = transpose3d(outT, backend);
    }
  }
  for (const t of temps) backend.disposeData(t.dataId);
  return as(out, outShape);
}

/**
 * A batched product in the SIMD kernel (simd-matmul.ts), on the operands' memory in place. A batch
 * of 1 on either side is broadcast (batch stride 0). `nn` takes A transposed or not (it reads A one
 * scalar at a time, with strides) and needs B unflipped; `nt` is A·Bᵀ; Aᵀ·Bᵀ has A transposed first.
 */
function simdMatMul(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  [batchA, batchB, m, k, n]: number[],
  outShape: number[],
  backend: WasmBackendInternals,
): tf.TensorInfo {
  const { simd } = stateOf(backend);
  const batch = Math.max(batchA!, batchB!);
  const out = backend.makeOutput([batch, m!, n!], 'float32');
  let left = a;
  let temp: tf.TensorInfo | null = null;
  if (transposeA && transposeB) {
    temp = transpose3d(as(a, [batchA!, k!, m!]), backend); // [batchA, m, k]
    left = temp;
  }
  const offset = (x: tf.TensorInfo) => backend.dataIdMap.get(x.dataId)!.memoryOffset;
  const strideA = batchA === 1 ? 0 : m! * k! * 4;
  const strideB = batchB === 1 ? 0 : k! * n! * 4;
  if (transposeB) {
    simd.nt(offset(left), offset(b), offset(out), batch, m!, k!, n!, strideA, strideB);
  } else {
    const [rowStep, innerStep] = transposeA ? [4, m! * 4] : [k! * 4, 4];
    simd.nn(offset(a), offset(b), offset(out), batch, m!, k!, n!, rowStep, innerStep, strideA, strideB);
  }
  if (temp) backend.disposeData(temp.dataId);
  return as(out, outShape);
}

/** [batch, r, c] → [batch, c, r] with the wasm Transpose kernel. */
function transpose3d(x: tf.TensorInfo, backend: WasmBackendInternals): tf.TensorInfo {
  return transposeKernel!({
    inputs: { x },
    backend: backend as unknown as tf.KernelBackend,
    attrs: { perm: [0, 2, 1] },
  }) as tf.TensorInfo;
}

const shapeKey = (shape: readonly number[]) => shape.join(',');

/** A kept transpose of `b` (same data, same shape), if any. */
function lookupTranspose(
  source: tf.TensorInfo,
  B: tf.TensorInfo,
  state: BackendState,
): tf.TensorInfo | undefined {
  const hit = state.transposed.get(source.dataId);
  return hit && hit.key === shapeKey(B.shape) ? hit.info : undefined;
}

/** Transposes a `b` operand, keeping the copy (until the source is freed) when it is `reused`. */
function transposeMaybeKeep(
  source: tf.TensorInfo,
  B: tf.TensorInfo,
  reused: boolean,
  backend: WasmBackendInternals,
  state: BackendState,
  temps: tf.TensorInfo[],
): tf.TensorInfo {
  const copy = transpose3d(B, backend);
  if (reused && !state.transposed.has(source.dataId)) {
    state.transposed.set(source.dataId, { key: shapeKey(B.shape), info: copy });
  } else {
    temps.push(copy);
  }
  return copy;
}

/**
 * [batch, m, k] · [batch, k, n] as one XNNPACK call per matrix: each call gets tensor ids that
 * alias slices of the operands' and the output's wasm memory, released right after the call
 * (releasing also frees the XNNPACK operator cached on the `b` alias).
 */
function viewsMatMul(
  x: tf.TensorInfo,
  y: tf.TensorInfo,
  backend: WasmBackendInternals,
  state: BackendState,
): tf.TensorInfo {
  const [batch, m, k] = x.shape as [number, number, number];
  const n = y.shape[2]!;
  const out = backend.makeOutput([batch, m, n], 'float32');
  const xOffset = backend.dataIdMap.get(x.dataId)!.memoryOffset;
  const yOffset = backend.dataIdMap.get(y.dataId)!.memoryOffset;
  const outOffset = backend.dataIdMap.get(out.dataId)!.memoryOffset;
  const xShape = new Uint8Array(new Int32Array([1, m, k]).buffer);
  const yShape = new Uint8Array(new Int32Array([1, k, n]).buffer);
  const { registerTensor, disposeData } = backend.wasm.tfjs;
  for (let i = 0; i < batch; i++) {
    const xi = backend.dataIdNextNumber++;
    const yi = backend.dataIdNextNumber++;
    const oi = backend.dataIdNextNumber++;
    registerTensor(xi, m * k, xOffset + i * m * k * 4);
    registerTensor(yi, k * n, yOffset + i * k * n * 4);
    registerTensor(oi, m * n, outOffset + i * m * n * 4);
    state.matMul(xi, xShape, 3, yi, yShape, 3, 0, 0, oi);
    disposeData(xi);
    disposeData(yi);
    disposeData(oi);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Ops with their own gradients (any backend; written for wasm's slow paths).

/**
 * Rows of `weight` [V, D] picked by `ids` [N] → [N, D]. The gradient scatter-adds `dy` rows into a
 * [V, D] zero tensor with `ScatterNd` (which sums duplicate ids), since wasm lacks the
 * `UnsortedSegmentSum` kernel that `gather`'s own gradient needs.
 */
export function embeddingLookup(weight: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const [vocab, dim] = weight.shape;
  const n = ids.shape[0];
  const lookup = tf.customGrad((w, save) => {
    // Saved, not captured: the caller's tidy may dispose `ids` before the backward pass runs.
    (save as tf.GradSaveFunc)([tf.reshape(ids, [n, 1])]);
    return {
      value: tf.gather(w as tf.Tensor, ids),
      gradFunc: (dy: tf.Tensor, [rows]: tf.Tensor[]) => tf.scatterND(rows!, dy, [vocab, dim]),
    };
  });
  return lookup(weight) as tf.Tensor2D;
}

/**
 * Mean cross-entropy of `logits` [N, V] against integer `targets` [N], optionally weighted per row
 * (`weights` [N], e.g. a 0/1 mask: the result is Σ wᵢ·nllᵢ / Σ wᵢ). Only `logits` gets a gradient:
 * the weights are constants.
 *
 * Forward: p = softmax(logits) and log p_t = x_t − x_max + log(max p), exact because the largest
 * logit's probability max p = exp(x_max − logsumexp) is at least 1/V, so it never underflows.
 * That is one softmax and two row maxima instead of logSoftmax (4× the softmax's time in wasm).
 * Gradient: (p − onehot(t)) · wᵢ/Σw · dy, the onehot part written into p's copy by
 * `tensorScatterUpdate` instead of materializing a [N, V] one-hot.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights?: tf.Tensor1D): tf.Scalar {
  const [rows, vocab] = logits.shape;
  if (targets.shape[0] !== rows) {
    throw new Error(`crossEntropy: ${targets.shape[0]} targets for ${rows} rows of logits`);
  }
  if (weights && weights.shape[0] !== rows) {
    throw new Error(`crossEntropy: ${weights.shape[0]} weights for ${rows} rows of logits`);
  }
  const loss = tf.customGrad((x, save) => {
    const x2 = x as tf.Tensor2D;
    const rowIds = tf.range(0, rows, 1, 'int32');
    const p = tf.softmax(x2); // [N, V]
    const flat = tf.add(tf.mul(rowIds, tf.scalar(vocab, 'int32')), tf.cast(targets, 'int32')); // [N]
    const xTarget = tf.gather(tf.reshape(x2, [rows * vocab]), flat); // [N]
    const logpTarget = tf.add(tf.sub(xTarget, tf.max(x2, -1)), tf.log(tf.max(p, -1))); // [N]
    const rowWeight = weights
      ? tf.div(weights, tf.maximum(tf.sum(weights), tf.scalar(1e-12)))
      : tf.fill([rows], 1 / rows); // [N], sums to 1
    const value = tf.neg(tf.sum(tf.mul(logpTarget, rowWeight)));
    const indices = tf.stack([rowIds, tf.cast(targets, 'int32')], 1); // [N, 2]: (row, target)
    (save as tf.GradSaveFunc)([p, logpTarget, rowWeight, indices]); // everything the gradient reads
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [probs, logpT, w, indices] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.Tensor2D];
        const scale = tf.mul(w, dy); // [N]
        const scaled = tf.mul(probs, tf.reshape(scale, [rows, 1])); // [N, V]
        const atTarget = tf.mul(tf.sub(tf.exp(logpT), 1), scale); // (p_t − 1)·scale, [N]
        return tf.tensorScatterUpdate(scaled, indices, atTarget);
      },
    };
  });
  return loss(logits) as tf.Scalar;
}

/**
 * log p(targetᵢ) for each row of `logits` [N, V] → [N], with the same one-softmax forward as
 * `crossEntropy`; the gradient for an upstream dy [N] is dyᵢ·(onehot(tᵢ) − pᵢ). For objectives that
 * need per-token log-probabilities (policy gradients, KL to a reference model).
 */
export function tokenLogProbs(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [rows, vocab] = logits.shape;
  if (targets.shape[0] !== rows) {
    throw new Error(`tokenLogProbs: ${targets.shape[0]} targets for ${rows} rows of logits`);
  }
  const logProbs = tf.customGrad((x, save) => {
    const x2 = x as tf.Tensor2D;
    const rowIds = tf.range(0, rows, 1, 'int32');
    const p = tf.softmax(x2); // [N, V]
    const flat = tf.add(tf.mul(rowIds, tf.scalar(vocab, 'int32')), tf.cast(targets, 'int32')); // [N]
    const xTarget = tf.gather(tf.reshape(x2, [rows * vocab]), flat); // [N]
    const value = tf.add(tf.sub(xTarget, tf.max(x2, -1)), tf.log(tf.max(p, -1))); // [N]
    const indices = tf.stack([rowIds, tf.cast(targets, 'int32')], 1); // [N, 2]
    (save as tf.GradSaveFunc)([p, value, indices]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [probs, logpT, indices] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D];
        const scaled = tf.mul(probs, tf.reshape(tf.neg(dy), [rows, 1])); // −dy·p, [N, V]
        const atTarget = tf.mul(tf.sub(1, tf.exp(logpT)), dy); // dy·(1 − p_t), [N]
        return tf.tensorScatterUpdate(scaled, indices, atTarget);
      },
    };
  });
  return logProbs(logits) as tf.Tensor1D;
}
