/** Shared helpers for the policy tests: backend selection without log noise, fixture loading. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BackendName, selectBackend } from '../../src/policy/backend.ts';

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
