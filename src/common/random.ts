/**
 * The product's seeded randomness: task generators, pool and data orders, evaluation case picks,
 * minibatch orders, the tokenizer trainer's sample. Every draw comes from a generator created from
 * a seed *and* a name (`createRng(seed, 'sentiment', 'train')`), so one consumer's numbers never
 * depend on how many another drew: adding a task, or asking for a bigger pool, leaves the other
 * instances as they were. (The IFEval checker's CPython Mersenne Twister in text/python-random.ts is a
 * port for exact parity with Python's `random`, not a choice of generator.)
 */
import { randomBytes } from 'node:crypto';

/** A seeded source of uniform numbers in [0, 1) with the helpers the generators use. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** A whole number in [min, max], both included. */
  int(min: number, max: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A new array with the same elements in random order (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[];
  /** `k` distinct elements, in random order (k is clamped to the array's length). */
  sample<T>(items: readonly T[], k: number): T[];
}

/** 32-bit FNV-1a of a string: turns a seed and names into a generator state. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * A mulberry32 generator (Tommy Ettinger's public-domain 32-bit PRNG: fast, passes gjrand's
 * tests at this size, and its whole state is one integer) seeded from `parts`.
 *
 * @example createRng(7, 'num_planning', 'train').int(3, 12)
 */
export function createRng(...parts: (string | number)[]): Rng {
  return rngFromState(hashString(parts.join('\u0000')));
}

/** A mulberry32 generator started at a raw 32-bit state (`createRng` hashes its parts into one). */
export function rngFromState(seed: number): Rng {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  const shuffle = <T>(items: readonly T[]): T[] => {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };
  return {
    next,
    int,
    pick: (items) => {
      if (items.length === 0) throw new RangeError('pick: the array is empty');
      return items[Math.floor(next() * items.length)];
    },
    shuffle,
    sample: (items, k) => shuffle(items).slice(0, Math.max(0, k)),
  };
}

/** A fresh 32-bit seed from the operating system, for sampling when the caller gives none. */
export function randomSeed(): number {
  return randomBytes(4).readUInt32LE(0);
}
