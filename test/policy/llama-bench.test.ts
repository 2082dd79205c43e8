import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { registerBenchCommand } from '../../src/cli/bench-command.ts';
import { LlamaModel } from '../../src/model/llama.ts';
import {
  benchModelGeneration,
  type LlamaBenchOptions,
  resolveGgufPath,
  runLlamaBench,
} from '../../src/policy/llama-bench.ts';
import { benchConfig } from '../../src/training/lm/bench.ts';
import { noteSkip, smollm2GgufPath } from '../support/smollm2.ts';
import { useBackend } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'corgi-llama-bench-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

describe('resolveGgufPath', () => {
  const dataDir = join(root, 'data');
  const store = join(dataDir, 'models', 'tiny');
  mkdirSync(store, { recursive: true });
  writeFileSync(join(store, 'tiny.Q8_0.gguf'), 'x');
  const two = join(root, 'two');
  mkdirSync(two);
  writeFileSync(join(two, 'a.gguf'), 'x');
  writeFileSync(join(two, 'b.gguf'), 'x');

  it('takes a file, a directory holding one GGUF, or a store name', () => {
    expect(resolveGgufPath(join(store, 'tiny.Q8_0.gguf'), dataDir)).toBe(join(store, 'tiny.Q8_0.gguf'));
    expect(resolveGgufPath(store, dataDir)).toBe(join(store, 'tiny.Q8_0.gguf'));
    expect(resolveGgufPath('tiny', dataDir)).toBe(join(store, 'tiny.Q8_0.gguf'));
  });

  it('refuses a spec that names nothing, or a directory with several GGUF files', () => {
    expect(() => resolveGgufPath('no-such-model', dataDir)).toThrow(/--policy: "no-such-model" is neither/);
    expect(() => resolveGgufPath(two, dataDir)).toThrow(/holds 2 GGUF files \(a.gguf, b.gguf\); name one/);
  });
});

describe('benchModelGeneration (corgi bench without --policy)', () => {
  it('decodes the TensorFlow.js model on llama.cpp at 1 and 32 sequences', async () => {
    await useBackend('wasm');
    const model = LlamaModel.init(benchConfig({ layers: 1, dim: 32, heads: 2, vocab: 512, ctx: 24 }));
    const lines: string[] = [];
    try {
      const result = await benchModelGeneration(model, { rounds: 1, log: (line) => lines.push(line) });
      expect(result.gen_tokens_per_s_b1).toBeGreaterThan(0);
      expect(result.gen_tokens_per_s_b32).toBeGreaterThan(0);
      expect(lines.join('\n')).toMatch(/llama\.cpp greedy, batch 32/);
    } finally {
      model.dispose();
    }
  });

  it('refuses a vocabulary smaller than its byte-level tokenizer', async () => {
    await useBackend('wasm');
    const model = LlamaModel.init(benchConfig({ layers: 1, dim: 32, heads: 2, vocab: 64, ctx: 24 }));
    try {
      await expect(benchModelGeneration(model)).rejects.toThrow(/vocab_size 64 is below the \d+ ids/);
    } finally {
      model.dispose();
    }
  });
});

describe('corgi bench --policy', () => {
  it('runs the llama.cpp bench with the flags and prints its JSON line only', async () => {
    const seen: LlamaBenchOptions[] = [];
    const result = {
      engine: 'llama.cpp' as const,
      model: 'm.gguf',
      gen_tokens_per_s_b1: 1,
      gen_tokens_per_s_b32: 2,
      peer_gen_tokens_per_s_b1: 3,
      peer_gen_tokens_per_s_b32: 4,
    };
    const program = new Command('corgi').exitOverride();
    registerBenchCommand(program, undefined, async (options) => {
      seen.push(options);
      return result;
    });
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0);
    await program.parseAsync([
      'node',
      'corgi',
      'bench',
      '--policy',
      'm.gguf',
      '--threads',
      '2',
      '--tokens',
      '8',
      '--json',
    ]);
    // The store root comes from CORGI_DATA_DIR, read by the command.
    const dataDir = process.env.CORGI_DATA_DIR || './data';
    expect(seen).toEqual([{ policy: 'm.gguf', dataDir, threads: 2, tokens: 8, rounds: 3 }]);
    expect(out.join('')).toBe(`${JSON.stringify(result)}\n`);
  });
});

const path = smollm2GgufPath();
noteSkip('llama.cpp bench', path);

describe.skipIf(!path)('runLlamaBench on SmolLM2', () => {
  it('measures our path and the bare decode loop on the same file', async () => {
    const result = await runLlamaBench({ policy: path!, threads: 1, tokens: 4, rounds: 1, log: () => {} });
    expect(result.engine).toBe('llama.cpp');
    expect(result.model).toMatch(/\.gguf$/);
    for (const key of [
      'gen_tokens_per_s_b1',
      'gen_tokens_per_s_b32',
      'peer_gen_tokens_per_s_b1',
      'peer_gen_tokens_per_s_b32',
    ] as const) {
      expect(result[key], key).toBeGreaterThan(0);
    }
  }, 300_000);
});
