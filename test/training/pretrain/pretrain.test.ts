import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerPretrainCommand } from '../../../src/cli/pretrain-command.ts';
import { loadCheckpoint, verifyChecksums } from '../../../src/model/checkpoint.ts';
import { parseSafetensors } from '../../../src/model/safetensors.ts';
import { Tokenizer } from '../../../src/model/tokenizer.ts';
import { TrainingInterruptedError } from '../../../src/training/interrupted.ts';
import { evaluationBatches, packSequences, pretrainRowSource } from '../../../src/training/lm/lm-data.ts';
import {
  type PretrainSummary,
  planPretrainSteps,
  runPretrain,
} from '../../../src/training/pretrain/pretrain.ts';
import {
  PRETRAIN_CONFIG_GROUPS,
  PretrainConfigError,
  type PretrainConfigInput,
  parsePretrainConfig,
} from '../../../src/training/pretrain/pretrain-config.ts';
import { ProgressReporter } from '../../../src/training/progress.ts';
import { ResumeConfigError } from '../../../src/training/run-state.ts';
import { greedyByForward, useBackend } from '../../policy/helpers.ts';

// The whole pipeline, shrunk so one run takes a few seconds; each shrunk setting says why.
const tiny: PretrainConfigInput = {
  seed: 7,
  threads: 2, // the shipped setting: the data-parallel step is what a resume must reproduce
  vocab_size: 384, // BPE on a handful of documents: few merges are frequent enough
  max_train_documents: 8, // ~25k tokens: enough for the loss to fall within the budget
  max_validation_documents: 2, // a few windows of held-out text
  num_hidden_layers: 2, // two layers still exercise the residual stack and GQA
  hidden_size: 32,
  intermediate_size: 64,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 96, // long enough for most SFT examples in a 384-id vocabulary
  pretrain_tokens: 150 * 8 * 96, // 150 steps: a few seconds, and the loss visibly falls
  pretrain_batch_size: 8,
  learning_rate: 3e-3, // a tiny model trains fast at a higher rate
  min_learning_rate: 3e-4,
  warmup_steps: 10,
  sft_examples: 48, // ~12 SFT steps: the phase and its resume are covered, not its quality
  sft_batch_size: 4,
  sft_eval_examples: 14,
  sft_learning_rate: 1e-3,
  sft_min_learning_rate: 1e-4,
  sft_warmup_steps: 2,
  logging_steps: 10,
  eval_steps: 60,
  eval_batches: 2,
  save_steps: 40, // a periodic checkpoint before the interruption, so resume skips past it
};

const quiet = () => new ProgressReporter(() => {}, false);

function weightsOf(dir: string): Map<string, Float32Array> {
  const { tensors } = parseSafetensors(readFileSync(join(dir, 'model.safetensors')));
  return new Map([...tensors].map(([name, t]) => [name, t.data]));
}

