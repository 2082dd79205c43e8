/**
 * `corgi pretrain`: the reproducible pipeline that builds the shipped base model, `base-<seed>`.
 *
 *   1) tokenizer   byte-level BPE on the Brown train split        → tokenizer.json, tokenizer_config.json
 *   2) pretrain    next-token LM on the train split's documents   → held-out perplexity on validation
 *   -) copy        (copy_steps > 0) random ids repeated once, loss on the copy → greedy copy accuracy
 *   3) sft         single-turn instruction → reference examples of every task, loss on assistant tokens
 *   4) export      HF-layout checkpoint written atomically to <out>/ with the log and a summary
 *
 * The loop reads like nanoGPT's `train.py`: learning rate → batch → step → log → evaluate →
 * checkpoint, each phase commented. Every random choice comes from the seed (initialization, the
 * document and window order per epoch, the SFT mix and order), so a data position is a cursor
 * `{epoch, row}` and a checkpoint in `<out>.work/checkpoint/` (weights, AdamW moments, cursor, phase,
 * log length) is all a resumed run needs to continue bit for bit. Ctrl-C (the `signal`) finishes the
 * current step and writes one.
 *
 * Continuing: with `init_from` a finished checkpoint is the start instead. Its tokenizer is copied
 * (the weights were trained on its ids) and step 1 is skipped; step 2 runs only with an explicit
 * `pretrain_tokens` (continued pretraining, e.g. with a new data mix; otherwise `val_ppl` is the
 * checkpoint's own perplexity), then the copying phase (if any) and SFT with the config's mix: a way
 * to try recipes without redoing the 22 minutes of pretraining.
 *
 * Copying (off by default): rows `<bos> x <eos> x`, loss on the copy, of random ids or (`copy_text`)
 * of spans of Brown text of varied length. `copy_steps` is a phase of them at a constant rate;
 * `copy_during_pretrain` / `copy_during_sft` add one such step after every pretraining / SFT step.
 * Pretraining windows can also be rewritten as repeated passages (`pretrain_repeat_share`). What
 * each did is measured in docs/experiments/2026-11-24-teaching-the-base-to-copy.md.
 *
 * Budget: `pretrain_tokens` fixes the number of pretraining steps. Without it, `minutes` does: the
 * first `budget_probe_steps` steps (inside warm-up, so they do not depend on the total) are timed,
 * one SFT step and one evaluation batch are timed without updating anything, and the total is set
 * to what fits in the time left. The summary reports the resolved `pretrain_tokens`; passing it back
 * reproduces the run's numbers without the clock.
 *
 * Chosen config (the defaults), measured on the 2-core development machine (wasm, two threads):
 * 4 layers, hidden 192, 4 query heads of 48 sharing 2 K/V heads, SwiGLU 512, window 256, tied
 * embeddings, vocab 4096: 2.4M parameters, 9.6 MB of float32. Against hidden 256 (4.2M parameters)
 * it trains 1.6–1.7× more tokens per second (≈1,650 vs ≈1,000 tok/s, interleaved benchmark) and
 * learned about as much per token in 8-minute runs, so in the ~45 minutes of pretraining the hour
 * allows it sees ~1.6× the data (~3 epochs of Brown's 1.5M train tokens instead of ~2), the
 * better side of the compute-optimal trade at this size; it also samples faster for the RL
 * trainer. 3 heads of 64 were slower (≈980 tok/s) than 4 of 48. Window 256 costs the same per
 * token as 128 here and holds a prompt with a few feedback turns.
 *
 * Logged metrics (`<out>/train_log.jsonl`, one JSON object per line; every line has `phase`,
 * `step` and `elapsed_s`, the wall-clock seconds of the whole run so far):
 *
 * | metric           | meaning                                                                          |
 * |------------------|----------------------------------------------------------------------------------|
 * | `loss`           | mean training cross-entropy (nats/token) over the last `logging_steps` steps;     |
 * |                  | in `sft`, over assistant tokens only                                             |
 * | `grad_norm`      | mean global gradient norm before clipping over the same steps                    |
 * | `learning_rate`  | the learning rate of the last step                                               |
 * | `tokens`         | input tokens the phase has trained on so far (windows × length, padding included) |
 * | `tokens_per_s`   | input tokens per second over the same steps                                      |
 * | `epoch`          | passes over the phase's data so far (fractional)                                 |
 * | `eval/loss`      | held-out loss: pretrain, next-token loss on `eval_batches` validation batches     |
 * |                  | spread over the split; sft, the assistant-token loss on validation examples      |
 * | `eval/ppl`       | exp(`eval/loss`)                                                                 |
 * | `val_loss`, `val_ppl` | (phase `final`) next-token loss / perplexity on the whole validation split |
 * |                  | after pretraining; `val_ppl_after_sft` the same after SFT                        |
 * | `sft_val_loss`   | (phase `final`) assistant-token loss on validation examples after SFT;           |
 * |                  | `sft_val_loss_before` before it                                                  |
 */

import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type BrownDocument, loadBrownCorpus } from '../data/brown.ts';
import { type BackendName, selectBackend } from '../policy/backend.ts';
import { trainBpe } from '../policy/bpe-trainer.ts';
import { loadCheckpoint, saveCheckpoint } from '../policy/checkpoint.ts';
import { type LlamaConfig, parseLlamaConfig, toConfigJson } from '../policy/config.ts';
import { LlamaModel } from '../policy/model.ts';
import { AdamW, createLrSchedule } from '../policy/optim.ts';
import { Tokenizer } from '../policy/tokenizer.ts';
import { DataParallelTrainer, type StepStats, trainStep } from '../policy/train.ts';
import { buildTokenizerConfig } from '../policy/train-tokenizer.ts';
import { createRng } from '../random.ts';
import { buildSftExamples } from '../tasks/sft.ts';
import { TrainingInterruptedError } from './interrupted.ts';
import {
  type Batch,
  copyAccuracy,
  copyRowSource,
  type DataCursor,
  evaluationBatches,
  evaluationRows,
  type MaskedSequence,
  packSequences,
  pretrainRowSource,
  type RowSource,
  type Rows,
  sftRowSource,
  spreadRows,
} from './lm-data.ts';
import { batchTensors, evaluateLoss, maskedLossAndGradients, maskedTrainStep } from './lm-steps.ts';
import { loadOptimizerState, serializeOptimizerState } from './optimizer-state.ts';
import {
  buildModelConfigInput,
  type PretrainConfig,
  PretrainConfigError,
  type PretrainConfigInput,
  parsePretrainConfig,
  RUN_CONTROL_FIELDS,
} from './pretrain-config.ts';
import { MetricsLog, ProgressReporter } from './progress.ts';

