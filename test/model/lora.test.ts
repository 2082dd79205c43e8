import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from '../../src/model/llama.ts';
import {
  attachLora,
  type LoraConfig,
  loadLoraAdapter,
  loraParameters,
  mergeLora,
  readLoraAdapter,
  saveLoraAdapter,
  withAdapters,
} from '../../src/model/lora.ts';
import { parseSafetensors, serializeSafetensors } from '../../src/model/safetensors.ts';
import { AdamW } from '../../src/training/lm/optim.ts';
import {
  computeGradients,
  maskedLmLoss,
  toTokenBatch,
  trainableParameters,
} from '../../src/training/lm/sequence-logprobs.ts';
import { maxAbsDiff, useBackend } from '../policy/helpers.ts';
import { tinyModel } from '../policy/tiny-policy.ts';

const CONFIG: LoraConfig = {
  r: 4,
  alpha: 8,
  targetModules: ['q_proj', 'v_proj', 'down_proj'],
  seed: 3,
  baseModelNameOrPath: 'models/base',
};
const INPUT = [[0, 4, 60, 61, 62, 63, 6, 5, 70, 71]];

let root: string;
beforeAll(async () => {
  await useBackend('wasm');
  root = mkdtempSync(join(tmpdir(), 'corgi-lora-test-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function logitsOf(model: LlamaModel): Float32Array {
  return tf.tidy(() => model.forward(tf.tensor2d(INPUT, undefined, 'int32')).dataSync() as Float32Array);
}

function snapshot(params: Map<string, tf.Variable>): Map<string, Float32Array> {
  return new Map([...params].map(([name, v]) => [name, v.dataSync().slice() as Float32Array]));
}

/** A few LoRA-only AdamW steps on a masked LM loss; returns the first and last loss. */
function train(model: LlamaModel, steps: number): { first: number; last: number } {
  const params = trainableParameters(model);
  const optimizer = new AdamW(params, { lr: 1e-2, weightDecay: 0 });
  const batch = toTokenBatch([{ ids: INPUT[0]!, mask: [0, 0, 0, 0, 0, 0, 0, 1, 1, 1] }]);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const { loss, grads } = computeGradients(params, () => maskedLmLoss(model, batch));
    optimizer.apply(grads);
    tf.dispose([...grads.values()]);
    losses.push(loss);
  }
  tf.dispose([batch.ids, batch.mask]);
  optimizer.dispose();
  return { first: losses[0]!, last: losses[losses.length - 1]! };
}

describe('LoRA', () => {
  it('attaches PEFT-initialized adapters (A uniform ±1/√in, B zero) that change nothing yet', () => {
    const model = tinyModel(1);
    const before = logitsOf(model);
    attachLora(model, CONFIG);
    expect(model.adapters.size).toBe(2 * 3);
    const params = loraParameters(model);
    const a = params.get('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight')!;
    expect(a.shape).toEqual([4, 64]); // [r, in = intermediate_size]
    expect(Math.max(...a.dataSync().map(Math.abs))).toBeLessThanOrEqual(1 / 8);
    expect(params.get('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!.shape).toEqual([
      32, 4,
    ]);
    expect(
      [...params.keys()]
        .filter((n) => n.endsWith('lora_B.weight'))
        .every((n) =>
          params
            .get(n)!
            .dataSync()
            .every((x) => x === 0),
        ),
    ).toBe(true);
    expect([...model.params.values()].every((v) => !v.trainable)).toBe(true);
    expect(logitsOf(model)).toEqual(before);
    expect(() => attachLora(model, CONFIG)).toThrow('already has 6 LoRA adapters');
    expect(() => attachLora(tinyModel(2), { ...CONFIG, targetModules: ['qproj'] })).toThrow(
      'LoRA target module qproj is not one of',
    );
    model.dispose();
  });

  it('trains only the adapters: the loss falls, every adapter tensor changes, the base does not', () => {
    const model = tinyModel(1);
    attachLora(model, CONFIG);
    const base = snapshot(model.params);
    const adapters = snapshot(loraParameters(model));
    expect([...trainableParameters(model).keys()].sort()).toEqual([...adapters.keys()].sort());
    const { first, last } = train(model, 8);
    expect(last).toBeLessThan(first - 0.5);
    for (const [name, v] of loraParameters(model)) {
      expect(
        v.dataSync().some((x, i) => x !== adapters.get(name)![i]),
        name,
      ).toBe(true);
    }
    for (const [name, v] of model.params) expect(v.dataSync(), name).toEqual(base.get(name));
    model.dispose();
  });

  it('saves PEFT files that load into a fresh copy of the base with identical logits, and merges', async () => {
    const model = tinyModel(1);
    attachLora(model, CONFIG);
    train(model, 4);
    const trained = logitsOf(model);
    const dir = join(root, 'adapter');
    await saveLoraAdapter(model, dir, CONFIG);

    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 4,
      lora_alpha: 8,
      target_modules: ['q_proj', 'v_proj', 'down_proj'],
      base_model_name_or_path: 'models/base',
      bias: 'none',
      fan_in_fan_out: false,
    });
    const { tensors } = parseSafetensors(readFileSync(join(dir, 'adapter_model.safetensors')));
    expect(tensors.size).toBe(12);
    expect(tensors.get('base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight')!.shape).toEqual([
      4, 32,
    ]);
    expect(tensors.get('base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight')!.shape).toEqual([
      16, 4,
    ]); // 2 K/V heads × 8

    const fresh = tinyModel(1);
    const loaded = await loadLoraAdapter(fresh, dir);
    expect(loaded).toMatchObject({ r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] });
    expect(logitsOf(fresh)).toEqual(trained);

    mergeLora(fresh);
    expect(fresh.adapters.size).toBe(0);
    expect([...fresh.params.values()].every((v) => v.trainable)).toBe(true);
    expect(maxAbsDiff(logitsOf(fresh), trained)).toBeLessThan(1e-5);
    fresh.dispose();
    model.dispose();
  });

  it('scores under other adapters in place (the base alone, or a saved adapter) and puts its own back', async () => {
    const model = tinyModel(1);
    const base = logitsOf(model);
    attachLora(model, CONFIG);
    train(model, 4);
    const start = join(root, 'start-adapter');
    await saveLoraAdapter(model, start, CONFIG);
    const atStart = logitsOf(model);
    train(model, 4);
    const trained = logitsOf(model);
    expect(maxAbsDiff(trained, atStart)).toBeGreaterThan(1e-4);

    expect(withAdapters(model, new Map(), () => logitsOf(model))).toEqual(base);
    const { adapters } = await readLoraAdapter(model, start);
    expect([...adapters.values()].every(({ a, b }) => !a.trainable && !b.trainable)).toBe(true);
    expect(
      maxAbsDiff(
        withAdapters(model, adapters, () => logitsOf(model)),
        atStart,
      ),
    ).toBeLessThan(1e-6);
    // The model's own adapters are back, and a throwing scorer restores them too.
    expect(logitsOf(model)).toEqual(trained);
    expect(() =>
      withAdapters(model, adapters, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(logitsOf(model)).toEqual(trained);
    for (const { a, b } of adapters.values()) tf.dispose([a, b]);
    model.dispose();
  });

  it('refuses adapters whose tensors do not fit the model, naming the tensor', async () => {
    const model = tinyModel(1);
    attachLora(model, CONFIG);
    const dir = join(root, 'refused');
    await saveLoraAdapter(model, dir, CONFIG);
    model.dispose();

    const wider = tinyModel(1, { hidden_size: 48, num_attention_heads: 4 });
    await expect(loadLoraAdapter(wider, dir)).rejects.toThrow(
      'base_model.model.model.layers.0.mlp.down_proj.lora_B.weight is [32,4], expected [48,4]',
    );
    wider.dispose();

    const target = tinyModel(1);
    const weights = join(dir, 'adapter_model.safetensors');
    const tensors = parseSafetensors(readFileSync(weights)).tensors;
    const extra = 'base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight';
    tensors.set(extra, { shape: [4, 32], data: new Float32Array(128) });
    writeFileSync(weights, serializeSafetensors(tensors));
    await expect(loadLoraAdapter(target, dir)).rejects.toThrow(
      `tensor ${extra}: the model has no projection model.layers.7.self_attn.q_proj`,
    );
    tensors.delete(extra);
    tensors.delete('base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight');
    writeFileSync(weights, serializeSafetensors(tensors));
    await expect(loadLoraAdapter(target, dir)).rejects.toThrow(
      'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight has no matching lora_B',
    );
    expect(target.adapters.size).toBe(0);
    target.dispose();
  });
});
