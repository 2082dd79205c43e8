import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importModel } from '../../../src/model/store/import-model.ts';
import { expandStoreName, resolvePolicySpec } from '../../../src/model/store/resolve-policy-spec.ts';
import { buildTinyGguf } from './fixtures.ts';

describe('resolvePolicySpec', () => {
  let root: string;
  let dataDir: string;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'corgi-store-spec-'));
    dataDir = join(root, 'data');
    writeFileSync(join(root, 'loose.gguf'), buildTinyGguf());
    await importModel(join(root, 'loose.gguf'), { name: 'tiny', dataDir });
    mkdirSync(join(root, 'ckpt'));
    writeFileSync(join(root, 'ckpt', 'config.json'), '{}');
    mkdirSync(join(root, 'empty'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('resolves a store name to its GGUF file and manifest', () => {
    const resolved = resolvePolicySpec('tiny', { dataDir });
    expect(resolved).toMatchObject({ kind: 'gguf', path: join(dataDir, 'models', 'tiny', 'loose.gguf') });
    expect(resolved.kind === 'gguf' && resolved.manifest?.name).toBe('tiny');
  });

  it('resolves a store model directory given as a path the same way', () => {
    expect(resolvePolicySpec(join(dataDir, 'models', 'tiny'), { dataDir })).toMatchObject({ kind: 'gguf' });
  });

  it('resolves a .gguf path and a checkpoint directory', () => {
    expect(resolvePolicySpec(join(root, 'loose.gguf'), { dataDir })).toEqual({
      kind: 'gguf',
      path: join(root, 'loose.gguf'),
    });
    expect(resolvePolicySpec(join(root, 'ckpt'), { dataDir })).toEqual({
      kind: 'checkpoint',
      dir: join(root, 'ckpt'),
    });
  });

  it('parses openai: and vllm: specs', () => {
    expect(resolvePolicySpec('openai:http://127.0.0.1:8000/v1/#m-1', { dataDir })).toEqual({
      kind: 'remote',
      baseURL: 'http://127.0.0.1:8000/v1',
      model: 'm-1',
      vllm: false,
    });
    expect(resolvePolicySpec('vllm:http://h:1/v1#m', { dataDir })).toMatchObject({ vllm: true });
    expect(() => resolvePolicySpec('openai:http://h/v1', { dataDir, field: '--policy' })).toThrow(
      /^--policy: expected openai:<http\(s\) baseURL>#<model>/,
    );
  });

  it('names the spec and what it is when nothing matches', () => {
    expect(() => resolvePolicySpec('nothing-here', { dataDir, field: 'CORGI_POLICY' })).toThrow(
      /^CORGI_POLICY: "nothing-here" is neither an installed model nor an existing path.*installed models: tiny/,
    );
    expect(() => resolvePolicySpec(join(root, 'empty'), { dataDir })).toThrow(
      /a directory without config.json or a model manifest/,
    );
    expect(() => resolvePolicySpec('smollm2-135m-instruct', { dataDir })).toThrow(
      /corgi pull smollm2-135m-instruct/,
    );
  });

  it('expands a store name to its path for path-taking loaders, leaving other specs alone', () => {
    expect(expandStoreName('tiny', { dataDir })).toBe(join(dataDir, 'models', 'tiny', 'loose.gguf'));
    expect(expandStoreName('models/base', { dataDir })).toBe('models/base');
    expect(expandStoreName('not-installed', { dataDir })).toBe('not-installed');
    expect(expandStoreName('openai:http://h/v1#m', { dataDir })).toBe('openai:http://h/v1#m');
  });
});
