import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyGguf, type StandInHub, sha256, startStandInHub } from '../model/store/fixtures.ts';
import { runCorgi } from '../support/run-corgi.ts';

// Each run of the bin loads the whole CLI (seconds on a busy machine): few runs, each checking much.
describe('corgi pull / import / models / rm', () => {
  let root: string;
  let hub: StandInHub;
  let env: NodeJS.ProcessEnv;
  const gguf = buildTinyGguf();

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'corgi-store-cli-'));
    hub = await startStandInHub({ 'org/tiny-GGUF/tiny.F32.gguf': { data: gguf } });
    env = { ...process.env, CORGI_DATA_DIR: join(root, 'data'), HF_ENDPOINT: hub.url, HF_TOKEN: 'hf_test' };
    writeFileSync(join(root, 'local.gguf'), gguf);
  });
  afterAll(async () => {
    await hub.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('pulls from HF_ENDPOINT into CORGI_DATA_DIR and prints {name, path, sha256, source}', async () => {
    const { code, stdout, stderr } = await runCorgi(['pull', 'org/tiny-GGUF:tiny.F32.gguf', '--json'], {
      env,
    });
    expect(stderr).toContain('"phase":"done"');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({
      name: 'tiny.F32',
      path: join(root, 'data', 'models', 'tiny.F32', 'tiny.F32.gguf'),
      sha256: sha256(gguf),
      source: `hf:org/tiny-GGUF@${'c0ffee'.padEnd(40, '0')}:tiny.F32.gguf`,
    });
  });

  it('imports, lists and removes', async () => {
    const imported = await runCorgi(['import', join(root, 'local.gguf'), '--name', 'local', '--json'], {
      env,
    });
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({
      name: 'local',
      source: `import:${join(root, 'local.gguf')}`,
    });

    const listed = await runCorgi(['models', '--json'], { env });
    const names = (JSON.parse(listed.stdout) as Array<{ name: string; path: string }>).map(
      (model) => model.name,
    );
    expect(names).toEqual(['local', 'tiny.F32']);
    expect((await runCorgi(['rm', 'local', '--json'], { env })).code).toBe(0);
  });

  it('refuses an unknown name with one line listing the known names', async () => {
    const { code, stderr } = await runCorgi(['pull', 'gpt-17'], { env });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^corgi: unknown model "gpt-17"; known names: smollm2-135m-instruct/);
  });
});
