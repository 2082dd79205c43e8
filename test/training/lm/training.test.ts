import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseLlamaConfig } from '../../../src/model/config.ts';
import { LlamaModel } from '../../../src/model/llama.ts';
import { benchConfig } from '../../../src/training/lm/bench.ts';
import { AdamW } from '../../../src/training/lm/optim.ts';
import { DataParallelTrainer, trainStep } from '../../../src/training/lm/train.ts';
import { useBackend } from '../../policy/helpers.ts';

// A tiny model so each test takes well under a second; shapes keep GQA and two layers.
const tiny = parseLlamaConfig({
  vocab_size: 32,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 16,
});

describe('AdamW', () => {
  it('matches a scalar transcription of torch.optim.AdamW, with decay on matrices only', async () => {
    await useBackend('wasm');
    const params = new Map<string, tf.Variable>([
      ['w', tf.variable(tf.tensor2d([[0.5, -1.0]]))],
      ['g', tf.variable(tf.tensor1d([2.0]))],
    ]);
    const opt = new AdamW(params, {
      lr: 0.1,
      beta1: 0.9,
      beta2: 0.99,
      eps: 1e-8,
      weightDecay: 0.5,
      maxGradNorm: Infinity,
    });
    const gradients = [
      [0.3, -0.2, 0.1],
      [-0.1, 0.4, 0.2],
    ];
    // Reference, element by element: p -= lr·wd·p (matrices only); p -= lr·m̂/(√v̂ + ε).
    const ref = [0.5, -1.0, 2.0];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    gradients.forEach((g, step) => {
      const t = step + 1;
      for (let i = 0; i < 3; i++) {
        m[i] = 0.9 * m[i]! + 0.1 * g[i]!;
        v[i] = 0.99 * v[i]! + 0.01 * g[i]! ** 2;
        if (i < 2) ref[i] = ref[i]! * (1 - 0.1 * 0.5);
        ref[i] = ref[i]! - (0.1 * (m[i]! / (1 - 0.9 ** t))) / (Math.sqrt(v[i]! / (1 - 0.99 ** t)) + 1e-8);
      }
      const grads = new Map<string, tf.Tensor>([
        ['w', tf.tensor2d([[g[0]!, g[1]!]])],
        ['g', tf.tensor1d([g[2]!])],
      ]);
      opt.apply(grads);
      tf.dispose([...grads.values()]);
    });
    const got = [...params.get('w')!.dataSync(), ...params.get('g')!.dataSync()];
    for (let i = 0; i < 3; i++) expect(got[i]).toBeCloseTo(ref[i]!, 5);
    opt.dispose();
    tf.dispose([...params.values()]);
  });

  it('clips the global gradient norm and reports the norm before clipping', async () => {
    await useBackend('wasm');
    const p = new Map([['a', tf.variable(tf.zeros([2]))]]);
    const opt = new AdamW(p, { lr: 1, weightDecay: 0, maxGradNorm: 1, beta1: 0, beta2: 0, eps: 0 });
    const g = new Map([['a', tf.tensor1d([3, 4])]]);
    const { gradNorm } = opt.apply(g);
    expect(gradNorm).toBeCloseTo(5, 5);
    // With β₁ = β₂ = 0 the step is lr·g/|g| per element: clipping to norm 1 leaves the sign only.
    expect(Array.from(p.get('a')!.dataSync())).toEqual([-1, -1]);
    opt.dispose();
    tf.dispose([...p.values(), ...g.values()]);
  });
});

describe('training the model', () => {
  it('lowers the loss on a repeated batch and changes every parameter', async () => {
    await useBackend('wasm');
    const model = LlamaModel.init(tiny, { seed: 3 });
    const before = new Map([...model.params].map(([name, v]) => [name, v.dataSync().slice()]));
    const opt = new AdamW(model.params, { lr: 3e-3 }); // higher lr than usual: 20 steps to see a drop
    const tokens = Array.from({ length: 4 * 9 }, (_, i) => (i * 5 + 1) % 32);
    const rows = [0, 1, 2, 3].map((b) => tokens.slice(b * 9, b * 9 + 9));
    const inputs = tf.tensor2d(
      rows.map((r) => r.slice(0, 8)),
      [4, 8],
      'int32',
    );
    const targets = tf.tensor2d(
      rows.map((r) => r.slice(1)),
      [4, 8],
      'int32',
    );
    const first = trainStep(model, opt, inputs, targets);
    let last = first;
    for (let i = 0; i < 20; i++) last = trainStep(model, opt, inputs, targets);
    expect(Number.isFinite(first.loss)).toBe(true);
    expect(first.loss).toBeGreaterThan(Math.log(32) - 0.5); // starts near uniform
    expect(last.loss).toBeLessThan(first.loss - 1);
    for (const [name, v] of model.params) {
      expect(
        v.dataSync().some((x, i) => x !== before.get(name)![i]),
        name,
      ).toBe(true);
    }
    tf.dispose([inputs, targets]);
    opt.dispose();
    model.dispose();
  });
});

