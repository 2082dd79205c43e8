import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/model/checkpoint.ts';
import { llamaCppPolicyLoader } from '../../src/policy/llama-cpp-policy.ts';
import { writeSmolLm2LoraAdapter } from '../support/lora-adapter-gguf.ts';
import { noteSkip, smollm2GgufPath } from '../support/smollm2.ts';

const root = mkdtempSync(join(tmpdir(), 'corgi-llama-loader-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function makeDir(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  return dir;
}

describe('llamaCppPolicyLoader', () => {
  it('refuses a directory with no model and no configured base', async () => {
    await expect(llamaCppPolicyLoader()(makeDir('empty'), 'v')).rejects.toThrow(
      /holds no model GGUF, and no base model is configured/,
    );
  });

  it('refuses a corrupt GGUF in the directory before loading anything', async () => {
    const dir = makeDir('corrupt');
    writeFileSync(join(dir, 'model.gguf'), 'not a gguf at all');
    await expect(llamaCppPolicyLoader()(dir, 'v')).rejects.toThrow(CheckpointError);
  });
});

const path = smollm2GgufPath();
noteSkip('llamaCppPolicyLoader on SmolLM2', path);

describe.skipIf(!path)('llamaCppPolicyLoader on SmolLM2', () => {
  const settings = { sequences: 1, contextSize: 256, threads: 1 };

  it('serves the model GGUF a directory holds', async () => {
    const dir = makeDir('model');
    symlinkSync(resolve(path!), join(dir, 'model.gguf'));
    const policy = await llamaCppPolicyLoader(settings)(dir, 'smollm2');
    try {
      expect(policy.version).toBe('smollm2');
      expect(policy.adapters).toEqual([]);
    } finally {
      await policy.dispose();
    }
  }, 120_000);

  it('applies the adapters a directory holds on the configured base', async () => {
    const dir = makeDir('adapter');
    writeSmolLm2LoraAdapter(join(dir, 'adapter.gguf'));
    const policy = await llamaCppPolicyLoader({ ...settings, baseModelPath: path! })(dir, 'corgi-1');
    try {
      expect(policy.modelPath).toBe(resolve(path!));
      expect(policy.adapters).toEqual([{ path: join(dir, 'adapter.gguf'), scale: 1 }]);
    } finally {
      await policy.dispose();
    }
  }, 120_000);

  it('refuses a directory holding two models', async () => {
    const dir = makeDir('two');
    symlinkSync(resolve(path!), join(dir, 'a.gguf'));
    symlinkSync(resolve(path!), join(dir, 'b.gguf'));
    await expect(llamaCppPolicyLoader(settings)(dir, 'v')).rejects.toThrow(
      /holds 2 model GGUFs \(a.gguf, b.gguf\)/,
    );
  }, 120_000);
});
