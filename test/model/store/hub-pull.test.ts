import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/model/gguf/ggml-types.ts';
import { readManifest } from '../../../src/model/store/manifest.ts';
import { ModelStoreError } from '../../../src/model/store/model-store-error.ts';
import { pullModel } from '../../../src/model/store/pull-model.ts';
import type { RegistryEntry } from '../../../src/model/store/registry.ts';
import {
  buildHfFiles,
  buildTinyGguf,
  type StandInHub,
  sha256,
  startStandInHub,
  TINY_CHAT_TEMPLATE,
} from './fixtures.ts';

const REPO = 'tiny-org/tiny-llama-GGUF';
const FILE = 'tiny.F32.gguf';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (ModelStoreError.isInstance(error)) return error.code;
    throw error;
  }
  throw new Error('expected the pull to fail');
}

function installedNames(dataDir: string): string[] {
  const root = join(dataDir, 'models');
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((name) => existsSync(join(root, name, 'manifest.json')));
}

describe('pullModel from the Hub (a stand-in resolve endpoint on loopback)', () => {
  let dataDir: string;
  let hub: StandInHub;
  const gguf = buildTinyGguf();
  const truncated = gguf.subarray(0, gguf.length - 100);
  const q2k = buildTinyGguf({ type: GgmlType.Q2_K, rows: 2, cols: 256 });
  const hfFiles = buildHfFiles();

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'corgi-store-hub-'));
    hub = await startStandInHub({
      [`${REPO}/${FILE}`]: { data: gguf },
      [`${REPO}/lying.gguf`]: { data: gguf, etag: `"${'ab'.repeat(32)}"` },
      [`${REPO}/truncated.gguf`]: { data: truncated },
      [`${REPO}/q2k.gguf`]: { data: q2k },
      [`${REPO}/gated.gguf`]: { data: gguf, token: 'hf_secret' },
      ...Object.fromEntries(
        Object.entries(hfFiles).map(([file, data]) => [`tiny-org/tiny-llama/${file}`, { data }]),
      ),
    });
  });
  afterEach(async () => {
    await hub.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('installs a GGUF file with a manifest naming the resolved commit, sha256 and chat template', async () => {
    const events: string[] = [];
    const result = await pullModel(`${REPO}:${FILE}`, {
      dataDir,
      hubUrl: hub.url,
      onProgress: (event) => events.push(event.phase),
    });
    expect(result.name).toBe('tiny.F32');
    expect(result.sha256).toBe(sha256(gguf));
    expect(result.source).toBe(`hf:${REPO}@${'c0ffee'.padEnd(40, '0')}:${FILE}`);
    expect(readFileSync(result.path).equals(gguf)).toBe(true);
    const manifest = await readManifest(dataDir, 'tiny.F32');
    expect(manifest).toMatchObject({
      format: 'gguf',
      file: FILE,
      size: gguf.length,
      architecture: 'llama',
      quantization: 'F32',
      parameters: 64 * 256,
      chatTemplate: TINY_CHAT_TEMPLATE,
    });
    expect(events).toContain('download');
    expect(events.at(-1)).toBe('done');
    expect(existsSync(join(dataDir, 'models', '.partial', 'tiny.F32'))).toBe(false);
  });

  it('resumes with a Range request after the connection is cut mid-file', async () => {
    hub.cutNextAfter(10_000);
    const result = await pullModel(`${REPO}:${FILE}`, { dataDir, hubUrl: hub.url, name: 'tiny' });
    expect(readFileSync(result.path).equals(gguf)).toBe(true);
    const resumed = hub.ranges.filter((range) => /^bytes=[1-9]\d*-/.test(range));
    expect(resumed.length).toBeGreaterThan(0);
    expect(Number(/^bytes=(\d+)-/.exec(resumed[0])?.[1])).toBeGreaterThanOrEqual(10_000);
  });

  it('leaves an interrupted pull uninstalled, and the next pull resumes it', async () => {
    hub.cutNextAfter(10_000);
    const controller = new AbortController();
    const interrupted = pullModel(`${REPO}:${FILE}`, {
      dataDir,
      hubUrl: hub.url,
      name: 'tiny',
      signal: controller.signal,
      onProgress: (event) => {
        if (event.phase === 'download' && event.bytes > 0) controller.abort();
      },
    });
    expect(await codeOf(interrupted)).toBe('aborted');
    expect(installedNames(dataDir)).toEqual([]);
    expect(await readManifest(dataDir, 'tiny')).toBeNull();
    const partial = join(dataDir, 'models', '.partial', 'tiny', 'download', FILE);
    expect(readFileSync(partial).length).toBeGreaterThanOrEqual(10_000);

    hub.ranges.length = 0;
    const result = await pullModel(`${REPO}:${FILE}`, { dataDir, hubUrl: hub.url, name: 'tiny' });
    expect(readFileSync(result.path).equals(gguf)).toBe(true);
    expect(hub.ranges.at(-1)).toMatch(/^bytes=[1-9]\d{4,}-/);
  });

  it('restarts rather than resumes a partial file of another version of the file', async () => {
    const download = join(dataDir, 'models', '.partial', 'tiny', 'download');
    mkdirSync(download, { recursive: true });
    writeFileSync(join(download, FILE), Buffer.alloc(5000, 1));
    writeFileSync(join(download, `${FILE}.state.json`), JSON.stringify({ etag: '"old"', size: gguf.length }));
    const result = await pullModel(`${REPO}:${FILE}`, { dataDir, hubUrl: hub.url, name: 'tiny' });
    expect(readFileSync(result.path).equals(gguf)).toBe(true);
    expect(hub.ranges).toEqual(['bytes=0-0', '']);
  });

  it('refuses bytes whose sha256 is not the published one, and installs nothing', async () => {
    expect(await codeOf(pullModel(`${REPO}:lying.gguf`, { dataDir, hubUrl: hub.url }))).toBe(
      'checksum_mismatch',
    );
    expect(installedNames(dataDir)).toEqual([]);
    expect(existsSync(join(dataDir, 'models', '.partial', 'lying', 'download', 'lying.gguf'))).toBe(false);
  });

  it('refuses a registry model whose Hub sha256 differs from the registry before downloading it', async () => {
    const entry: RegistryEntry = {
      name: 'tiny-known',
      description: 'test',
      sources: [{ kind: 'hub', repo: REPO, revision: 'main', file: FILE }],
      file: FILE,
      size: gguf.length,
      sha256: 'cd'.repeat(32),
    };
    let error: unknown;
    await pullModel('tiny-known', { dataDir, hubUrl: hub.url, registry: [entry] }).catch((e) => {
      error = e;
    });
    expect(ModelStoreError.isInstance(error) && error.code).toBe('checksum_mismatch');
    expect((error as Error).message).toContain(sha256(gguf));
    expect(hub.ranges.every((range) => range === 'bytes=0-0')).toBe(true);
    expect(installedNames(dataDir)).toEqual([]);
  });

  it('refuses a truncated GGUF', async () => {
    expect(await codeOf(pullModel(`${REPO}:truncated.gguf`, { dataDir, hubUrl: hub.url }))).toBe('truncated');
    expect(installedNames(dataDir)).toEqual([]);
  });

  it('refuses a GGUF with a tensor type the product cannot dequantize', async () => {
    let error: unknown;
    await pullModel(`${REPO}:q2k.gguf`, { dataDir, hubUrl: hub.url }).catch((e) => {
      error = e;
    });
    expect(ModelStoreError.isInstance(error) && error.code).toBe('unsupported_quantization');
    expect((error as Error).message).toMatch(/token_embd\.weight is Q2_K/);
    expect(installedNames(dataDir)).toEqual([]);
  });

  it('sends the access token, and says to set HF_TOKEN when the Hub refuses without one', async () => {
    let error: unknown;
    await pullModel(`${REPO}:gated.gguf`, { dataDir, hubUrl: hub.url }).catch((e) => {
      error = e;
    });
    expect((error as Error).message).toMatch(/answered 401 .*HF_TOKEN/);
    const result = await pullModel(`${REPO}:gated.gguf`, {
      dataDir,
      hubUrl: hub.url,
      accessToken: 'hf_secret',
    });
    expect(result.sha256).toBe(sha256(gguf));
  });

  it('pulls a Llama directory in HF layout when no file is named', async () => {
    const result = await pullModel('tiny-org/tiny-llama', { dataDir, hubUrl: hub.url });
    expect(result.name).toBe('tiny-llama');
    expect(result.manifest).toMatchObject({
      format: 'hf',
      file: 'model.safetensors',
      sha256: sha256(hfFiles['model.safetensors']),
      chatTemplate: TINY_CHAT_TEMPLATE,
      parameters: 16 * 8 + 8,
    });
    for (const [file, data] of Object.entries(hfFiles)) {
      expect(readFileSync(join(result.path, file)).equals(data)).toBe(true);
    }
  });

  it('refuses a second pull of a name while one is under way', async () => {
    let second: Promise<string> | undefined;
    const first = await pullModel(`${REPO}:${FILE}`, {
      dataDir,
      hubUrl: hub.url,
      name: 'tiny',
      onProgress: (event) => {
        if (event.phase === 'download' && !second) {
          second = pullModel(`${REPO}:${FILE}`, { dataDir, hubUrl: hub.url, name: 'tiny' }).then(
            () => 'installed twice',
            (error: Error) => error.message,
          );
        }
      },
    });
    expect(await second).toMatch(/^tiny: a pull of it is already under way/);
    expect(first.sha256).toBe(sha256(gguf));
  });

  it('names a file the repository lacks', async () => {
    expect(await codeOf(pullModel(`${REPO}:missing.gguf`, { dataDir, hubUrl: hub.url }))).toBe(
      'invalid_input',
    );
  });

  it('refuses to pull over an installed model unless forced', async () => {
    await pullModel(`${REPO}:${FILE}`, { dataDir, hubUrl: hub.url, name: 'tiny' });
    expect(await codeOf(pullModel(`${REPO}:${FILE}`, { dataDir, hubUrl: hub.url, name: 'tiny' }))).toBe(
      'already_installed',
    );
    const again = await pullModel(`${REPO}:${FILE}`, { dataDir, hubUrl: hub.url, name: 'tiny', force: true });
    expect(again.sha256).toBe(sha256(gguf));
    expect(installedNames(dataDir)).toEqual(['tiny']);
  });

  it('reports an unreachable Hub as a network error that says how to get the model otherwise', async () => {
    const entry: RegistryEntry = {
      name: 'tiny-known',
      description: 'test',
      sources: [{ kind: 'hub', repo: REPO, revision: 'main', file: FILE }],
      file: FILE,
      size: gguf.length,
      sha256: sha256(gguf),
    };
    await hub.close();
    let error: unknown;
    await pullModel('tiny-known', { dataDir, hubUrl: hub.url, registry: [entry] }).catch((e) => {
      error = e;
    });
    expect(ModelStoreError.isInstance(error) && error.code).toBe('network');
    expect((error as Error).message).toContain('corgi import');
    hub = await startStandInHub({});
  });
});

describe('pullModel names', () => {
  it('refuses an unknown name, listing the known ones', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'corgi-store-names-'));
    let error: unknown;
    await pullModel('no-such-model', { dataDir }).catch((e) => {
      error = e;
    });
    expect(ModelStoreError.isInstance(error) && error.code).toBe('unknown_model');
    expect((error as Error).message).toContain('smollm2-135m-instruct');
    rmSync(dataDir, { recursive: true, force: true });
  });
});
