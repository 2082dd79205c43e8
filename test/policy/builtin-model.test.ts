import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_MODEL_DIR, resolveCheckpointDir } from '../../src/policy/builtin-model.ts';
import { runCorgi } from '../support/run-corgi.ts';

describe('the built-in model', () => {
  it("is the package's own models/base", () => {
    expect(existsSync(join(BUILTIN_MODEL_DIR, 'config.json'))).toBe(true);
    expect(BUILTIN_MODEL_DIR).toBe(resolve('models/base'));
  });

  it('leaves every other directory spec relative to the working directory', () => {
    expect(resolveCheckpointDir('models/corgi')).toBe(resolve('models/corgi'));
    expect(resolveCheckpointDir('/nonexistent/models/base')).toBe('/nonexistent/models/base');
  });

  it('answers for models/base from a directory that has none', async () => {
    const scratch = join(BUILTIN_MODEL_DIR, '..', '..', 'test', 'fixtures');
    // The GGUF it converts to is cached in the data directory: a temporary one.
    const dataDir = mkdtempSync(join(tmpdir(), 'corgi-builtin-generate-'));
    try {
      const { code, stderr } = await runCorgi(['generate', '--max-tokens', '2', '--seed', '1', 'Hello'], {
        cwd: scratch,
        env: { ...process.env, CORGI_POLICY: 'models/base', CORGI_DATA_DIR: dataDir },
      });
      expect(stderr).not.toMatch(/no checkpoint/);
      expect(code).toBe(0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
