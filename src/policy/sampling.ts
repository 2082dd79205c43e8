/**
 * Sampling options with their defaults applied and checked once, for every engine
 * (`SamplingOptions` in types.ts documents each field).
 */
import { randomBytes } from 'node:crypto';
import type { SamplingOptions } from './types.ts';

/** The defaults `SamplingOptions` documents. */
export const SAMPLING_DEFAULTS = { temperature: 0.7, topK: 0, topP: 1, maxTokens: 128 } as const;

export interface ResolvedSampling {
  temperature: number;
  topK: number;
  topP: number;
  maxTokens: number;
  stop: string[];
  seed: number | undefined;
}

/**
 * Applies the defaults and refuses values no engine can honour.
 * @throws RangeError naming the field and the value
 */
export function resolveSampling(options: SamplingOptions = {}): ResolvedSampling {
  const temperature = options.temperature ?? SAMPLING_DEFAULTS.temperature;
  const topK = options.topK ?? SAMPLING_DEFAULTS.topK;
  const topP = options.topP ?? SAMPLING_DEFAULTS.topP;
  const maxTokens = options.maxTokens ?? SAMPLING_DEFAULTS.maxTokens;
  if (!(temperature >= 0 && Number.isFinite(temperature)))
    throw new RangeError(`temperature must be ≥ 0, got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`topK must be an integer ≥ 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
  if (!Number.isInteger(maxTokens) || maxTokens < 0)
    throw new RangeError(`maxTokens must be an integer ≥ 0, got ${maxTokens}`);
  if (options.seed !== undefined && !Number.isFinite(options.seed))
    throw new RangeError(`seed must be a finite number, got ${options.seed}`);
  return { temperature, topK, topP, maxTokens, stop: options.stop ?? [], seed: options.seed };
}

/** A random seed for requests that set none. */
export function randomSeed(): number {
  return randomBytes(4).readUInt32LE(0);
}
