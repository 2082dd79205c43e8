/**
 * AdamW's state (step count and first/second moments per parameter) as safetensors, so a resumed
 * run continues with exactly the optimizer it stopped with.
 *
 * Known shortcut: `AdamW` (training/lm/optim.ts) keeps its moments in a private map and has no
 * state-dict API yet, so this reads and fills that map through TypeScript's bracket-access escape
 * hatch. `AdamW.stateDict()` / `loadStateDict()` in optim.ts would replace both functions here.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type FloatTensor, parseSafetensors, serializeSafetensors } from '../../model/safetensors.ts';
import type { AdamW } from './optim.ts';

type Moments = Map<string, { m: tf.Variable; v: tf.Variable }>;

function momentsOf(optimizer: AdamW): Moments {
  // biome-ignore lint/complexity/useLiteralKeys: bracket access is how TypeScript allows reaching a private field
  return optimizer['moments'] as Moments;
}

/** `exp_avg.<param>` and `exp_avg_sq.<param>` tensors (torch's names), the step in the metadata. */
export function serializeOptimizerState(optimizer: AdamW): Uint8Array {
  const tensors = new Map<string, FloatTensor>();
  for (const [name, { m, v }] of momentsOf(optimizer)) {
    tensors.set(`exp_avg.${name}`, { shape: m.shape, data: m.dataSync() as Float32Array });
    tensors.set(`exp_avg_sq.${name}`, { shape: v.shape, data: v.dataSync() as Float32Array });
  }
  return serializeSafetensors(tensors, { format: 'corgi-adamw', step: String(optimizer.step) });
}

/** Restores what `serializeOptimizerState` wrote into a fresh `optimizer` over the same parameters. */
export function loadOptimizerState(optimizer: AdamW, bytes: Uint8Array): void {
  const { tensors, metadata } = parseSafetensors(bytes, 'optimizer.safetensors');
  const moments = momentsOf(optimizer);
  for (const { m, v } of moments.values()) tf.dispose([m, v]);
  moments.clear();
  for (const [name, param] of optimizer.params) {
    const m = tensors.get(`exp_avg.${name}`);
    const v = tensors.get(`exp_avg_sq.${name}`);
    if (!m && !v) continue; // never updated (no gradient yet)
    if (!m || !v) throw new Error(`optimizer.safetensors: incomplete moments for ${name}`);
    for (const t of [m, v]) {
      if (t.shape.length !== param.shape.length || t.shape.some((d, i) => d !== param.shape[i])) {
        throw new Error(
          `optimizer.safetensors: ${name} moments are [${t.shape}], parameter is [${param.shape}]`,
        );
      }
    }
    moments.set(name, { m: toVariable(m), v: toVariable(v) });
  }
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0)
    throw new Error(`optimizer.safetensors: bad step "${metadata.step}"`);
  optimizer.step = step;
}

/** A non-trainable variable holding `t` (the variable keeps its own copy). */
function toVariable(t: FloatTensor): tf.Variable {
  const value = tf.tensor(t.data, t.shape, 'float32');
  const variable = tf.variable(value, false);
  value.dispose();
  return variable;
}
