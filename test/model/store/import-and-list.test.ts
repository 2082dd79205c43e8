import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GgmlType } from '../../../src/model/gguf/ggml-types.ts';
import { importModel } from '../../../src/model/store/import-model.ts';
import { listModels, removeModel } from '../../../src/model/store/list-models.ts';
import { ModelStoreError } from '../../../src/model/store/model-store-error.ts';
import { buildHfFiles, buildTinyGguf, sha256, TINY_CHAT_TEMPLATE } from './fixtures.ts';

async function errorOf(promise: Promise<unknown>): Promise<ModelStoreError> {
  try {
    await promise;
  } catch (error) {
    if (ModelStoreError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a ModelStoreError');
}

/** Writes a tiny HF Llama directory; returns its model.safetensors bytes. */
function writeHfDirectory(dir: string, options: { dtype?: string; cut?: number } = {}): Buffer {
  mkdirSync(dir, { recursive: true });
  const files = buildHfFiles(options);
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  return files['model.safetensors'];
}

describe('importModel, listModels, removeModel', () => {
  let root: string;
  let dataDir: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'corgi-store-import-'));
    dataDir = join(root, 'data');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('imports a GGUF file, lists it and removes it', async () => {
    const gguf = buildTinyGguf({ type: GgmlType.Q8_0, rows: 4, cols: 64 });
    writeFileSync(join(root, 'mine.gguf'), gguf);
    const result = await importModel(join(root, 'mine.gguf'), { name: 'mine', dataDir });
    expect(result.sha256).toBe(sha256(gguf));
    expect(result.source).toBe(`import:${join(root, 'mine.gguf')}`);
    expect(readFileSync(result.path).equals(gguf)).toBe(true);

    const models = await listModels({ dataDir });
    expect(models.map((model) => model.manifest)).toMatchObject([
      { name: 'mine', format: 'gguf', quantization: 'Q8_0', parameters: 256, size: gguf.length },
    ]);
    expect(models[0].path).toBe(result.path);

    expect((await removeModel('mine', { dataDir })).name).toBe('mine');
    expect(await listModels({ dataDir })).toEqual([]);
    expect((await errorOf(removeModel('mine', { dataDir }))).code).toBe('not_installed');
  });

  it('imports a Hugging Face Llama directory with its chat template and parameter count', async () => {
    const weights = writeHfDirectory(join(root, 'hf'));
    const result = await importModel(join(root, 'hf'), { name: 'tiny-hf', dataDir });
    expect(result.manifest).toMatchObject({
      format: 'hf',
      file: 'model.safetensors',
      sha256: sha256(weights),
      architecture: 'LlamaForCausalLM',
      quantization: 'BF16',
      parameters: 16 * 8 + 8,
      chatTemplate: TINY_CHAT_TEMPLATE,
    });
    expect(result.manifest.files?.map((file) => file.path)).toEqual([
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    expect(readFileSync(join(result.path, 'model.safetensors')).equals(weights)).toBe(true);
  });

  it('refuses an HF directory without tokenizer.json, naming the file', async () => {
    writeHfDirectory(join(root, 'hf'));
    rmSync(join(root, 'hf', 'tokenizer.json'));
    const error = await errorOf(importModel(join(root, 'hf'), { name: 'x', dataDir }));
    expect(error.code).toBe('invalid_input');
    expect(error.message).toContain('tokenizer.json');
  });

  it('refuses a config.json that is not a LlamaConfig, naming the field', async () => {
    writeHfDirectory(join(root, 'hf'));
    writeFileSync(join(root, 'hf', 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 8 }));
    const error = await errorOf(importModel(join(root, 'hf'), { name: 'x', dataDir }));
    expect(error.message).toMatch(/config\.json: not a LlamaConfig \(num_hidden_layers/);
  });

  it('refuses safetensors that end before their tensors do', async () => {
    writeHfDirectory(join(root, 'hf'), { cut: 10 });
    expect((await errorOf(importModel(join(root, 'hf'), { name: 'x', dataDir }))).code).toBe('truncated');
  });

  it('refuses safetensors in a dtype the trainer cannot load', async () => {
    writeHfDirectory(join(root, 'hf'), { dtype: 'I8' });
    expect((await errorOf(importModel(join(root, 'hf'), { name: 'x', dataDir }))).code).toBe(
      'unsupported_quantization',
    );
  });

  it('refuses a file that is not a GGUF, a truncated GGUF, and an unsupported tensor type', async () => {
    writeFileSync(join(root, 'text.gguf'), 'hello, not a model');
    expect((await errorOf(importModel(join(root, 'text.gguf'), { name: 'x', dataDir }))).code).toBe(
      'corrupt_gguf',
    );
    const gguf = buildTinyGguf();
    writeFileSync(join(root, 'cut.gguf'), gguf.subarray(0, 200));
    expect((await errorOf(importModel(join(root, 'cut.gguf'), { name: 'x', dataDir }))).code).toBe(
      'truncated',
    );
    writeFileSync(join(root, 'q3.gguf'), buildTinyGguf({ type: GgmlType.Q3_K, rows: 1, cols: 256 }));
    expect((await errorOf(importModel(join(root, 'q3.gguf'), { name: 'x', dataDir }))).code).toBe(
      'unsupported_quantization',
    );
    expect(await listModels({ dataDir })).toEqual([]);
  });

  it('refuses a taken name unless forced, a bad name, and a missing path', async () => {
    writeFileSync(join(root, 'a.gguf'), buildTinyGguf());
    await importModel(join(root, 'a.gguf'), { name: 'a', dataDir });
    expect((await errorOf(importModel(join(root, 'a.gguf'), { name: 'a', dataDir }))).code).toBe(
      'already_installed',
    );
    await importModel(join(root, 'a.gguf'), { name: 'a', dataDir, force: true });
    expect(
      (await errorOf(importModel(join(root, 'a.gguf'), { name: '../escape', dataDir }))).message,
    ).toMatch(/^--name: "..\/escape" is not a store name/);
    expect((await errorOf(importModel(join(root, 'nope.gguf'), { name: 'b', dataDir }))).code).toBe(
      'invalid_input',
    );
  });

  it('does not list a model directory without a manifest (an install cut short)', async () => {
    mkdirSync(join(dataDir, 'models', 'half'), { recursive: true });
    writeFileSync(join(dataDir, 'models', 'half', 'model.gguf'), buildTinyGguf());
    expect(await listModels({ dataDir })).toEqual([]);
  });
});