// ---------------------------------------------------------------------------------------------
// Public types.

/** The phases that take optimizer steps. */
type TrainingPhase = 'pretrain' | 'copy' | 'sft';

export type PretrainPhase = 'pretrain' | 'copy' | 'sft' | 'export';

/** What `onStepEnd` receives after every optimizer step. */
export interface StepEndEvent {
  phase: TrainingPhase;
  /** Steps done in this phase (1 after the first). */
  step: number;
  /** The phase's total, or null while a minutes budget is still being measured. */
  totalSteps: number | null;
  loss: number;
  gradNorm: number;
  learningRate: number;
}

export interface PretrainOptions {
  /** Abort (Ctrl-C): the current step finishes, a checkpoint is written, `TrainingInterruptedError` is thrown. */
  signal?: AbortSignal;
  /** Called after every optimizer step (minGPT's `on_batch_end`). */
  onStepEnd?: (event: StepEndEvent) => void;
  /** Progress and notices. @default a ProgressReporter on stderr */
  progress?: ProgressReporter;
  /** Backend to force; otherwise `selectBackend`'s order (and `CORGI_BACKEND`). */
  backend?: BackendName;
}

/** The final summary: printed by the CLI and written as `<out>/training_summary.json`. */
export interface PretrainSummary {
  version: string;
  seed: number;
  /** The run's config with `pretrain_tokens` resolved: pass it back to reproduce the run. */
  config: PretrainConfig;
  model_config: Record<string, unknown>;
  /** Optimizer steps, pretraining + copying + SFT. */
  steps: number;
  /** Input tokens trained on, pretraining + copying + SFT. */
  tokens: number;
  /** Wall-clock minutes of the whole pipeline (all sessions of a resumed run). */
  minutes: number;
  /** The same, by part: data preparation and export are `other`. */
  minutes_by_part: {
    tokenizer: number;
    pretrain: number;
    copy: number;
    sft: number;
    eval: number;
    other: number;
  };
  params: number;
  size_mb: number;
  /** Perplexity of the pretrained model on the whole Brown validation split. */
  val_ppl: number;
  val_loss: number;
  val_ppl_after_sft: number | null;
  sft_val_loss_before: number | null;
  sft_val_loss: number | null;
  tokenizer: { vocab_size: number; train_documents: number; minutes: number };
  pretrain: {
    steps: number;
    tokens: number;
    epochs: number;
    tokens_per_s: number;
    minutes: number;
    final_loss: number;
  };
  /** The synthetic copying phase (`copy_steps`); `accuracy` is its greedy copy accuracy at the end. */
  copy: {
    steps: number;
    tokens: number;
    minutes: number;
    final_loss: number | null;
    accuracy: number | null;
  };
  sft: {
    examples: number;
    steps: number;
    tokens: number;
    target_tokens: number;
    tokens_per_s: number;
    minutes: number;
    final_loss: number | null;
  };
  backend: string;
  threads: number;
  out: string;
  resumed: boolean;
}

// ---------------------------------------------------------------------------------------------
// The checkpointed state (`trainer_state.json`): everything besides weights and moments.

interface PhaseState {
  step: number;
  /** Null until a minutes budget has been measured. */
  totalSteps: number | null;
  cursor: DataCursor;
  tokens: number;
  targetTokens: number;
  /** Seconds spent in the phase's steps (for tokens/s over the whole phase). */
  stepSeconds: number;
  lastLoss: number | null;
  /** Sums since the last log line, so a resumed run's log lines match an uninterrupted run's. */
  window: LogWindowSums;
}

interface TrainerState {
  format: 1;
  version: string;
  config: PretrainConfig;
  phase: PretrainPhase;
  pretrain: PhaseState;
  copy: PhaseState;
  sft: PhaseState;
  results: {
    val_loss?: number;
    copy_accuracy?: number;
    sft_val_loss_before?: number;
    sft_val_loss?: number;
    val_loss_after_sft?: number;
  };
  /** Wall-clock seconds per part of the pipeline, all sessions. */
  seconds: { tokenizer: number; pretrain: number; copy: number; sft: number; eval: number; other: number };
  /** Bytes of train_log.jsonl at this checkpoint: a resumed run cuts the log back to it. */
  logBytes: number;
  resumed: boolean;
}

function freshPhase(): PhaseState {
  return {
    step: 0,
    totalSteps: null,
    cursor: { epoch: 0, row: 0 },
    tokens: 0,
    targetTokens: 0,
    stepSeconds: 0,
    lastLoss: null,
    window: emptyWindow(),
  };
}

/** Wall-clock accounting: the time since the last `switchTo` goes to the part running until then. */
class PhaseClock {
  private part: keyof TrainerState['seconds'] = 'other';
  private since = performance.now();

  constructor(private readonly seconds: TrainerState['seconds']) {}

  switchTo(part: keyof TrainerState['seconds']): void {
    this.flush();
    this.part = part;
  }

  flush(): void {
    const now = performance.now();
    this.seconds[this.part] += (now - this.since) / 1000;
    this.since = now;
  }

