/** Shared helpers for the policy tests: backend selection without log noise, fixture loading. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaModel } from '../../src/model/llama.ts';
import { type BackendName, selectBackend } from '../../src/model/tfjs/backend.ts';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'tiny-llama');

export interface LlamaFixture {
  input_ids: number[][];
  /** PyTorch float64 logits, [B][T][V]. */
  logits: number[][][];
  greedy_new_tokens: number[][];
}

export function readFixture(variant: 'tied' | 'untied'): LlamaFixture {
  return JSON.parse(readFileSync(join(FIXTURES, variant, 'expected.json'), 'utf8')) as LlamaFixture;
}

export async function useBackend(name: BackendName): Promise<void> {
  await selectBackend({ preferred: name, log: () => {} });
}

/** Largest absolute difference between two equally long number lists. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/**
 * Greedy decoding by full-sequence forwards (the training forward, no cache): `newTokens` argmax
 * tokens after each prompt, the prompts all the same length. Returns only the new tokens. Slow
 * (quadratic) and exact: what parity tests compare llama.cpp and PyTorch against.
 */
export function greedyByForward(model: LlamaModel, prompts: number[][], newTokens: number): number[][] {
  const rows = prompts.map((p) => [...p]);
  const V = model.config.vocab_size;
  for (let step = 0; step < newTokens; step++) {
    const T = rows[0]!.length;
    const logits = tf.tidy(() => model.forward(tf.tensor2d(rows, [rows.length, T], 'int32')).dataSync());
    for (const [b, row] of rows.entries()) {
      const last = logits.subarray((b * T + T - 1) * V, (b * T + T) * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (last[v]! > last[best]!) best = v;
      row.push(best);
    }
  }
  return rows.map((row, b) => row.slice(prompts[b]!.length));
}