function logLines(dir: string): Record<string, number | string>[] {
  return readFileSync(join(dir, 'train_log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

/** Log lines without the wall-clock fields, which differ between any two runs. */
function deterministicLog(dir: string) {
  return logLines(dir).map(({ elapsed_s, tokens_per_s, ...rest }) => rest);
}

describe('runPretrain on a tiny config', () => {
  const root = mkdtempSync(join(tmpdir(), 'corgi-pretrain-'));
  const straight = join(root, 'straight');
  let summary: PretrainSummary;

  beforeAll(async () => {
    await useBackend('wasm');
    summary = await runPretrain({ ...tiny, out: straight }, { progress: quiet(), backend: 'wasm' });
  }, 240_000);

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('trains: the pretraining loss falls and the summary reports the run', () => {
    const train = logLines(straight).filter((l) => l.phase === 'pretrain' && typeof l.loss === 'number');
    expect(train.length).toBe(15);
    const first = train[0]!.loss as number;
    const last = train.at(-1)!.loss as number;
    expect(first).toBeGreaterThan(last + 0.5);
    expect(first).toBeLessThan(Math.log(384) + 0.5); // starts near uniform over the vocabulary

    expect(summary.version).toBe('base-7');
    expect(summary.pretrain.steps).toBe(150);
    expect(summary.config.pretrain_tokens).toBe(150 * 8 * 96);
    expect(summary.sft.steps).toBeGreaterThan(0);
    expect(summary.steps).toBe(summary.pretrain.steps + summary.sft.steps);
    expect(summary.tokens).toBe(summary.pretrain.tokens + summary.sft.tokens);
    expect(Number.isFinite(summary.val_ppl)).toBe(true);
    expect(summary.val_ppl).toBeLessThan(384);
    expect(summary.sft_val_loss!).toBeLessThan(summary.sft_val_loss_before!); // SFT helps on held-out examples
    expect(summary.params).toBeGreaterThan(0);
    expect(summary.size_mb).toBeCloseTo((summary.params * 4) / 1e6, 2);
    const written = JSON.parse(readFileSync(join(straight, 'training_summary.json'), 'utf8'));
    expect(written).toEqual(summary);
    expect(existsSync(`${straight}.work`)).toBe(false); // the work dir goes once the model is out
  });

  it('writes an HF-layout checkpoint that loadCheckpoint and Tokenizer.fromFile load', async () => {
    await verifyChecksums(straight);
    const model = await loadCheckpoint(straight);
    const tokenizer = Tokenizer.fromFile(straight);
    try {
      expect(model.numParameters()).toBe(summary.params);
      expect(model.config.vocab_size).toBe(tokenizer.vocabSize);
      expect(model.config.tie_word_embeddings).toBe(true);
      const prompt = tokenizer.applyChatTemplate(
        [{ role: 'user', content: 'Write a sentence about the car.' }],
        {
          addGenerationPrompt: true,
        },
      ).ids;
      const [generated] = greedyByForward(model, [prompt], 4);
      expect(generated).toHaveLength(4);
      expect(typeof tokenizer.decode(generated!)).toBe('string');
    } finally {
      model.dispose();
    }
    const corgi = JSON.parse(readFileSync(join(straight, 'corgi.json'), 'utf8'));
    const generation = JSON.parse(readFileSync(join(straight, 'generation_config.json'), 'utf8'));
    expect(corgi.version).toBe('base-7');
    expect(generation.corgi_version).toBe('base-7');
    expect(existsSync(join(straight, 'tokenizer_config.json'))).toBe(true);
  });

  it('resumes an interrupted run (in pretraining, then in SFT) to bit-identical weights and the same log', async () => {
    const out = join(root, 'resumed');
    const stopAt = (phase: 'pretrain' | 'sft', step: number) => {
      const controller = new AbortController();
      return {
        signal: controller.signal,
        onStep: (e: { phase: string; step: number }) => {
          if (e.phase === phase && e.step === step) controller.abort();
        },
        progress: quiet(),
        backend: 'wasm' as const,
      };
    };
    // Step 57: between the periodic checkpoints (40, 80), mid logging window, before an eval.
    const first = runPretrain({ ...tiny, out }, stopAt('pretrain', 57));
    await expect(first).rejects.toSatisfy(
      (e) => TrainingInterruptedError.isInstance(e) && e.phase === 'pretrain' && e.step === 57,
    );
    expect(existsSync(join(`${out}.work`, 'checkpoint', 'run_state.json'))).toBe(true);
    expect(existsSync(out)).toBe(false);

    // A resume may not change what the run computes, and a new run may not clobber the old one.
    const changed = runPretrain({ ...tiny, out, resume: true, learning_rate: 0.01, warmup_steps: 5 });
    await expect(changed).rejects.toSatisfy(
      (e) =>
        ResumeConfigError.isInstance(e) &&
        e.field === 'learning_rate' &&
        e.changes.map((c) => c.field).join() === 'learning_rate,warmup_steps',
    );
    await expect(changed).rejects.toThrow(/learning_rate \(recorded 0\.003, given 0\.01\), warmup_steps/);
    await expect(runPretrain({ ...tiny, out })).rejects.toSatisfy(
      (e) => PretrainConfigError.isInstance(e) && e.field === 'resume',
    );

    const second = runPretrain({ ...tiny, out, resume: true }, stopAt('sft', 5));
    await expect(second).rejects.toSatisfy(
      (e) => TrainingInterruptedError.isInstance(e) && e.phase === 'sft',
    );
    const resumed = await runPretrain({ ...tiny, out, resume: true }, { progress: quiet(), backend: 'wasm' });

    expect(resumed.resumed).toBe(true);
    expect(resumed.steps).toBe(summary.steps);
    const a = weightsOf(straight);
    const b = weightsOf(out);
    expect([...b.keys()]).toEqual([...a.keys()]);
    const bytes = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    for (const [name, values] of a) expect(bytes(b.get(name)!).equals(bytes(values)), name).toBe(true);
    expect(deterministicLog(out)).toEqual(deterministicLog(straight));
    expect(resumed.val_ppl).toBe(summary.val_ppl);
  }, 240_000);

  it('continues a finished checkpoint with SFT and resumes it mid-SFT bit for bit', async () => {
    const config = { ...tiny, init_from: straight, pretrain_tokens: null, sft_examples: 24, save_steps: 2 };
    const whole = await runPretrain(
      { ...config, out: join(root, 'sft-whole') },
      { progress: quiet(), backend: 'wasm' },
    );
    expect(whole.pretrain.steps).toBe(0);
    expect(whole.sft.steps).toBeGreaterThan(3);

    const out = join(root, 'sft-resumed');
    const controller = new AbortController();
    const stopped = runPretrain(
      { ...config, out },
      {
        signal: controller.signal,
        onStep: (e) => {
          if (e.phase === 'sft' && e.step === 3) controller.abort();
        },
        progress: quiet(),
        backend: 'wasm',
      },
    );
    await expect(stopped).rejects.toSatisfy(
      (e) => TrainingInterruptedError.isInstance(e) && e.phase === 'sft' && e.step === 3,
    );
    const resumed = await runPretrain(
      { ...config, out, resume: true },
      { progress: quiet(), backend: 'wasm' },
    );
    expect(resumed.sft).toEqual({
      ...whole.sft,
      minutes: resumed.sft.minutes,
      tokens_per_s: resumed.sft.tokens_per_s,
    });
    expect(resumed.val_ppl).toBe(whole.val_ppl);
    const [a, b] = [weightsOf(join(root, 'sft-whole')), weightsOf(out)];
    const bytes = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    for (const [name, values] of a) expect(bytes(b.get(name)!).equals(bytes(values)), name).toBe(true);
    expect(deterministicLog(out)).toEqual(deterministicLog(join(root, 'sft-whole')));
  }, 120_000);

  it('continues a finished checkpoint with SFT only (init_from): same tokenizer, pretraining skipped', async () => {
    const continued = join(root, 'continued');
    // The same seed: the same validation documents, so the perplexities compare.
    const more = { ...tiny, out: continued, init_from: straight, pretrain_tokens: null, sft_examples: 24 };
    const second = await runPretrain(more, { progress: quiet(), backend: 'wasm' });
    expect(second.pretrain.steps).toBe(0);
    expect(second.sft.steps).toBeGreaterThan(0);
    expect(second.config.init_from).toBe(straight);
    // The continued model starts where the first ended: its perplexity before SFT is the first's after.
    expect(second.val_ppl).toBeCloseTo(summary.val_ppl_after_sft!, 2);
    expect(readFileSync(join(continued, 'tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(straight, 'tokenizer.json'), 'utf8'),
    );
    const [before, after] = [weightsOf(straight), weightsOf(continued)];
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    const embedding = 'model.embed_tokens.weight';
    expect(after.get(embedding)).not.toEqual(before.get(embedding)); // SFT moved the weights
    const pretrainLines = logLines(continued).filter((l) => l.phase === 'pretrain' && 'loss' in l);
    expect(pretrainLines).toEqual([]);

    // A checkpoint of another shape is refused by the field that differs.
    await expect(
      runPretrain({ ...more, out: join(root, 'wrong'), hidden_size: 64, intermediate_size: 128 }),
    ).rejects.toSatisfy((e) => PretrainConfigError.isInstance(e) && e.field === 'hidden_size');
    await expect(
      runPretrain({ ...more, out: join(root, 'missing'), init_from: join(root, 'nowhere') }),
    ).rejects.toSatisfy((e) => PretrainConfigError.isInstance(e) && e.field === 'init_from');
  });

  it('continues pretraining a finished checkpoint when given a token budget', async () => {
    const out = join(root, 'continued-pretraining');
    const more = { ...tiny, out, init_from: straight, pretrain_tokens: 30 * 8 * 96, sft_examples: 0 };
    const continued = await runPretrain(more, { progress: quiet(), backend: 'wasm' });
    expect(continued.pretrain.steps).toBe(30);
    expect(continued.sft.steps).toBe(0);
    // Pretraining ran on the loaded weights: the first logged loss is the finished model's, not a fresh init's.
    const [first] = logLines(out).filter((l) => l.phase === 'pretrain' && 'loss' in l);
    expect(first!.loss as number).toBeLessThan(Math.log(384) - 0.5);
    expect(continued.val_ppl).not.toBeCloseTo(summary.val_ppl_after_sft!, 2);
    expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(straight, 'tokenizer.json'), 'utf8'),
    );
  });

  it('refuses to overwrite a finished model unless asked', async () => {
    await expect(runPretrain({ ...tiny, out: straight })).rejects.toSatisfy(
      (e) => PretrainConfigError.isInstance(e) && e.field === 'out',
    );
  });
});

describe('pretraining data', () => {
  const docs = [
    Int32Array.from([10, 11, 12, 13, 14]),
    Int32Array.from([20, 21, 22]),
    Int32Array.from([30, 31, 32, 33]),
  ];

  it('gives the same batches for the same seed, and a cursor continues exactly', () => {
    const source = () => pretrainRowSource({ documents: docs, contextLength: 3, bos: 0, eos: 1, seed: 5 });
    const a = source();
    const b = source();
    let cursor = { epoch: 0, row: 0 };
    const straight: number[][] = [];
    for (let i = 0; i < 6; i++) {
      const { batch, next } = a.takeBatch(cursor, 2);
      straight.push([...batch.inputs, ...batch.targets]);
      cursor = next;
    }
    // A fresh source picking up at step 3's cursor sees the same rows (across the epoch boundary).
    let resumeCursor = { epoch: 0, row: 0 };
    for (let i = 0; i < 3; i++) resumeCursor = b.takeBatch(resumeCursor, 2).next;
    const c = source();
    for (let i = 3; i < 6; i++) {
      const { batch, next } = c.takeBatch(resumeCursor, 2);
      expect([...batch.inputs, ...batch.targets]).toEqual(straight[i]);
      resumeCursor = next;
    }
    expect(cursor.epoch).toBeGreaterThan(0);
    // Targets are the inputs shifted by one.
    const { batch } = source().takeBatch({ epoch: 0, row: 0 }, 1);
    expect([...batch.targets.subarray(0, 2)]).toEqual([...batch.inputs.subarray(1, 3)]);
  });

  it('packs chat sequences whole, pads them, and masks all but the assistant targets', () => {
    const rows = packSequences(
      [
        { ids: [0, 5, 6, 7], mask: [0, 0, 1, 1] },
        { ids: [0, 8, 9], mask: [0, 0, 1] },
      ],
      [0, 1],
      4, // rows of 5 tokens: the second sequence does not fit after the first
      2,
    );
    expect(rows.count).toBe(2);
    expect([...rows.tokens]).toEqual([0, 5, 6, 7, 2, 0, 8, 9, 2, 2]);
    const [batch] = [...evaluationBatches(rows, 2)];
    expect([...batch!.weights!]).toEqual([0, 1, 1, 0, 0, 1, 0, 0]);
    expect(batch!.targetTokens).toBe(3);
  });
});

describe('the minutes budget', () => {
  it('fits the steps, their evaluations and checkpoints into the time left after the reserve', () => {
    const steps = planPretrainSteps({
      secondsLeft: 3000,
      reserveSeconds: 600,
      stepSeconds: 1.5,
      evalSeconds: 20,
      evalEvery: 200,
      saveSeconds: 2,
      saveEvery: 100,
    });
    expect(steps).toBe(Math.floor(2400 / (1.5 + 0.1 + 0.02)));
    expect(
      planPretrainSteps({
        ...{ secondsLeft: 10, reserveSeconds: 60 },
        stepSeconds: 1,
        evalSeconds: 0,
        evalEvery: 1,
        saveSeconds: 0,
        saveEvery: 1,
      }),
    ).toBe(0);
  });
});

describe('PretrainConfig', () => {
  it('fills every default and rejects bad combinations by field', () => {
    const config = parsePretrainConfig({});
    expect(config.hidden_size).toBe(192);
    expect(config.out).toBe('models/base');
    const bad: [PretrainConfigInput, string][] = [
      [{ hidden_size: 250 }, 'hidden_size'],
      [{ num_key_value_heads: 3 }, 'num_key_value_heads'],
      [{ min_learning_rate: 1 }, 'min_learning_rate'],
      [{ warmup_steps: 2 }, 'warmup_steps'], // a minutes budget probes inside warm-up
      [{ pretrain_tokens: 100 }, 'pretrain_tokens'],
      [{ init_from: 'models/base', sft_examples: 0 }, 'sft_examples'], // nothing would train
      [{ sft_copy_share: 1 }, 'sft_copy_share'], // no task examples left
      [{ hidden_sise: 8 } as PretrainConfigInput, '(root)'],
    ];
    for (const [input, field] of bad) {
      expect(() => parsePretrainConfig(input), JSON.stringify(input)).toThrow(
        expect.objectContaining({ field }),
      );
    }
  });

  it('has one CLI flag per field, with its doc line as help', () => {
    const program = new Command();
    const command = registerPretrainCommand(program);
    const flags = new Set(command.options.map((o) => o.long));
    for (const shape of Object.values(PRETRAIN_CONFIG_GROUPS)) {
      for (const field of Object.keys(shape)) expect(flags).toContain(`--${field.replaceAll('_', '-')}`);
    }
    expect(command.options.find((o) => o.long === '--hidden-size')!.description).toBe('Residual width');
  });
});
