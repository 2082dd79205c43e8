/**
 * AdamW (Loshchilov & Hutter, decoupled weight decay) with global-norm gradient clipping, as
 * `torch.optim.AdamW` + `torch.nn.utils.clip_grad_norm_` compute them:
 *
 *   g ← g · min(1, maxGradNorm / (‖g‖₂ + 1e-6))          over all parameters together
 *   m ← β₁m + (1−β₁)g,   v ← β₂v + (1−β₂)g²
 *   p ← p − lr·wd·p − lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)
 *
 * Weight decay applies only to matrices (rank ≥ 2): not to RMSNorm gains, as in nanoGPT's
 * `configure_optimizers`.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AdamWOptions {
  /** @default 3e-4 */
  lr?: number;
  /** @default 0.9 */
  beta1?: number;
  /** nanoGPT's 0.95 rather than torch's 0.999: steadier for small batches. @default 0.95 */
  beta2?: number;
  /** @default 1e-8 */
  eps?: number;
  /** Decoupled decay, matrices only. @default 0.1 */
  weightDecay?: number;
  /** Clip the global gradient norm to this; `Infinity` disables clipping. @default 1.0 */
  maxGradNorm?: number;
}

export interface StepResult {
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
}

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly maxGradNorm: number;
  /** Steps taken (t in the bias corrections). */
  step = 0;
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();

  /** `params`: name → variable, the names matching the keys of the gradients passed to `apply`. */
  constructor(
    readonly params: Map<string, tf.Variable>,
    options: AdamWOptions = {},
  ) {
    this.lr = options.lr ?? 3e-4;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.95;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.1;
    this.maxGradNorm = options.maxGradNorm ?? 1.0;
  }

  /**
   * One update from `grads` (name → gradient; parameters without one are left alone). Does not
   * dispose the gradients.
   */
  apply(grads: Map<string, tf.Tensor>): StepResult {
    for (const name of grads.keys()) {
      if (!this.params.has(name)) throw new Error(`AdamW: gradient for unknown parameter ${name}`);
    }
    this.step += 1;
    const t = this.step;
    const { beta1, beta2, eps, lr } = this;
    // Bias corrections folded into the step size: lr·√(1−β₂ᵗ)/(1−β₁ᵗ), with ε scaled to match.
    const stepSize = (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
    const epsHat = eps * Math.sqrt(1 - beta2 ** t);

    const gradNorm = tf.tidy(() => {
      const squares = [...grads.values()].map((g) => tf.sum(tf.square(g)));
      return tf.sqrt(tf.addN(squares)).dataSync()[0]!;
    });
    const clip = Number.isFinite(this.maxGradNorm) ? Math.min(1, this.maxGradNorm / (gradNorm + 1e-6)) : 1;

    tf.tidy(() => {
      for (const [name, rawGrad] of grads) {
        const p = this.params.get(name)!;
        const g = clip < 1 ? tf.mul(rawGrad, clip) : rawGrad;
        let state = this.moments.get(name);
        if (!state) {
          state = { m: tf.variable(tf.zerosLike(p), false), v: tf.variable(tf.zerosLike(p), false) };
          this.moments.set(name, state);
        }
        const m = tf.add(tf.mul(state.m, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(state.v, beta2), tf.mul(tf.square(g), 1 - beta2));
        state.m.assign(m);
        state.v.assign(v);
        const decayed = p.rank >= 2 && this.weightDecay > 0 ? tf.mul(p, 1 - lr * this.weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, tf.add(tf.sqrt(v), epsHat)), stepSize)));
      }
    });
    return { gradNorm };
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }
}

export interface LrScheduleOptions {
  /** The learning rate reached at the end of warmup. */
  peakLr: number;
  /** Steps of linear warmup from near 0 to `peakLr`. @default 0 */
  warmupSteps?: number;
  /** Step at which decay ends; later steps stay at `minLr`. */
  totalSteps: number;
  /** Floor of the decay (nanoGPT uses peakLr / 10). @default 0 */
  minLr?: number;
  /** Shape of the decay after warmup. @default 'cosine' */
  decay?: 'cosine' | 'linear';
}

/**
 * Warmup then decay, as nanoGPT's `get_lr`: 1) linear warmup, peakLr·(step+1)/(warmupSteps+1), so
 * step 0 is not wasted at lr 0; 2) after `totalSteps`, minLr; 3) in between, cosine (or linear)
 * decay from peakLr to minLr. Steps count from 0: set `optimizer.lr = schedule(optimizer.step)`
 * before each `apply`.
 */
export function createLrSchedule(options: LrScheduleOptions): (step: number) => number {
  const { peakLr, warmupSteps = 0, totalSteps, minLr = 0, decay = 'cosine' } = options;
  if (!(peakLr > 0)) throw new RangeError(`peakLr must be positive, got ${peakLr}`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0)
    throw new RangeError(`warmupSteps must be an integer ≥ 0, got ${warmupSteps}`);
  if (!Number.isInteger(totalSteps) || totalSteps < warmupSteps)
    throw new RangeError(`totalSteps (${totalSteps}) must be an integer ≥ warmupSteps (${warmupSteps})`);
  if (!(minLr >= 0 && minLr <= peakLr)) throw new RangeError(`minLr must be in [0, peakLr], got ${minLr}`);
  return (step: number) => {
    if (step < warmupSteps) return (peakLr * (step + 1)) / (warmupSteps + 1);
    if (step >= totalSteps) return minLr;
    const progress = (step - warmupSteps) / (totalSteps - warmupSteps); // 0 → 1
    const coefficient = decay === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
    return minLr + coefficient * (peakLr - minLr);
  };
}
