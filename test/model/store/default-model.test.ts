import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDefaultModelPull } from '../../../src/model/store/default-model.ts';
import { importModel } from '../../../src/model/store/import-model.ts';
import type { RegistryEntry } from '../../../src/model/store/registry.ts';
import { buildTinyGguf, type StandInHub, sha256, startStandInHub } from './fixtures.ts';

describe('startDefaultModelPull', () => {
  let root: string;
  let hub: StandInHub;
  const gguf = buildTinyGguf();
  const entry: RegistryEntry = {
    name: 'tiny-default',
    description: 'test',
    sources: [{ kind: 'hub', repo: 'org/tiny', revision: 'main', file: 'tiny.gguf' }],
    file: 'tiny.gguf',
    size: gguf.length,
    sha256: sha256(gguf),
  };
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'corgi-store-default-'));
    hub = await startStandInHub({ 'org/tiny/tiny.gguf': { data: gguf } });
  });
  afterAll(async () => {
    await hub.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('is ready at once when the store has the model', async () => {
    const dataDir = join(root, 'has');
    writeFileSync(join(root, 'x.gguf'), gguf);
    await importModel(join(root, 'x.gguf'), { name: 'tiny-default', dataDir });
    const pull = await startDefaultModelPull({ dataDir, name: 'tiny-default', onProgress: () => {} });
    expect(pull.status()).toEqual({
      state: 'ready',
      name: 'tiny-default',
      path: join(dataDir, 'models', 'tiny-default', 'x.gguf'),
    });
    expect((await pull.done)?.name).toBe('tiny-default');
  });

  it('pulls in the background, reporting pulling then ready', async () => {
    const dataDir = join(root, 'pulls');
    const pull = await startDefaultModelPull({
      dataDir,
      name: 'tiny-default',
      onProgress: () => {},
      pull: { hubUrl: hub.url, registry: [entry] },
    });
    expect(pull.status().state).toBe('pulling');
    const manifest = await pull.done;
    expect(manifest?.sha256).toBe(sha256(gguf));
    expect(pull.status()).toMatchObject({
      state: 'ready',
      path: join(dataDir, 'models', 'tiny-default', 'tiny.gguf'),
    });
  });

  it('reports failed with the reason when no source answers, and never rejects', async () => {
    const pull = await startDefaultModelPull({
      dataDir: join(root, 'offline'),
      name: 'tiny-default',
      onProgress: () => {},
      pull: { hubUrl: 'http://127.0.0.1:9', registry: [entry] },
    });
    expect(await pull.done).toBeNull();
    expect(pull.status()).toMatchObject({ state: 'failed', name: 'tiny-default' });
    expect(pull.status().reason).toMatch(/no source could be reached.*corgi import/s);
  });
});