describe('DataParallelTrainer', () => {
  // cpu too: its dataSync returns the backend's own storage, which must not be transferred away.
  it.each(['wasm', 'cpu'] as const)(
    "takes the single-thread trainer's steps with half the batch in a worker (%s)",
    async (backend) => {
      await useBackend(backend);
      const single = LlamaModel.init(tiny, { seed: 9 });
      const split = LlamaModel.init(tiny, { seed: 9 });
      const singleOpt = new AdamW(single.params, { lr: 1e-2 });
      const splitOpt = new AdamW(split.params, { lr: 1e-2 });
      const trainer = await DataParallelTrainer.start(split, splitOpt);
      try {
        const tokens = Array.from({ length: 6 * 9 }, (_, i) => (i * 11 + 3) % 32);
        const rows = [0, 1, 2, 3, 4, 5].map((b) => tokens.slice(b * 9, b * 9 + 9));
        const inputs = tf.tensor2d(
          rows.map((r) => r.slice(0, 8)),
          [6, 8],
          'int32',
        );
        const targets = tf.tensor2d(
          rows.map((r) => r.slice(1)),
          [6, 8],
          'int32',
        );
        for (let i = 0; i < 3; i++) {
          const a = trainStep(single, singleOpt, inputs, targets);
          const b = await trainer.step(inputs, targets);
          expect(b.loss).toBeCloseTo(a.loss, 5);
          expect(b.gradNorm).toBeCloseTo(a.gradNorm, 5);
        }
        for (const [name, v] of single.params) {
          const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(v, split.params.get(name)!))).dataSync()[0]!);
          expect(diff, name).toBeLessThan(1e-5);
        }
        tf.dispose([inputs, targets]);
      } finally {
        await trainer.close();
        singleOpt.dispose();
        splitOpt.dispose();
        single.dispose();
        split.dispose();
      }
    },
  );
});

describe('memory', () => {
  it('keeps the tensor count stable across forward and training calls', async () => {
    await useBackend('wasm');
    const model = LlamaModel.init(tiny, { seed: 5 });
    const opt = new AdamW(model.params);
    const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6, 7, 8]], [1, 8], 'int32');
    const round = () => {
      tf.dispose(model.forward(ids));
      trainStep(model, opt, ids, ids);
    };
    round(); // the first round creates the optimizer's moment variables
    const tensors = tf.memory().numTensors;
    const dataIds = tf.backend().numDataIds();
    for (let i = 0; i < 10; i++) round();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.backend().numDataIds()).toBe(dataIds); // no backend data leaks either (cached transposes)
    tf.dispose(ids);
    opt.dispose();
    model.dispose();
  });

  it('keeps the tensor count stable across 1,000 training steps', async () => {
    await useBackend('wasm');
    const model = LlamaModel.init(parseLlamaConfig({ ...tiny, num_hidden_layers: 1, hidden_size: 16 }), {
      seed: 6,
    });
    const opt = new AdamW(model.params);
    const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32');
    trainStep(model, opt, ids, ids); // creates the optimizer's moment variables
    const tensors = tf.memory().numTensors;
    const dataIds = tf.backend().numDataIds();
    for (let i = 0; i < 1000; i++) trainStep(model, opt, ids, ids);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.backend().numDataIds()).toBe(dataIds);
    tf.dispose(ids);
    opt.dispose();
    model.dispose();
  }, 120_000);
});

describe('benchConfig', () => {
  it("uses Meta's intermediate-size rule and HF names", () => {
    const c = benchConfig({ layers: 2, dim: 128, heads: 4, vocab: 2048, ctx: 64 });
    expect(c).toMatchObject({
      intermediate_size: 512,
      hidden_size: 128,
      num_hidden_layers: 2,
      vocab_size: 2048,
    });
  });
});
