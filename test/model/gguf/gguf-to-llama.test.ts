import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, loadCheckpoint } from '../../../src/model/checkpoint.ts';
import { parseLlamaConfig } from '../../../src/model/config.ts';
import { llama3RopeFactors, writeLlamaGguf } from '../../../src/model/gguf/checkpoint-to-gguf.ts';
import { fitLlama3RopeScaling } from '../../../src/model/gguf/gguf-to-llama.ts';
import { permuteRopeRows, unpermuteRopeRows } from '../../../src/model/gguf/llama-tensor-names.ts';
import { writeLoraAdapterGguf } from '../../../src/model/gguf/lora-to-gguf.ts';
import { gguf, writeGguf } from '../../../src/model/gguf/writer.ts';
import { attachLora } from '../../../src/model/lora.ts';
import { FIXTURES, useBackend } from '../../policy/helpers.ts';
import { tinyTokenizer } from './tiny-tokenizer.ts';

const dir = mkdtempSync(join(tmpdir(), 'corgi-gguf-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fitLlama3RopeScaling', () => {
  it.each([
    ['Llama 3.2 (many band frequencies)', { theta: 500000, hd: 64, factor: 32, low: 1, high: 4, L: 8192 }],
    ['a band of one frequency', { theta: 500, hd: 4, factor: 8, low: 1, high: 4, L: 16 }],
    ['no band frequency', { theta: 10000, hd: 8, factor: 4, low: 1, high: 1.01, L: 64 }],
  ])('recovers scaling that gives the same factors: %s', (_, p) => {
    const base = parseLlamaConfig({
      vocab_size: 8,
      hidden_size: p.hd,
      intermediate_size: 8,
      num_hidden_layers: 1,
      num_attention_heads: 1,
      rope_theta: p.theta,
    });
    const scaled = {
      ...base,
      rope_scaling: {
        rope_type: 'llama3' as const,
        factor: p.factor,
        low_freq_factor: p.low,
        high_freq_factor: p.high,
        original_max_position_embeddings: p.L,
      },
    };
    const factors = llama3RopeFactors(scaled)!;
    const fitted = fitLlama3RopeScaling(base, factors, 'x.gguf');
    expect(fitted.rope_scaling?.factor).toBe(p.factor);
    const again = llama3RopeFactors(fitted)!;
    for (let j = 0; j < factors.length; j++) expect(again[j]).toBeCloseTo(factors[j]!, 5);
  });

  it('refuses factors no Llama 3 scaling gives', () => {
    const base = parseLlamaConfig({
      vocab_size: 8,
      hidden_size: 8,
      intermediate_size: 8,
      num_hidden_layers: 1,
      num_attention_heads: 1,
    });
    expect(() => fitLlama3RopeScaling(base, Float32Array.of(4, 1, 4, 1), 'x.gguf')).toThrow(
      'rope_freqs.weight does not follow Llama 3 rope scaling',
    );
  });
});

describe('permuteRopeRows', () => {
  it('interleaves each head’s halves, and unpermuteRopeRows undoes it', () => {
    // 2 heads of hd 4, one column: HF rows [a0 a1 b0 b1 | c0 c1 d0 d1] → [a0 b0 a1 b1 | c0 d0 c1 d1].
    const rows = Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7);
    expect([...permuteRopeRows(rows, 2, 1)]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    expect([...unpermuteRopeRows(permuteRopeRows(rows, 2, 1), 2, 1)]).toEqual([...rows]);
  });
});

describe('loading a GGUF that is not a Llama model', () => {
  let modelPath: string;
  beforeAll(async () => {
    await useBackend('cpu');
    const model = await loadCheckpoint(join(FIXTURES, 'untied'));
    modelPath = join(dir, 'tiny.gguf');
    await writeLlamaGguf(model, tinyTokenizer(), modelPath);
    attachLora(model, { r: 2, alpha: 2, targetModules: ['q_proj'] });
    await writeLoraAdapterGguf(model, join(dir, 'adapter.gguf'));
    model.dispose();
  });

  it('refuses another architecture by name', async () => {
    const path = join(dir, 'gemma.gguf');
    await writeGguf(path, { 'general.architecture': gguf.str('gemma') }, []);
    await expect(loadCheckpoint(path)).rejects.toThrow(
      'general.architecture is "gemma"; only "llama" loads here',
    );
  });

  it('refuses an adapter file, naming the missing key', async () => {
    const error = await loadCheckpoint(join(dir, 'adapter.gguf')).catch((e: unknown) => e);
    expect(CheckpointError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('is missing');
  });

  it('refuses a truncated file as a CheckpointError, before reading any tensor', async () => {
    const path = join(dir, 'truncated.gguf');
    const bytes = readFileSync(modelPath);
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    const error = await loadCheckpoint(path).catch((e: unknown) => e);
    expect(CheckpointError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/truncated|past the end|end of the file/i);
  });

  it('says a missing .gguf file does not exist', async () => {
    await expect(loadCheckpoint(join(dir, 'absent.gguf'))).rejects.toThrow('file does not exist');
  });
});
