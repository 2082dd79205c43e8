import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  crossEntropy,
  embeddingLookup,
  setSimdMatMul,
  tokenLogProbs,
  VIEW_MIN_MACS,
  VIEW_MIN_SIDE,
  wasmKernelsPatched,
} from '../../../src/model/tfjs/wasm-kernels.ts';
import { maxAbsDiff, useBackend } from '../../policy/helpers.ts';

// The patched wasm kernels and the hand-written gradients must agree with the stock cpu backend
// (which runs tfjs's own kernels and gradients) on the same inputs.

/** Deterministic values in [-1, 1) so both backends see identical inputs. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

interface Case {
  name: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
}

const cases: Case[] = [];
for (const [tA, tB] of [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const) {
  const flags = `transposeA=${tA} transposeB=${tB}`;
  // 2-D (one XNNPACK call); the shapes make the two transpose plans differ in cost both ways.
  cases.push({
    name: `2-D 24×40·40×8, ${flags}`,
    a: tA ? [40, 24] : [24, 40],
    b: tB ? [8, 40] : [40, 8],
    transposeA: tA,
    transposeB: tB,
  });
  cases.push({
    name: `2-D 6×32·32×50, ${flags}`,
    a: tA ? [32, 6] : [6, 32],
    b: tB ? [50, 32] : [32, 50],
    transposeA: tA,
    transposeB: tB,
  });
  // Batched, above the per-matrix threshold (XNNPACK per matrix over memory views) and below it.
  cases.push({
    name: `4-D 2·3×(32×32·32×32), ${flags}`,
    a: [2, 3, 32, 32],
    b: [2, 3, 32, 32],
    transposeA: tA,
    transposeB: tB,
  });
  // Enough multiply-adds but only 2 rows: a decoding step's attention shape, kept in the loop.
  cases.push({
    name: `3-D 4×(2×48·48×200), ${flags}`,
    a: tA ? [4, 48, 2] : [4, 2, 48],
    b: tB ? [4, 200, 48] : [4, 48, 200],
    transposeA: tA,
    transposeB: tB,
  });
  cases.push({
    name: `3-D 5×(4×3·3×2), ${flags}`,
    a: tA ? [5, 3, 4] : [5, 4, 3],
    b: tB ? [5, 2, 3] : [5, 3, 2],
    transposeA: tA,
    transposeB: tB,
  });
}
// A batch of rows times one shared matrix (folded into one 2-D product). tfjs's own BatchMatMul
// gradient does not reduce broadcast batch dimensions, so only values are compared for these.
const broadcastCases: Case[] = [
  { name: '[3, 16, 8]·[8, 12]', a: [3, 16, 8], b: [8, 12], transposeA: false, transposeB: false },
  { name: '[3, 16, 8]·[12, 8]ᵀ', a: [3, 16, 8], b: [12, 8], transposeA: false, transposeB: true },
];

interface MatMulResult {
  y: Float32Array;
  da: Float32Array;
  db: Float32Array;
}

function matMulWithGrads(c: Case): MatMulResult {
  return tf.tidy(() => {
    const a = tf.tensor(
      values(
        c.a.reduce((p, d) => p * d, 1),
        1,
      ),
      c.a,
    );
    const b = tf.tensor(
      values(
        c.b.reduce((p, d) => p * d, 1),
        2,
      ),
      c.b,
    );
    const f = (x: tf.Tensor, w: tf.Tensor) => tf.matMul(x, w, c.transposeA, c.transposeB);
    const y = f(a, b);
    // A non-uniform upstream gradient, so every element's gradient differs.
    const dy = tf.tensor(values(y.size, 3), y.shape);
    const [da, db] = tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.mul(f(x, w), dy)))([a, b]);
    return {
      y: y.dataSync() as Float32Array,
      da: da!.dataSync() as Float32Array,
      db: db!.dataSync() as Float32Array,
    };
  });
}

describe('the patched wasm BatchMatMul', () => {
  it('is registered when the wasm backend is selected', async () => {
    await useBackend('wasm');
    expect(wasmKernelsPatched()).toBe(true);
    // Batched products run the SIMD kernel; with it off (CORGI_SIMD_MATMUL=0) they take these routes:
    expect(32 * 32 * 32).toBeGreaterThanOrEqual(VIEW_MIN_MACS); // the 4-D cases take the views path
    expect(4 * 3 * 2).toBeLessThan(VIEW_MIN_MACS); // the small 3-D cases stay in the wasm loop
    expect(2 * 48 * 200).toBeGreaterThanOrEqual(VIEW_MIN_MACS); // so does 2×48·48×200: 2 < VIEW_MIN_SIDE rows
    expect(2).toBeLessThan(VIEW_MIN_SIDE);
  });

  const withSimd = [true, false].flatMap((simd) => cases.map((c) => ({ ...c, simd })));
  it.each(withSimd)('matches cpu on values and gradients: $name (SIMD kernel: $simd)', async (c) => {
    await useBackend('cpu');
    const want = matMulWithGrads(c);
    await useBackend('wasm');
    const previous = setSimdMatMul(c.simd);
    try {
      const got = matMulWithGrads(c);
      expect(maxAbsDiff(got.y, want.y)).toBeLessThan(1e-4);
      expect(maxAbsDiff(got.da, want.da)).toBeLessThan(1e-4);
      expect(maxAbsDiff(got.db, want.db)).toBeLessThan(1e-4);
    } finally {
      setSimdMatMul(previous);
    }
  });

  it.each(broadcastCases)('matches cpu on a broadcast product: $name', async (c) => {
    const run = () =>
      tf.tidy(() => {
        const a = tf.tensor(
          values(
            c.a.reduce((p, d) => p * d, 1),
            1,
          ),
          c.a,
        );
        const b = tf.tensor(
          values(
            c.b.reduce((p, d) => p * d, 1),
            2,
          ),
          c.b,
        );
        return tf.matMul(a, b, c.transposeA, c.transposeB).dataSync() as Float32Array;
      });
    await useBackend('cpu');
    const want = run();
    await useBackend('wasm');
    expect(maxAbsDiff(run(), want)).toBeLessThan(1e-5);
  });

  it('keeps a transposed copy of a reused weight only while the weight lives', async () => {
    await useBackend('wasm');
    const backend = tf.backend();
    const before = backend.numDataIds();
    const w = tf.tensor2d(values(64 * 32, 4), [64, 32]);
    const x = tf.tensor2d(values(5 * 32, 5), [5, 32]);
    const want = await (async () => {
      await useBackend('cpu');
      const r = tf.matMul(
        tf.tensor2d(values(5 * 32, 5), [5, 32]),
        tf.tensor2d(values(64 * 32, 4), [64, 32]),
        false,
        true,
      );
      const data = r.dataSync().slice();
      await useBackend('wasm');
      return data;
    })();
    for (let i = 0; i < 4; i++) {
      const y = tf.matMul(x, w, false, true); // from the second call on, wᵀ comes from the cache
      expect(maxAbsDiff(y.dataSync(), want)).toBeLessThan(1e-5);
      y.dispose();
    }
    tf.dispose([w, x]);
    expect(backend.numDataIds()).toBe(before); // the cached copy went with w
  });
});

describe('the SIMD batched matmul kernel', () => {
  /** tf.matMul of deterministic operands on the current backend → values (and the output shape). */
  const product = (c: Case) =>
    tf.tidy(() => {
      const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);
      const a = tf.tensor(values(size(c.a), 31), c.a);
      const b = tf.tensor(values(size(c.b), 32), c.b);
      const y = tf.matMul(a, b, c.transposeA, c.transposeB);
      return { shape: y.shape, y: y.dataSync() as Float32Array };
    });

  /** The stock computations: the cpu backend, and the wasm backend's own loop (SIMD kernel off). */
  async function references(c: Case) {
    await useBackend('cpu');
    const cpu = product(c);
    await useBackend('wasm');
    const previous = setSimdMatMul(false);
    try {
      return { cpu, loop: product(c) };
    } finally {
      setSimdMatMul(previous);
    }
  }

  /** Largest |x − y| / max(1, |y|). */
  const maxRelDiff = (x: Float32Array, y: Float32Array) => {
    expect(x.length).toBe(y.length);
    let max = 0;
    for (let i = 0; i < x.length; i++)
      max = Math.max(max, Math.abs(x[i]! - y[i]!) / Math.max(1, Math.abs(y[i]!)));
    return max;
  };

  const shaped = (
    name: string,
    a: number[],
    b: number[],
    transposeA: boolean,
    transposeB: boolean,
  ): Case => ({
    name,
    a,
    b,
    transposeA,
    transposeB,
  });
  // Sizes that hit every block of both loops: rows in pairs and an odd one, 16- and 4-column vector
  // blocks and scalar columns (n = 37 = 2·16 + 4 + 1), k not a multiple of 4 (scalar tail of `nt`).
  const simdCases: Case[] = [
    // One decoding step's attention at batch 2 (KV = 2 heads, G·T = 2 query rows, hd = 48, 131 keys).
    shaped('QKᵀ [2,2,2,48]·[2,2,131,48]ᵀ', [2, 2, 2, 48], [2, 2, 131, 48], false, true),
    shaped('P·V [2,2,2,131]·[2,2,131,48]', [2, 2, 2, 131], [2, 2, 131, 48], false, false),
    ...(
      [
        [false, false],
        [false, true],
        [true, false],
        [true, true],
      ] as const
    ).flatMap(([tA, tB]) => {
      const flags = `transposeA=${tA} transposeB=${tB}`;
      const A = (batch: number[], m: number, k: number) => [...batch, ...(tA ? [k, m] : [m, k])];
      const B = (batch: number[], k: number, n: number) => [...batch, ...(tB ? [n, k] : [k, n])];
      return [
        shaped(`3×(5×19·19×37), ${flags}`, A([3], 5, 19), B([3], 19, 37), tA, tB),
        shaped(`2×(1×1·1×1), ${flags}`, A([2], 1, 1), B([2], 1, 1), tA, tB),
        shaped(`2×3×(7×6·6×5), ${flags}`, A([2, 3], 7, 6), B([2, 3], 6, 5), tA, tB),
        shaped(`4×(2×64·64×3), ${flags}`, A([4], 2, 64), B([4], 64, 3), tA, tB),
        // One matrix broadcast against a batch, on either side (batch stride 0 in the kernel).
        shaped(`(3×9)·4×(9×6), ${flags}`, A([], 3, 9), B([4], 9, 6), tA, tB),
        shaped(`1×(3×9)·4×(9×6), ${flags}`, A([1], 3, 9), B([4], 9, 6), tA, tB),
        shaped(`2×2×(3×9)·(9×6), ${flags}`, A([2, 2], 3, 9), B([], 9, 6), tA, tB),
      ];
    }),
  ];

  it.each(simdCases)('matches the cpu backend and the stock loop: $name', async (c) => {
    const want = await references(c);
    const got = product(c);
    expect(got.shape).toEqual(want.cpu.shape);
    expect(maxRelDiff(got.y, want.cpu.y)).toBeLessThan(1e-5);
    expect(maxRelDiff(got.y, want.loop.y)).toBeLessThan(1e-5);
  });

  it('runs instead of the stock loop (its sums are ordered differently, so some bits differ)', async () => {
    // Guards against the cases above passing because the kernel was never reached.
    const c = simdCases[0]!;
    const want = await references(c);
    const got = product(c);
    expect(got.y).not.toEqual(want.loop.y);
  });

  it('keeps working on the backend memory after it grows', async () => {
    const c = simdCases[1]!;
    const want = await references(c);
    const before = product(c); // the kernel is instantiated on the memory by now
    const backend = tf.backend() as unknown as { wasm: { asm: { memory: WebAssembly.Memory } } };
    const bytes = backend.wasm.asm.memory.buffer.byteLength;
    const big = tf.zeros([bytes / 4 + 1024]); // more than the memory holds: it must grow
    expect(backend.wasm.asm.memory.buffer.byteLength).toBeGreaterThan(bytes);
    const after = product(c);
    big.dispose();
    expect(maxRelDiff(before.y, want.cpu.y)).toBeLessThan(1e-5);
    expect(maxRelDiff(after.y, want.cpu.y)).toBeLessThan(1e-5);
  });
});

