/**
 * The model `npm start` serves: `models/base`, built by `corgi pretrain` (its command and budget
 * are in models/base/training_summary.json). It must load, pass its checksums and answer on llama.cpp.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChecksums } from '../../src/model/checkpoint.ts';
import type { LlamaCppPolicy } from '../../src/policy/llama-cpp-policy.ts';
import { loadBuiltinModel } from '../support/builtin-model-server.ts';

const BASE = fileURLToPath(new URL('../../models/base', import.meta.url));

describe('the shipped base model (models/base)', () => {
  let policy: LlamaCppPolicy;
  beforeAll(async () => {
    policy = await loadBuiltinModel();
  });
  afterAll(async () => {
    await policy?.dispose();
  });

  it('is small, checksummed and records how it was trained', async () => {
    await verifyChecksums(BASE);
    const megabytes = statSync(join(BASE, 'model.safetensors')).size / 2 ** 20;
    expect(megabytes).toBeLessThan(50);
    const summary = JSON.parse(readFileSync(join(BASE, 'training_summary.json'), 'utf8'));
    expect(summary.seed).toBe(0);
    expect(policy.version).toBe('base');
  });

  it('answers an instruction with text, token ids and log-probs', async () => {
    const stream = policy.generate([{ role: 'user', content: 'Write a sentence about a dog.' }], {
      temperature: 0,
      maxTokens: 16,
    });
    let streamed = '';
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        expect(next.value.text).toBe(streamed);
        expect(next.value.tokenIds.length).toBeGreaterThan(0);
        expect(next.value.logprobs).toHaveLength(next.value.tokenIds.length);
        break;
      }
      streamed += next.value.text;
    }
    expect(streamed.trim().length).toBeGreaterThan(0);
  });
});