  total(): number {
    this.flush();
    return Object.values(this.seconds).reduce((a, b) => a + b, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/**
 * The learning rate of `step` (from 0): `createLrSchedule` (nanoGPT's `get_lr`: linear warm-up,
 * cosine decay to the floor at `total`). While a minutes budget is being measured the total is
 * unknown; the probe's steps lie inside warm-up (a config rule), where the total does not matter.
 */
function learningRateAt(
  step: number,
  { peak, floor, warmup, total }: { peak: number; floor: number; warmup: number; total: number | null },
): number {
  const totalSteps = Math.max(warmup, total ?? warmup);
  return createLrSchedule({ peakLr: peak, minLr: floor, warmupSteps: warmup, totalSteps })(step);
}

/**
 * Pretraining steps that fit in `secondsLeft`, given the measured cost of one step and of the
 * periodic evaluation and checkpoint it carries, after reserving `reserveSeconds` for the rest.
 */
export function planPretrainSteps({
  secondsLeft,
  reserveSeconds,
  stepSeconds,
  evalSeconds,
  evalEvery,
  saveSeconds,
  saveEvery,
}: {
  secondsLeft: number;
  reserveSeconds: number;
  stepSeconds: number;
  evalSeconds: number;
  evalEvery: number;
  saveSeconds: number;
  saveEvery: number;
}): number {
  const perStep = stepSeconds + evalSeconds / evalEvery + saveSeconds / saveEvery;
  return Math.max(0, Math.floor((secondsLeft - reserveSeconds) / perStep));
}

/** A seeded choice of at most `max` documents (all, in file-id order, when `max` is null). */
function selectDocuments(
  docs: BrownDocument[],
  max: number | null,
  seed: number,
  name: string,
): BrownDocument[] {
  if (max === null || max >= docs.length) return docs;
  return createRng(seed, 'documents', name).shuffle(docs).slice(0, max);
}

async function writeFileAtomic(path: string, content: string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, content);
  await rename(temp, path);
}

function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Residual-branch outputs scaled by 1/√(2·layers) at init (GPT-2, nanoGPT's `c_proj` init). */
function scaleResidualProjections(model: LlamaModel): void {
  const scale = 1 / Math.sqrt(2 * model.config.num_hidden_layers);
  for (const [name, v] of model.params) {
    if (/\.(o_proj|down_proj)\.weight$/.test(name)) v.assign(tf.tidy(() => tf.mul(v, scale)));
  }
}

/** The config a resumed run continues with: the saved one, with only run-control fields replaced. */
function resumeConfig(input: PretrainConfigInput, saved: PretrainConfig): PretrainConfig {
  const merged: Record<string, unknown> = { ...saved };
  for (const [field, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (RUN_CONTROL_FIELDS.has(field)) {
      merged[field] = value;
      continue;
    }
    const before = (saved as Record<string, unknown>)[field];
    if (JSON.stringify(value) !== JSON.stringify(before)) {
      throw new PretrainConfigError(
        field,
        `the run being resumed used ${JSON.stringify(before)}, got ${JSON.stringify(value)}; ` +
          'a resumed run keeps its config (start a new run without --resume to change it)',
      );
    }
  }
  return parsePretrainConfig({ ...merged, resume: true });
}

// ---------------------------------------------------------------------------------------------
// The pipeline.

const CHECKPOINT = 'checkpoint';
/** Steps between worker restarts (step 8 of the pretraining loop): each costs ~1.2 s, ~40 s an hour. */
const WORKER_RESTART_STEPS = 40;
const WORKER_RESTART_SECONDS = 1.5;
const STATE_FILE = 'trainer_state.json';
/** Copying rows of this epoch are never trained on (a run would need ~10⁹ steps to reach it). */
const HELD_OUT_COPY_EPOCH = 1_000_000;
const OPTIMIZER_FILE = 'optimizer.safetensors';

/**
 * Runs the whole pipeline (or continues it with `resume`) and returns the summary it also writes
 * to `<out>/training_summary.json`.
 *
 * @throws PretrainConfigError for a bad config or a resume that would change it
 * @throws TrainingInterruptedError when `signal` aborts (after writing a checkpoint)
 *
 * @example
 * const summary = await runPretrain({ seed: 1, out: 'models/base', minutes: 55 });
 */
export async function runPretrain(
  input: PretrainConfigInput = {},
  options: PretrainOptions = {},
): Promise<PretrainSummary> {
  const progress = options.progress ?? new ProgressReporter();
  const firstConfig = parsePretrainConfig(input);
  const out = resolve(firstConfig.out);
  const work = `${out}.work`;
  const checkpointDir = join(work, CHECKPOINT);

  // --- 0) Setup: refuse to clobber, or pick up the interrupted run. --------------------------
  if (existsSync(out) && !firstConfig.overwrite) {
    throw new PretrainConfigError('out', `${out} already exists (pass --overwrite to replace it)`);
  }
  const canResume = existsSync(join(checkpointDir, STATE_FILE));
  if (firstConfig.resume && !existsSync(work)) {
    throw new PretrainConfigError('resume', `nothing to resume: ${work} does not exist`);
  }
  if (!firstConfig.resume && existsSync(work)) {
    throw new PretrainConfigError(
      'resume',
      `${work} holds an earlier run: pass --resume to continue it, or delete the directory to start over`,
    );
  }
  let state: TrainerState;
  let config: PretrainConfig;
  // The phase the checkpoint was in when this session started: its optimizer moments are restored.
  let resumedPhase: PretrainPhase | null = null;
  if (firstConfig.resume && canResume) {
    const saved = JSON.parse(await readFile(join(checkpointDir, STATE_FILE), 'utf8')) as TrainerState;
    config = resumeConfig(input, saved.config);
    // Work checkpoints written before the copying phase existed lack its state.
    state = {
      ...saved,
      copy: saved.copy ?? freshPhase(),
      seconds: { ...saved.seconds, copy: saved.seconds.copy ?? 0 },
      config,
      resumed: true,
    };
    resumedPhase = saved.phase;
  } else {
    config = firstConfig;
    state = {
      format: 1,
      version: `base-${config.seed}`,
      config,
      // A continued checkpoint is already pretrained: more pretraining only if a token budget asks
      // for it, otherwise straight to copying, or to SFT.
      phase:
        config.init_from === null || config.pretrain_tokens !== null
          ? 'pretrain'
          : config.copy_steps > 0
            ? 'copy'
            : 'sft',
      pretrain: freshPhase(),
      copy: freshPhase(),
      sft: freshPhase(),
      results: {},
      seconds: { tokenizer: 0, pretrain: 0, copy: 0, sft: 0, eval: 0, other: 0 },
      logBytes: 0,
      resumed: false,
    };
  }
  if (config.init_from !== null && !resumedPhase) await checkContinuedCheckpoint(config);
  await mkdir(work, { recursive: true });
  const clock = new PhaseClock(state.seconds);
  const log = MetricsLog.open(join(work, 'train_log.jsonl'), resumedPhase ? state.logBytes : null);
  const backend = await selectBackend({ preferred: options.backend, log: (line) => progress.line(line) });
  if (resumedPhase) {
    progress.line(`pretrain: resuming ${state.version} in phase ${state.phase} (${work})`);
  }

  // --- 1) Tokenizer: byte-level BPE on the train split (kept in the work dir across sessions). --
  const brown = loadBrownCorpus();
  const trainDocs = selectDocuments(
    brown.documentsOf('train'),
    config.max_train_documents,
    config.seed,
    'train',
  );
  const validationDocs = selectDocuments(
    brown.documentsOf('validation'),
    config.max_validation_documents,
    config.seed,
    'validation',
  );
  const tokenizerPath = join(work, 'tokenizer.json');
  const tokenizerConfigPath = join(work, 'tokenizer_config.json');
  if (config.init_from !== null && !existsSync(tokenizerConfigPath)) {
    // The continued checkpoint's tokenizer: its ids are what the weights were trained on.
    for (const [from, to] of [
      ['tokenizer.json', tokenizerPath],
      ['tokenizer_config.json', tokenizerConfigPath], // last: its presence marks the pair complete
    ]) {
      const source = join(resolve(config.init_from), from);
      if (!existsSync(source)) {
        throw new PretrainConfigError(
          'init_from',
          `${config.init_from} has no ${from} (not a corgi pretrain output)`,
        );
      }
      await writeFileAtomic(to, await readFile(source, 'utf8'));
    }
  }
  if (!existsSync(tokenizerPath) || !existsSync(tokenizerConfigPath)) {
    clock.switchTo('tokenizer');
    progress.line(`tokenizer: BPE to ${config.vocab_size} ids on ${trainDocs.length} train documents`);
    const json = trainBpe({ texts: trainDocs.map((d) => d.text), vocabSize: config.vocab_size });
    // tokenizer_config.json last: its presence marks the pair complete.
    await writeFileAtomic(tokenizerPath, JSON.stringify(json));
    await writeFileAtomic(
      tokenizerConfigPath,
      JSON.stringify(buildTokenizerConfig(json, config.max_position_embeddings), null, 2),
    );
  }
  const tokenizerFiles = {
    'tokenizer.json': await readFile(tokenizerPath, 'utf8'),
    'tokenizer_config.json': await readFile(tokenizerConfigPath, 'utf8'),
  };
  const tokenizer = Tokenizer.fromFile(tokenizerPath);
  const endOfTurn = tokenizer.tokenToId('<|end|>');
  if (tokenizer.bosId === null || endOfTurn === undefined) {
    throw new Error('the trained tokenizer lacks <|begin_of_text|> or <|end|>');
  }

  // --- 2) Data: token windows for pretraining and evaluation, packed chat rows for SFT. --------
  clock.switchTo('other');
  const encode = (docs: BrownDocument[]) => docs.map((d) => Int32Array.from(tokenizer.encode(d.text)));
  const T = config.max_position_embeddings;
  const bos = tokenizer.bosId;
  const eos = tokenizer.eosId;
  const trainTokens = encode(trainDocs);
  const pretrainRows = pretrainRowSource({
    documents: trainTokens,
    contextLength: T,
    bos,
    eos,
    seed: config.seed,
    repeatShare: config.pretrain_repeat_share,
  });
  const validationRows = evaluationRows(encode(validationDocs), T, bos, eos);
  // Validation holds task examples only, so sft_val_loss stays the constraint tasks' loss.
  const chat = (split: 'train' | 'validation', size: number): MaskedSequence[] =>
    size === 0
      ? []
      : buildSftExamples({
          split,
          size,
          seed: config.seed,
          copyShare: split === 'train' ? config.sft_copy_share : 0,
          wordCopyShare: split === 'train' ? config.sft_word_copy_share : 0,
          // Validation keeps every length, so sft_val_loss stays comparable between runs.
          inclusionMaxWords: (split === 'train' && config.sft_inclusion_max_words) || undefined,
          inclusionInOrder: split === 'train' && config.sft_inclusion_in_order,
        }).map((example) => {
          const { ids, assistantMask } = tokenizer.applyChatTemplate(example.messages);
          return { ids, mask: assistantMask };
        });
  const sftSequences = chat('train', config.sft_examples);
  const sftRows = sftRowSource(sftSequences, T, tokenizer.padId, config.seed);
  const sftValidationRows = packSequences(
    chat('validation', config.sft_eval_examples),
    Array.from({ length: config.sft_eval_examples }, (_, i) => i),
    T,
    tokenizer.padId,
  );
  if (pretrainRows.rowsOf(0).count < config.pretrain_batch_size) {
    throw new PretrainConfigError(
      'max_train_documents',
      `the train documents give ${pretrainRows.rowsOf(0).count} windows of ${T}, fewer than one batch of ${config.pretrain_batch_size}`,
    );
  }
  if (validationRows.count === 0) {
    throw new PretrainConfigError(
      'max_validation_documents',
      `the validation documents are shorter than one window of ${T}`,
    );
  }
  if (state.sft.totalSteps === null && sftSequences.length > 0) {
    state.sft.totalSteps = Math.max(
      1,
      Math.round((sftRows.rowsOf(0).count * config.sft_epochs) / config.sft_batch_size),
    );
  }
  // Copying rows draw ordinary ids only: a special token inside them would teach it a new meaning.
  const copyRows = copyRowSource({
    length: config.copy_length,
    firstId: 1 + Math.max(bos, endOfTurn, tokenizer.padId, ...tokenizer.stopIds),
    vocabSize: tokenizer.vocabSize,
    bos,
    eos,
    pad: tokenizer.padId,
    seed: config.seed,
    text: config.copy_text ? trainTokens : undefined,
  });
  state.copy.totalSteps ??= config.copy_steps;
  if (state.pretrain.totalSteps === null && config.pretrain_tokens !== null) {
    state.pretrain.totalSteps = Math.floor(config.pretrain_tokens / (config.pretrain_batch_size * T));
  }

  // --- 3) Model: fresh (seeded) or the checkpoint's. ----------------------------------------
  const modelConfig: LlamaConfig = parseLlamaConfig(
    buildModelConfigInput(config, tokenizer.vocabSize, {
      bos,
      eos: [...tokenizer.stopIds],
      pad: tokenizer.padId,
    }),
  );
  let model: LlamaModel;
  if (resumedPhase) {
    model = await loadCheckpoint(checkpointDir);
  } else if (config.init_from !== null) {
    model = await loadCheckpoint(resolve(config.init_from));
  } else {
    model = LlamaModel.init(modelConfig, { seed: config.seed, std: config.initializer_range });
    scaleResidualProjections(model);
  }
  progress.line(
    `pretrain: ${state.version}: ${model.numParameters().toLocaleString('en-US')} parameters, ` +
      `${config.num_hidden_layers} layers × ${config.hidden_size}, vocab ${tokenizer.vocabSize}, window ${T}`,
  );

  let optimizer: AdamW | null = null;
  const loadPhaseOptimizer = async (phase: PretrainPhase, fresh: AdamW) => {
    if (resumedPhase === phase) {
      loadOptimizerState(fresh, await readFile(join(checkpointDir, OPTIMIZER_FILE)));
    }
    return fresh;
  };

  /** Writes the work checkpoint: weights, optimizer moments, state (cursor, phase, log length). */
  const saveWorkCheckpoint = async () => {
    clock.flush();
    state.logBytes = log.size;
    const empty = new AdamW(new Map()); // between phases there are no moments to keep
    await saveCheckpoint(model, checkpointDir, {
      overwrite: true,
      files: {
        ...tokenizerFiles,
        [OPTIMIZER_FILE]: serializeOptimizerState(optimizer ?? empty),
        [STATE_FILE]: JSON.stringify(state, null, 2),
      },
    });
  };
  const interrupted = () => options.signal?.aborted === true;
  const stopHere = async (phase: PretrainPhase, step: number): Promise<never> => {
    await saveWorkCheckpoint();
    progress.line(`pretrain: interrupted; checkpoint written to ${checkpointDir}`);
    throw new TrainingInterruptedError(phase, step, checkpointDir);
  };

  /** The held-out next-token loss on `rows` (forward only). */
  const heldOutLoss = (rows: Rows, limitBatches = Infinity) => {
    clock.switchTo('eval');
    const result = evaluateLoss(model, evaluationBatches(rows, config.pretrain_batch_size, limitBatches));
    return result.loss;
  };

  try {
    // --- 4) Pretraining. ---------------------------------------------------------------------
    if (state.phase === 'pretrain') {
      optimizer = await loadPhaseOptimizer(
        'pretrain',
        new AdamW(model.params, {
          lr: config.learning_rate,
          weightDecay: config.weight_decay,
          maxGradNorm: config.max_grad_norm,
        }),
      );
      await runPretrainPhase();
      // The pretrained model's perplexity on the whole validation split, then on to SFT.
      const valLoss = heldOutLoss(validationRows);
      state.results.val_loss = valLoss;
      log.write({
        phase: 'pretrain',
        step: state.pretrain.step,
        'eval/loss': round(valLoss),
        'eval/ppl': round(Math.exp(valLoss), 3),
        eval_tokens: validationRows.count * T,
        elapsed_s: round(clock.total(), 1),
      });
      progress.line(
        `pretrain: validation loss ${valLoss.toFixed(4)}, perplexity ${Math.exp(valLoss).toFixed(2)}`,
      );
      optimizer.dispose();
      optimizer = null;
      state.phase = config.copy_steps > 0 ? 'copy' : sftSequences.length > 0 ? 'sft' : 'export';
      await saveWorkCheckpoint();
    }

    if (state.results.val_loss === undefined) {
      // Continuing a checkpoint (init_from): its perplexity as it came, the figure pretraining reports.
      state.results.val_loss = heldOutLoss(validationRows);
    }

    // --- 5) Copying: random sequences repeated once, to form the induction heads. ---------------
    if (state.phase === 'copy') {
      optimizer = await loadPhaseOptimizer(
        'copy',
        new AdamW(model.params, {
          lr: config.copy_learning_rate,
          weightDecay: 0,
          maxGradNorm: config.max_grad_norm,
        }),
      );
      await runCopyPhase();
      state.results.copy_accuracy = measureCopyAccuracy();
      progress.line(
        `copy: greedy copy accuracy ${(100 * state.results.copy_accuracy).toFixed(1)}% on held-out rows`,
      );
      optimizer.dispose();
      optimizer = null;
      state.phase = sftSequences.length > 0 ? 'sft' : 'export';
      await saveWorkCheckpoint();
    }

    // --- 6) SFT. ----------------------------------------------------------------------------
    if (state.phase === 'sft') {
      optimizer = await loadPhaseOptimizer(
        'sft',
        // No weight decay in SFT (TRL's/HF's default); the clip is the pretraining one.
        new AdamW(model.params, {
          lr: config.sft_learning_rate,
          weightDecay: 0,
          maxGradNorm: config.max_grad_norm,
        }),
      );
      if (state.sft.step === 0 && state.results.sft_val_loss_before === undefined) {
        state.results.sft_val_loss_before = heldOutLoss(sftValidationRows);
      }
      await runSftPhase();
      state.results.sft_val_loss = heldOutLoss(sftValidationRows);
      state.results.val_loss_after_sft = heldOutLoss(validationRows);
      optimizer.dispose();
      optimizer = null;
      state.phase = 'export';
      await saveWorkCheckpoint();
    }

    // --- 7) Export: the HF-layout checkpoint, atomically, with the log and the summary. -------
    clock.switchTo('other');
    const summary = buildSummary(backend);
    log.write({
      phase: 'final',
      step: summary.steps,
      ...finalMetrics(),
      elapsed_s: round(summary.minutes * 60, 1),
    });
    const corgiJson = {
      version: state.version,
      kind: 'base',
      seed: config.seed,
      created_by: 'corgi pretrain',
      tokenizer: 'corgi-bpe',
      chat_template: 'corgi',
      val_ppl: summary.val_ppl,
      sft_val_loss: summary.sft_val_loss,
    };
    const generationConfig = {
      bos_token_id: bos,
      eos_token_id: [...tokenizer.stopIds],
      pad_token_id: tokenizer.padId,
      max_length: T,
      corgi_version: state.version,
    };
    await saveCheckpoint(model, out, {
      overwrite: config.overwrite,
      files: {
        ...tokenizerFiles,
        'generation_config.json': `${JSON.stringify(generationConfig, null, 2)}\n`,
        'corgi.json': `${JSON.stringify(corgiJson, null, 2)}\n`,
        'train_log.jsonl': await readFile(log.path, 'utf8'),
        'training_summary.json': `${JSON.stringify(summary, null, 2)}\n`,
      },
    });
    await rm(work, { recursive: true, force: true });
    progress.line(
      `pretrain: wrote ${out} (${state.version}, ${summary.size_mb} MB, val ppl ${summary.val_ppl}) in ${summary.minutes} min`,
    );
    return summary;
  } finally {
    optimizer?.dispose();
    model.dispose();
  }

  // ---------------------------------------------------------------------------------------------
  // The two training loops (closures over the run's state, as train.py's loop over its globals).

  async function runPretrainPhase(): Promise<void> {
    const s = state.pretrain;
    const B = config.pretrain_batch_size;
    const opt = optimizer!;
    let parallel = config.threads === 2 ? await DataParallelTrainer.start(model, opt) : null;
    const step = async (batch: Batch): Promise<StepStats> => {
      const { inputs, targets } = batchTensors(batch);
      try {
        return parallel ? await parallel.step(inputs, targets) : trainStep(model, opt, inputs, targets);
      } finally {
        tf.dispose([inputs, targets]);
      }
    };
    const periodicRows = spreadRows(validationRows, config.eval_batches * B);
    const probeTimes: number[] = [];
    try {
      while (s.totalSteps === null || s.step < s.totalSteps) {
        clock.switchTo('pretrain');
        const t0 = performance.now();
        // 1) learning rate for this step (warm-up, then cosine to the floor)
        opt.lr = learningRateAt(s.step, {
          peak: config.learning_rate,
          floor: config.min_learning_rate,
          warmup: config.warmup_steps,
          total: s.totalSteps,
        });
        // 2) the next B windows in this epoch's seeded order
        const { batch, next } = pretrainRows.takeBatch(s.cursor, B);
        // 3) forward, backward and AdamW update (split over two threads with threads = 2); the
        // worker takes the weights anew each step, so an interleaved copying step is seen by both
        const stats = await step(batch);
        if (config.copy_during_pretrain) interleavedCopyStep(opt);
        if (!Number.isFinite(stats.loss)) {
          throw new Error(`pretraining loss is ${stats.loss} at step ${s.step + 1}; lower learning_rate`);
        }
        const seconds = (performance.now() - t0) / 1000;
        // 4) bookkeeping, log and progress
        finishStep('pretrain', s, {
          stats,
          batch,
          next,
          seconds,
          tokens: B * T,
          learningRate: opt.lr,
          rows: pretrainRows,
        });
        // 5) a minutes budget: time the first steps, then fix the total
        if (s.totalSteps === null) {
          probeTimes.push(seconds);
          if (probeTimes.length >= config.budget_probe_steps) await fixBudget(probeTimes);
        }
        // 6) periodic held-out loss
        if (s.step % config.eval_steps === 0 && s.step !== s.totalSteps) {
          const loss = heldOutLoss(periodicRows);
          log.write({
            phase: 'pretrain',
            step: s.step,
            'eval/loss': round(loss),
            'eval/ppl': round(Math.exp(loss), 3),
            elapsed_s: round(clock.total(), 1),
          });
          progress.line(
            `pretrain: step ${s.step}: eval loss ${loss.toFixed(4)} (ppl ${Math.exp(loss).toFixed(1)})`,
          );
        }
        // 7) checkpoint: periodically, and on Ctrl-C
        if (interrupted()) await stopHere('pretrain', s.step);
        if (s.step % config.save_steps === 0 && s.step !== s.totalSteps) await saveWorkCheckpoint();
        // 8) a fresh worker now and then. Workaround: train-worker.ts assigns each step's weights
        // from tensors it never disposes, so its wasm heap grows by the model's size per step and
        // aborts near 2 GB (~100 steps of this model). The worker holds no state between steps
        // (weights come with every step), so replacing it changes no number.
        if (parallel && s.step % WORKER_RESTART_STEPS === 0) {
          await parallel.close();
          parallel = await DataParallelTrainer.start(model, opt);
        }
      }
    } finally {
      await parallel?.close();
    }
  }

  /** Sets the pretraining total from the probe's step times and the measured cost of everything after it. */
  async function fixBudget(probeTimes: number[]): Promise<void> {
    const s = state.pretrain;
    // The first steps pay for kernel set-up and the worker's start: time the rest. The mean, not
    // the median: the budget must also pay for the slow steps.
    const timed = probeTimes.slice(2);
    const stepSeconds = timed.reduce((a, b) => a + b, 0) / timed.length;
    // One evaluation batch and one SFT step's forward and backward, timed without changing anything.
    let t0 = 0;
    let evalBatchSeconds = 0;
    for (let i = 0; i < 2; i++) {
      t0 = performance.now();
      evaluateLoss(model, evaluationBatches(validationRows, config.pretrain_batch_size, 1));
      evalBatchSeconds = (performance.now() - t0) / 1000; // the second: warm
    }
    let sftStepSeconds = 0;
    if (sftSequences.length > 0) {
      const { batch } = sftRows.takeBatch({ epoch: 0, row: 0 }, config.sft_batch_size);
      for (let i = 0; i < 2; i++) {
        t0 = performance.now();
        const { grads } = maskedLossAndGradients(model, batch);
        tf.dispose([...grads.values()]);
        sftStepSeconds = (performance.now() - t0) / 1000; // the second: warm
      }
    }
    t0 = performance.now();
    await saveWorkCheckpoint();
    const saveSeconds = (performance.now() - t0) / 1000;
    const batchesOf = (rows: Rows, size: number) => Math.ceil(rows.count / size);
    const B = config.pretrain_batch_size;
    const sftSteps = state.sft.totalSteps ?? 0;
    const reserveSeconds =
      sftSteps * sftStepSeconds * 1.1 + // the optimizer update on top of forward and backward
      (2 * batchesOf(validationRows, B) + 2 * batchesOf(sftValidationRows, B)) * evalBatchSeconds +
      (sftSteps / config.save_steps + 3) * saveSeconds +
      10; // export, summary, slack
    const more = planPretrainSteps({
      // 5% kept back: the machine is shared, and the rate after the probe is not promised.
      secondsLeft: 0.95 * (config.minutes * 60 - clock.total()),
      reserveSeconds,
      stepSeconds: stepSeconds + (config.threads === 2 ? WORKER_RESTART_SECONDS / WORKER_RESTART_STEPS : 0),
      evalSeconds: config.eval_batches * evalBatchSeconds,
      evalEvery: config.eval_steps,
      saveSeconds,
      saveEvery: config.save_steps,
    });
    s.totalSteps = s.step + more;
    if (more === 0) {
      progress.line(
        `pretrain: warning: ${config.minutes} min leave no time for pretraining after the probe ` +
          `(SFT, evaluation and export need about ${Math.ceil(reserveSeconds / 60)} min); raise --minutes or lower --sft-examples`,
      );
    }
    progress.line(
      `pretrain: budget ${config.minutes} min → ${s.totalSteps} steps (pretrain_tokens ${s.totalSteps * B * T}); ` +
        `measured ${Math.round((B * T) / stepSeconds)} tok/s, ` +
        `${Math.round(sftSteps * sftStepSeconds * 1.1)} s reserved for SFT`,
    );
    await saveWorkCheckpoint(); // the budget is now part of the run
  }

  /** Copying steps at a constant rate after a short warm-up (the circuit forms suddenly; decay would stall it). */
  async function runCopyPhase(): Promise<void> {
    await runMaskedPhase({
      phase: 'copy',
      rows: copyRows,
      batchSize: config.copy_batch_size,
      // The shared schedule with its floor at the peak: warm-up, then constant.
      schedule: {
        peak: config.copy_learning_rate,
        floor: config.copy_learning_rate,
        warmup: config.sft_warmup_steps,
      },
      rateField: 'copy_learning_rate',
    });
  }

  /**
   * One copying step with another phase's optimizer and rate (`copy_during_pretrain`,
   * `copy_during_sft`): it keeps the copying rows' cursor, so a resumed run draws the same rows.
   */
  function interleavedCopyStep(opt: AdamW): void {
    const copy = copyRows.takeBatch(state.copy.cursor, config.copy_batch_size);
    const copyStats = maskedTrainStep(model, opt, copy.batch);
    state.copy.cursor = copy.next;
    state.copy.tokens += copy.batch.rows * copy.batch.cols;
    state.copy.lastLoss = copyStats.loss;
  }

  /** Greedy copy accuracy on copying rows the phase never trains on (an epoch far past its last). */
  function measureCopyAccuracy(): number {
    clock.switchTo('eval');
    const { batch } = copyRows.takeBatch({ epoch: HELD_OUT_COPY_EPOCH, row: 0 }, 32);
    const predicted = tf.tidy(() => {
      const { inputs } = batchTensors(batch);
      return tf.argMax(model.forward(inputs), -1).dataSync() as Int32Array;
    });
    return copyAccuracy(predicted, batch, eos);
  }

  async function runSftPhase(): Promise<void> {
    await runMaskedPhase({
      phase: 'sft',
      rows: sftRows,
      batchSize: config.sft_batch_size,
      // Short warm-up, cosine to the floor.
      schedule: {
        peak: config.sft_learning_rate,
        floor: config.sft_min_learning_rate,
        warmup: config.sft_warmup_steps,
      },
      rateField: 'sft_learning_rate',
      interleaveCopying: config.copy_during_sft,
      heldOutRows: sftValidationRows,
    });
  }

  /**
   * The loop of the phases trained on masked rows (copying, SFT): learning rate → batch → step (loss
   * on the masked targets only) → log → held-out loss → checkpoint.
   */
  async function runMaskedPhase({
    phase,
    rows,
    batchSize,
    schedule,
    rateField,
    interleaveCopying = false,
    heldOutRows,
  }: {
    phase: 'copy' | 'sft';
    rows: RowSource;
    batchSize: number;
    schedule: { peak: number; floor: number; warmup: number };
    /** The config field to name when the loss diverges. */
    rateField: string;
    /** Follow every step with one copying step (`copy_during_sft`). */
    interleaveCopying?: boolean;
    /** Rows whose held-out loss is logged every eval_steps. */
    heldOutRows?: Rows;
  }): Promise<void> {
    const s = state[phase];
    const opt = optimizer!;
    while (s.step < s.totalSteps!) {
      clock.switchTo(phase);
      const t0 = performance.now();
      // 1) learning rate
      opt.lr = learningRateAt(s.step, { ...schedule, total: s.totalSteps });
      // 2) the next rows; 3) the step, loss on the masked targets only
      const { batch, next } = rows.takeBatch(s.cursor, batchSize);
      const stats = maskedTrainStep(model, opt, batch);
      if (interleaveCopying) interleavedCopyStep(opt);
      if (!Number.isFinite(stats.loss)) {
        throw new Error(
          `${phase === 'sft' ? 'SFT' : 'copying'} loss is ${stats.loss} at step ${s.step + 1}; lower ${rateField}`,
        );
      }
      // 4) bookkeeping, log and progress
      finishStep(phase, s, {
        stats,
        batch,
        next,
        seconds: (performance.now() - t0) / 1000,
        tokens: batch.rows * batch.cols,
        learningRate: opt.lr,
        rows,
      });
      // 5) periodic held-out loss
      if (heldOutRows && s.step % config.eval_steps === 0 && s.step !== s.totalSteps) {
        const loss = heldOutLoss(heldOutRows);
        log.write({
          phase,
          step: s.step,
          'eval/loss': round(loss),
          'eval/ppl': round(Math.exp(loss), 3),
          elapsed_s: round(clock.total(), 1),
        });
      }
      // 6) checkpoint: periodically, and on Ctrl-C
      if (interrupted()) await stopHere(phase, s.step);
      if (s.step % config.save_steps === 0 && s.step !== s.totalSteps) await saveWorkCheckpoint();
    }
  }

  /** After an optimisation step of either phase: advance the state, log every logging_steps, report progress. */
  function finishStep(
    phase: TrainingPhase,
    s: PhaseState,
    step: {
      stats: StepStats;
      batch: { targetTokens: number };
      next: PhaseState['cursor'];
      seconds: number;
      /** Input tokens in the batch (B × T). */
      tokens: number;
      learningRate: number;
      rows: { rowsOf(epoch: number): { count: number } };
    },
  ): void {
    const { stats, batch, next, seconds, tokens, learningRate, rows } = step;
    s.step += 1;
    s.cursor = next;
    s.tokens += tokens;
    s.targetTokens += batch.targetTokens;
    s.stepSeconds += seconds;
    s.lastLoss = stats.loss;
    addToWindow(s.window, stats, tokens, seconds);
    if (s.step % config.logging_steps === 0 || s.step === s.totalSteps) {
      log.write({
        phase,
        step: s.step,
        ...drainWindow(s.window),
        learning_rate: Number(learningRate.toPrecision(6)),
        tokens: s.tokens,
        epoch: round(s.cursor.epoch + s.cursor.row / rows.rowsOf(s.cursor.epoch).count, 3),
        elapsed_s: round(clock.total(), 1),
      });
    }
    reportProgress(phase, s, stats.loss);
    options.onStepEnd?.({
      phase,
      step: s.step,
      totalSteps: s.totalSteps,
      loss: stats.loss,
      gradNorm: stats.gradNorm,
      learningRate,
    });
  }

  function reportProgress(phase: TrainingPhase, s: PhaseState, loss: number): void {
    const tokensPerSecond = s.tokens / Math.max(1e-9, s.stepSeconds);
    const secondsPerStep = s.stepSeconds / Math.max(1, s.step);
    progress.update({
      phase,
      step: s.step,
      totalSteps: s.totalSteps ?? 0,
      tokensPerSecond,
      loss,
      etaSeconds: s.totalSteps === null ? Number.NaN : (s.totalSteps - s.step) * secondsPerStep,
      elapsedSeconds: clock.total(),
    });
  }

  function finalMetrics() {
    const r = state.results;
    return {
      val_loss: round(r.val_loss!),
      val_ppl: round(Math.exp(r.val_loss!), 3),
      ...(r.val_loss_after_sft !== undefined
        ? { val_ppl_after_sft: round(Math.exp(r.val_loss_after_sft), 3) }
        : {}),
      ...(r.sft_val_loss_before !== undefined ? { sft_val_loss_before: round(r.sft_val_loss_before) } : {}),
      ...(r.sft_val_loss !== undefined ? { sft_val_loss: round(r.sft_val_loss) } : {}),
    };
  }

  function buildSummary(backendName: string): PretrainSummary {
    const p = state.pretrain;
    const f = state.sft;
    const r = state.results;
    const minutes = round(clock.total() / 60, 2);
    return {
      version: state.version,
      seed: config.seed,
      config: { ...config, pretrain_tokens: p.step * config.pretrain_batch_size * T },
      model_config: toConfigJson(model.config),
      steps: p.step + state.copy.step + f.step,
      tokens: p.tokens + state.copy.tokens + f.tokens,
      minutes,
      minutes_by_part: {
        tokenizer: round(state.seconds.tokenizer / 60, 2),
        pretrain: round(state.seconds.pretrain / 60, 2),
        copy: round(state.seconds.copy / 60, 2),
        sft: round(state.seconds.sft / 60, 2),
        eval: round(state.seconds.eval / 60, 2),
        other: round(state.seconds.other / 60, 2),
      },
      params: model.numParameters(),
      size_mb: round((model.numParameters() * 4) / 1e6, 2), // float32 safetensors
      val_ppl: round(Math.exp(r.val_loss!), 3),
      val_loss: round(r.val_loss!),
      val_ppl_after_sft: r.val_loss_after_sft !== undefined ? round(Math.exp(r.val_loss_after_sft), 3) : null,
      sft_val_loss_before: r.sft_val_loss_before !== undefined ? round(r.sft_val_loss_before) : null,
      sft_val_loss: r.sft_val_loss !== undefined ? round(r.sft_val_loss) : null,
      tokenizer: {
        vocab_size: tokenizer.vocabSize,
        train_documents: trainDocs.length,
        minutes: round(state.seconds.tokenizer / 60, 2),
      },
      pretrain: {
        steps: p.step,
        tokens: p.tokens,
        epochs: round(p.tokens / (pretrainRows.rowsOf(0).count * T), 3),
        tokens_per_s: Math.round(p.tokens / Math.max(1e-9, p.stepSeconds)),
        minutes: round(state.seconds.pretrain / 60, 2),
        final_loss: round(p.lastLoss ?? Number.NaN),
      },
      copy: {
        steps: state.copy.step,
        tokens: state.copy.tokens,
        minutes: round(state.seconds.copy / 60, 2),
        final_loss: state.copy.lastLoss === null ? null : round(state.copy.lastLoss),
        accuracy: r.copy_accuracy === undefined ? null : round(r.copy_accuracy),
      },
      sft: {
        examples: sftSequences.length,
        steps: f.step,
        tokens: f.tokens,
        target_tokens: f.targetTokens,
        tokens_per_s: Math.round(f.tokens / Math.max(1e-9, f.stepSeconds)),
        minutes: round(state.seconds.sft / 60, 2),
        final_loss: f.lastLoss === null ? null : round(f.lastLoss),
      },
      backend: backendName,
      threads: config.threads,
      out,
      resumed: state.resumed,
    };
  }
}

/**
 * Refuses an `init_from` checkpoint that is missing or whose shape differs from the config's model
 * fields (they are the run's record of the architecture, and SFT rows are cut to its window), before
 * any work file is written.
 */
async function checkContinuedCheckpoint(config: PretrainConfig): Promise<void> {
  const dir = resolve(config.init_from!);
  let has: LlamaConfig;
  try {
    has = parseLlamaConfig(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')));
  } catch (error) {
    throw new PretrainConfigError('init_from', `${dir}/config.json: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const want = parseLlamaConfig(buildModelConfigInput(config, has.vocab_size));
  for (const field of CONTINUED_SHAPE_FIELDS) {
    if (has[field] !== want[field]) {
      throw new PretrainConfigError(
        field,
        `${dir} has ${field} ${JSON.stringify(has[field])} but the config says ${JSON.stringify(want[field])}; pass the checkpoint's value`,
      );
    }
  }
}

/** LlamaConfig fields an `init_from` checkpoint must share with the config (same names as its flags). */
const CONTINUED_SHAPE_FIELDS = [
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'max_position_embeddings',
  'rope_theta',
] as const satisfies readonly (keyof LlamaConfig)[];

/** Step statistics summed since the last log line (the `logging_steps` window). */
interface LogWindowSums {
  loss: number;
  gradNorm: number;
  steps: number;
  tokens: number;
  seconds: number;
}

function emptyWindow(): LogWindowSums {
  return { loss: 0, gradNorm: 0, steps: 0, tokens: 0, seconds: 0 };
}

function addToWindow(w: LogWindowSums, stats: StepStats, tokens: number, seconds: number): void {
  w.loss += stats.loss;
  w.gradNorm += stats.gradNorm;
  w.steps += 1;
  w.tokens += tokens;
  w.seconds += seconds;
}

/** The window's means for a log line; empties it. */
function drainWindow(w: LogWindowSums): { loss: number; grad_norm: number; tokens_per_s: number } {
  const n = Math.max(1, w.steps);
  const out = {
    loss: round(w.loss / n),
    grad_norm: round(w.gradNorm / n),
    tokens_per_s: Math.round(w.tokens / Math.max(1e-9, w.seconds)),
  };
  Object.assign(w, emptyWindow());
  return out;
}