describe('crossEntropy', () => {
  const rows = 12;
  const vocab = 37;
  const targetIds = Array.from({ length: rows }, (_, i) => (i * 7 + 3) % vocab);
  const rowWeights = Array.from({ length: rows }, (_, i) => (i % 3 === 0 ? 0 : 1 + i / 10));

  /** The stock formulation (logSoftmax and its gradient) on cpu. */
  function stock(weighted: boolean) {
    return tf.tidy(() => {
      const logits = tf.tensor2d(values(rows * vocab, 9), [rows, vocab]).mul(4);
      const f = (x: tf.Tensor) => {
        const nll = tf.neg(
          tf.sum(tf.mul(tf.logSoftmax(x), tf.oneHot(tf.tensor1d(targetIds, 'int32'), vocab)), -1),
        );
        if (!weighted) return tf.mean(nll);
        const w = tf.tensor1d(rowWeights);
        return tf.div(tf.sum(tf.mul(nll, w)), tf.sum(w));
      };
      const { value, grad } = tf.valueAndGrad(f)(logits);
      return { loss: value.dataSync()[0]!, grad: grad.dataSync() as Float32Array };
    });
  }

  function ours(weighted: boolean) {
    return tf.tidy(() => {
      const logits = tf.tensor2d(values(rows * vocab, 9), [rows, vocab]).mul(4);
      const targets = tf.tensor1d(targetIds, 'int32');
      const w = weighted ? tf.tensor1d(rowWeights) : undefined;
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => crossEntropy(x as tf.Tensor2D, targets, w))(
        logits,
      );
      return { loss: value.dataSync()[0]!, grad: grad.dataSync() as Float32Array };
    });
  }

  it.each([false, true])(
    'matches logSoftmax on cpu in value and gradient (weighted rows: %s)',
    async (weighted) => {
      await useBackend('cpu');
      const want = stock(weighted);
      for (const backend of ['cpu', 'wasm'] as const) {
        await useBackend(backend);
        const got = ours(weighted);
        expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-5);
        expect(maxAbsDiff(got.grad, want.grad)).toBeLessThan(1e-6);
      }
    },
  );

  it('tokenLogProbs matches logSoftmax at the targets, in value and gradient', async () => {
    const upstream = Array.from({ length: rows }, (_, i) => (i % 4) - 1.5);
    const run = (custom: boolean) =>
      tf.tidy(() => {
        const logits = tf.tensor2d(values(rows * vocab, 9), [rows, vocab]).mul(4);
        const targets = tf.tensor1d(targetIds, 'int32');
        const f = (x: tf.Tensor) =>
          custom
            ? tokenLogProbs(x as tf.Tensor2D, targets)
            : tf.sum(tf.mul(tf.logSoftmax(x), tf.oneHot(targets, vocab)), -1);
        const y = f(logits);
        const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(f(x), tf.tensor1d(upstream))))(logits);
        return { y: y.dataSync() as Float32Array, grad: grad.dataSync() as Float32Array };
      });
    await useBackend('cpu');
    const want = run(false);
    await useBackend('wasm');
    const got = run(true);
    expect(maxAbsDiff(got.y, want.y)).toBeLessThan(1e-5);
    expect(maxAbsDiff(got.grad, want.grad)).toBeLessThan(1e-5);
  });

  it('stays finite when the target has a vanishing probability', async () => {
    await useBackend('wasm');
    const loss = tf.tidy(() => {
      const logits = tf.tensor2d([[0, 200, -200]]);
      return crossEntropy(logits, tf.tensor1d([2], 'int32')).dataSync()[0]!;
    });
    expect(loss).toBeCloseTo(400, 3);
  });
});

