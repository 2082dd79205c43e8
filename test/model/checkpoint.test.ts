import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHECKSUM_FILE,
  CheckpointError,
  loadCheckpoint,
  saveCheckpoint,
} from '../../src/model/checkpoint.ts';
import { parseLlamaConfig, toConfigJson } from '../../src/model/config.ts';
import { LlamaModel } from '../../src/model/llama.ts';
import { parseSafetensors, serializeSafetensors } from '../../src/model/safetensors.ts';
import { FIXTURES, maxAbsDiff, useBackend } from '../policy/helpers.ts';

// Small but complete: GQA, two layers. Tied and untied variants.
const configFor = (tied: boolean) =>
  parseLlamaConfig({
    vocab_size: 40,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 32,
    tie_word_embeddings: tied,
  });

let root: string;
beforeAll(async () => {
  await useBackend('wasm');
  root = mkdtempSync(join(tmpdir(), 'corgi-checkpoint-test-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function logitsOf(model: LlamaModel): Float32Array {
  return tf.tidy(
    () => model.forward(tf.tensor2d([[1, 5, 9, 2, 33]], undefined, 'int32')).dataSync() as Float32Array,
  );
}

async function expectRefused(dir: string, message: string): Promise<void> {
  const error = await loadCheckpoint(dir).then(
    (model) => {
      model.dispose();
      return null;
    },
    (e: unknown) => e,
  );
  expect(CheckpointError.isInstance(error), String(error)).toBe(true);
  expect((error as Error).message).toContain(message);
}

/** A saved copy of the untied model to break in one way per test. */
async function savedCopy(name: string): Promise<string> {
  const dir = join(root, name);
  const model = LlamaModel.init(configFor(false), { seed: 1 });
  await saveCheckpoint(model, dir);
  model.dispose();
  return dir;
}

/** Rewrites model.safetensors through `edit` and drops the checksum file (as a foreign checkpoint). */
function editWeights(
  dir: string,
  edit: (tensors: ReturnType<typeof parseSafetensors>['tensors']) => void,
): void {
  const file = join(dir, 'model.safetensors');
  const { tensors } = parseSafetensors(readFileSync(file));
  edit(tensors);
  writeFileSync(file, serializeSafetensors(tensors));
  rmSync(join(dir, CHECKSUM_FILE));
}

describe('saveCheckpoint / loadCheckpoint', () => {
  it.each([false, true])('round-trips a model in HF layout (tied embeddings: %s)', async (tied) => {
    const model = LlamaModel.init(configFor(tied), { seed: 7 });
    const dir = join(root, `roundtrip-${tied}`);
    await saveCheckpoint(model, dir, { files: { 'tokenizer.json': '{"version":"1.0"}' } });
    expect(readdirSync(dir).sort()).toEqual([
      'checksums.sha256',
      'config.json',
      'model.safetensors',
      'tokenizer.json',
    ]);
    const { tensors } = parseSafetensors(readFileSync(join(dir, 'model.safetensors')));
    expect(tensors.has('lm_head.weight')).toBe(!tied);
    expect(tensors.get('model.layers.1.self_attn.k_proj.weight')!.shape).toEqual([8, 16]); // [out, in], 2 K/V heads
    const loaded = await loadCheckpoint(dir);
    expect(toConfigJson(loaded.config)).toEqual(toConfigJson(model.config));
    expect(maxAbsDiff(logitsOf(loaded), logitsOf(model))).toBe(0);
    loaded.dispose();
    model.dispose();
  });

  it('leaves no temporary directory behind and refuses to overwrite unless asked', async () => {
    const dir = await savedCopy('overwrite');
    const other = LlamaModel.init(configFor(false), { seed: 2 });
    await expect(saveCheckpoint(other, dir)).rejects.toThrow('already exists');
    await saveCheckpoint(other, dir, { overwrite: true });
    const loaded = await loadCheckpoint(dir);
    expect(maxAbsDiff(logitsOf(loaded), logitsOf(other))).toBe(0);
    expect(readdirSync(root).filter((name) => name.startsWith('.'))).toEqual([]);
    tf.dispose([loaded, other].flatMap((m) => [...m.params.values()]));
  });

  it('loads the PyTorch-written fixtures, which carry no checksum file', async () => {
    const model = await loadCheckpoint(join(FIXTURES, 'tied'));
    expect(model.params.has('lm_head.weight')).toBe(false);
    model.dispose();
  });
});

describe('loadCheckpoint refuses', () => {
  it('a corrupt weight file (checksum mismatch)', async () => {
    const dir = await savedCopy('corrupt');
    const file = join(dir, 'model.safetensors');
    const bytes = readFileSync(file);
    bytes[bytes.length - 3]! ^= 0x40; // one flipped bit in the last weight
    writeFileSync(file, bytes);
    await expectRefused(dir, 'model.safetensors is corrupt: sha256');
  });

  it('a partial checkpoint (a listed file missing)', async () => {
    const dir = await savedCopy('partial');
    rmSync(join(dir, 'model.safetensors'));
    await expectRefused(dir, 'model.safetensors is listed in checksums.sha256 but missing');
  });

  it('a truncated weight file without checksums', async () => {
    const dir = await savedCopy('truncated');
    rmSync(join(dir, CHECKSUM_FILE));
    truncateSync(join(dir, 'model.safetensors'), 2000);
    await expectRefused(dir, 'truncated');
  });

  it('missing tensors, by name', async () => {
    const dir = await savedCopy('missing');
    editWeights(dir, (t) => {
      t.delete('model.layers.1.mlp.up_proj.weight');
      t.delete('lm_head.weight');
    });
    await expectRefused(dir, '2 missing tensor(s): model.layers.1.mlp.up_proj.weight, lm_head.weight');
  });

  it('unexpected tensors, by name', async () => {
    const dir = await savedCopy('unexpected');
    editWeights(dir, (t) => {
      t.set('model.layers.0.self_attn.q_proj.bias', { shape: [16], data: new Float32Array(16) });
    });
    await expectRefused(dir, '1 unexpected tensor(s): model.layers.0.self_attn.q_proj.bias');
  });

  it('a wrong shape, with both shapes', async () => {
    const dir = await savedCopy('shape');
    editWeights(dir, (t) => {
      t.set('model.layers.0.self_attn.k_proj.weight', { shape: [16, 16], data: new Float32Array(256) });
    });
    await expectRefused(dir, 'model.layers.0.self_attn.k_proj.weight is [16,16], expected [8,16]');
  });

  it('a bad config, naming the field', async () => {
    const dir = join(root, 'bad-config');
    cpSync(join(FIXTURES, 'untied'), dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, num_key_value_heads: 3 }));
    await expectRefused(dir, 'config.num_key_value_heads: num_attention_heads (4) must be a multiple');
  });

  it('a directory that does not exist', async () => {
    await expectRefused(join(root, 'nope'), 'directory does not exist');
    expect(existsSync(join(root, 'nope'))).toBe(false);
  });
});
