/** Where a TensorFlow.js step spends its time, kernel by kernel (what `corgi bench` reports). */
import * as tf from '@tensorflow/tfjs-core';

/** One kernel's share of a profiled step. */
export interface KernelTime {
  kernel: string;
  ms: number;
  calls: number;
  /** Of the step's total kernel time. */
  share: number;
}

/**
 * One step under `tf.profile`: milliseconds per kernel, largest first, the `most` largest (scopes such
 * as customGrad's left out: their kernels are listed too), and the total kernel time.
 */
export async function profileKernels(
  step: () => unknown,
  most = 8,
): Promise<{ kernels: KernelTime[]; totalMs: number; count: number }> {
  const info = await tf.profile(() => {
    step();
    return [] as tf.Tensor[];
  });
  const byKernel = new Map<string, { ms: number; calls: number }>();
  let total = 0;
  for (const k of info.kernels) {
    if (!tf.getKernel(k.name, tf.getBackend())) continue;
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += ms;
    entry.calls += 1;
    byKernel.set(k.name, entry);
    total += ms;
  }
  const kernels = [...byKernel]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, most)
    .map(([kernel, { ms, calls }]) => ({
      kernel,
      ms: Math.round(ms * 10) / 10,
      calls,
      share: Math.round((ms / total) * 1000) / 1000,
    }));
  return { kernels, totalMs: total, count: info.kernels.length };
}