describe('the custom gradients', () => {
  it('survive a tidy that disposes their integer inputs before the backward pass', async () => {
    await useBackend('wasm');
    const table = tf.tensor2d(values(5 * 3, 21), [5, 3]);
    const logits = tf.tensor2d(values(4 * 5, 22), [4, 5]);
    // The ids and targets are made (and disposed) inside the tidy; the gradients run after it.
    const dTable = tf.grad((w: tf.Tensor) =>
      tf.tidy(() => tf.sum(embeddingLookup(w as tf.Tensor2D, tf.tensor1d([4, 0, 4], 'int32')))),
    )(table);
    const dLogits = tf.grad((x: tf.Tensor) =>
      tf.tidy(() => crossEntropy(x as tf.Tensor2D, tf.tensor1d([1, 2, 3, 4], 'int32'))),
    )(logits);
    expect(Array.from(dTable.dataSync().slice(12))).toEqual([2, 2, 2]); // id 4 twice
    expect(dLogits.shape).toEqual([4, 5]);
    tf.dispose([table, logits, dTable, dLogits]);
  });
});

describe('embeddingLookup', () => {
  const vocab = 11;
  const dim = 6;
  const ids = [3, 1, 3, 10, 0, 3, 7]; // repeated ids: their gradients must add up

  function lookupGrad(custom: boolean) {
    return tf.tidy(() => {
      const table = tf.tensor2d(values(vocab * dim, 12), [vocab, dim]);
      const idx = tf.tensor1d(ids, 'int32');
      const dy = tf.tensor2d(values(ids.length * dim, 13), [ids.length, dim]);
      const f = (w: tf.Tensor) =>
        tf.sum(tf.mul(custom ? embeddingLookup(w as tf.Tensor2D, idx) : tf.gather(w, idx), dy));
      const { value, grad } = tf.valueAndGrad(f)(table);
      return { value: value.dataSync()[0]!, grad: grad.dataSync() as Float32Array };
    });
  }

  it("has gather's value and gradient (stock gather on cpu), on wasm where gather's own gradient fails", async () => {
    await useBackend('cpu');
    const want = lookupGrad(false);
    await useBackend('wasm');
    expect(() => lookupGrad(false)).toThrow(); // no UnsortedSegmentSum kernel in wasm
    const got = lookupGrad(true);
    expect(Math.abs(got.value - want.value)).toBeLessThan(1e-5);
    expect(maxAbsDiff(got.grad, want.grad)).toBeLessThan(1e-6);
  });
});
