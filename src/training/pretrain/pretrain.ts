/**
 * `corgi pretrain`: the reproducible pipeline that builds the shipped base model, `base-<seed>`.
 *
 *   1) tokenizer   byte-level BPE on the Brown train split        → tokenizer.json, tokenizer_config.json
 *   2) pretrain    next-token LM on the train split's documents   → held-out perplexity on validation
 *   3) sft         single-turn instruction → reference examples of every task, loss on assistant tokens
 *   4) export      HF-layout checkpoint written atomically to <out>/ with the log and a summary
 *
 * Each phase is a function over one explicit run state (`PretrainRun`); the training loops read
 * like nanoGPT's `train.py`: learning rate → batch → step → log → evaluate → checkpoint. A loop
 * reports through events (minGPT's callbacks): `step` after every optimizer step, `log` for a
 * metrics line, `notice` for a message. The metrics log (train_log.jsonl) and the progress display
 * attach to them in `runPretrain`, and callers add their own (`onStep`, `onLog`).
 *
 * Every random choice comes from the seed (initialization, the document and window order per
 * epoch, the SFT mix and order), so a data position is a cursor `{epoch, row}` and a work
 * checkpoint in `<out>.work/` (run-state.ts: weights, AdamW moments, cursor, phase, config, log
 * length) is all a resumed run needs to continue bit for bit. Ctrl-C (the `signal`) finishes the
 * current step and writes one.
 *
 * Continuing: with `init_from` a finished checkpoint is the start instead. Its tokenizer is copied
 * (the weights were trained on its ids) and step 1 is skipped; step 2 runs only with an explicit
 * `pretrain_tokens` (continued pretraining; otherwise `val_ppl` is the checkpoint's own
 * perplexity), then SFT with the config's mix: a way to try recipes without redoing the 22 minutes
 * of pretraining.
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
 * Logged metrics: `<out>/train_log.jsonl`, one JSON object per line; docs/training.md explains each.
 */

import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '../../common/random.ts';
import { type BrownDocument, loadBrownCorpus } from '../../data/brown.ts';
import { trainBpe } from '../../model/bpe-trainer.ts';
import { loadCheckpoint, saveCheckpoint } from '../../model/checkpoint.ts';
import { type LlamaConfig, parseLlamaConfig, toConfigJson } from '../../model/config.ts';
import { LlamaModel } from '../../model/llama.ts';
import { type BackendName, selectBackend } from '../../model/tfjs/backend.ts';
import { Tokenizer } from '../../model/tokenizer.ts';
import { buildSftExamples } from '../../tasks/sft.ts';
import { TrainingInterruptedError } from '../interrupted.ts';
import {
  type Batch,
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
} from '../lm/lm-data.ts';
import { batchTensors, evaluateLoss, maskedLossAndGradients, maskedTrainStep } from '../lm/lm-steps.ts';
import { AdamW, createLrSchedule } from '../lm/optim.ts';
import { DataParallelTrainer, type StepStats, trainStep } from '../lm/train.ts';
import { type MetricsLog, ProgressReporter } from '../progress.ts';
import { resumedConfig, WorkCheckpoint } from '../run-state.ts';
import {
  buildModelConfigInput,
  type PretrainConfig,
  PretrainConfigError,
  type PretrainConfigInput,
  parsePretrainConfig,
  RUN_CONTROL_FIELDS,
} from './pretrain-config.ts';
import { buildTokenizerConfig } from './train-tokenizer.ts';

// ---------------------------------------------------------------------------------------------
// Public types.

/** The phases that take optimizer steps. */
type TrainingPhase = 'pretrain' | 'sft';

export type PretrainPhase = TrainingPhase | 'export';

/** The `step` event: after every optimizer step. */
export interface PretrainStepEvent {
  phase: TrainingPhase;
  /** Steps done in this phase (1 after the first). */
  step: number;
  /** The phase's total, or null while a minutes budget is still being measured. */
  totalSteps: number | null;
  loss: number;
  gradNorm: number;
  learningRate: number;
  /** Input tokens per second over the phase so far. */
  tokensPerSecond: number;
  /** Seconds left in the phase at its mean step time (NaN while the total is unknown). */
  etaSeconds: number;
  /** Wall-clock seconds of the whole run so far (all sessions of a resumed run). */
  elapsedSeconds: number;
}

/** The `log` event: one metrics line of train_log.jsonl (every line has `phase`, `step`, `elapsed_s`). */
export type PretrainLogRecord = { phase: TrainingPhase | 'final'; step: number; elapsed_s: number } & Record<
  string,
  number | string
>;

export interface PretrainOptions {
  /** Abort (Ctrl-C): the current step finishes, a checkpoint is written, `TrainingInterruptedError` is thrown. */
  signal?: AbortSignal;
  /** Called after every optimizer step (minGPT's `on_batch_end`). */
  onStep?: (event: PretrainStepEvent) => void;
  /** Called with every metrics line, after it is written to train_log.jsonl. */
  onLog?: (record: PretrainLogRecord) => void;
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
  /** Optimizer steps, pretraining + SFT. */
  steps: number;
  /** Input tokens trained on, pretraining + SFT. */
  tokens: number;
  /** Wall-clock minutes of the whole pipeline (all sessions of a resumed run). */
  minutes: number;
  /** The same, by part: data preparation and export are `other`. */
  minutes_by_part: { tokenizer: number; pretrain: number; sft: number; eval: number; other: number };
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
// The run state. `TrainerState` is what a work checkpoint saves; `PretrainRun` adds what each
// session rebuilds from it (data, model, optimizer) and where the run reports.

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
  version: string;
  phase: PretrainPhase;
  pretrain: PhaseState;
  sft: PhaseState;
  results: {
    val_loss?: number;
    sft_val_loss_before?: number;
    sft_val_loss?: number;
    val_loss_after_sft?: number;
  };
  /** Wall-clock seconds per part of the pipeline, all sessions. */
  seconds: { tokenizer: number; pretrain: number; sft: number; eval: number; other: number };
  resumed: boolean;
}

/** The tokenized data of every phase. */
interface PretrainData {
  trainDocuments: number;
  pretrainRows: RowSource;
  validationRows: Rows;
  sftExamples: number;
  sftRows: RowSource;
  sftValidationRows: Rows;
}

/** Where the phases report; `runPretrain` attaches the metrics log, the progress display and the caller's hooks. */
interface RunEvents {
  step(event: PretrainStepEvent): void;
  log(record: PretrainLogRecord): void;
  notice(text: string): void;
}

interface PretrainRun {
  readonly config: PretrainConfig;
  readonly out: string;
  readonly work: WorkCheckpoint<PretrainConfig, TrainerState>;
  readonly state: TrainerState;
  /** The phase the work checkpoint was in when this session started (its optimizer moments are restored). */
  readonly resumedPhase: PretrainPhase | null;
  readonly clock: PhaseClock;
  readonly metricsLog: MetricsLog;
  readonly events: RunEvents;
  readonly signal: AbortSignal | undefined;
  readonly tokenizer: Tokenizer;
  readonly tokenizerFiles: Record<string, string>;
  readonly data: PretrainData;
  readonly model: LlamaModel;
  /** The current phase's optimizer (none between phases). */
  optimizer: AdamW | null;
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

// ---------------------------------------------------------------------------------------------
// The pipeline.

/** Steps between worker restarts (step 8 of the pretraining loop): each costs ~1.2 s, ~40 s an hour. */
const WORKER_RESTART_STEPS = 40;
const WORKER_RESTART_SECONDS = 1.5;

/**
 * Runs the whole pipeline (or continues it with `resume`) and returns the summary it also writes
 * to `<out>/training_summary.json`.
 *
 * @throws PretrainConfigError for a bad config
 * @throws ResumeConfigError for a resume that would change the config (run-state.ts)
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
  const opened = await openRun(input);
  const { config, state, resumedPhase, work } = opened;
  await mkdir(work.workDir, { recursive: true });
  const clock = new PhaseClock(state.seconds);
  const metricsLog = work.openLog(resumedPhase ? opened : null);
  const events: RunEvents = {
    step: (event) => {
      progress.update({ ...event, totalSteps: event.totalSteps ?? 0 });
      options.onStep?.(event);
    },
    log: (record) => {
      metricsLog.write(record);
      options.onLog?.(record);
    },
    notice: (text) => progress.line(text),
  };
  const backend = await selectBackend({ preferred: options.backend, log: events.notice });
  if (resumedPhase)
    events.notice(`pretrain: resuming ${state.version} in phase ${state.phase} (${work.workDir})`);

  // 1) tokenizer, 2) data, 3) model
  const { tokenizer, tokenizerFiles, trainDocs, validationDocs } = await prepareTokenizer(
    config,
    work,
    clock,
    events,
  );
  clock.switchTo('other');
  const data = prepareData(config, tokenizer, trainDocs, validationDocs);
  setPhaseTotals(config, state, data);
  const model = await createModel(config, tokenizer, resumedPhase ? work.dir : null);
  events.notice(
    `pretrain: ${state.version}: ${model.numParameters().toLocaleString('en-US')} parameters, ` +
      `${config.num_hidden_layers} layers × ${config.hidden_size}, vocab ${tokenizer.vocabSize}, window ${config.max_position_embeddings}`,
  );
  const run: PretrainRun = {
    config,
    out: resolve(config.out),
    work,
    state,
    resumedPhase,
    clock,
    metricsLog,
    events,
    signal: options.signal,
    tokenizer,
    tokenizerFiles,
    data,
    model,
    optimizer: null,
  };
  try {
    // 4) pretraining, 5) SFT, 6) export
    if (state.phase === 'pretrain') await pretrainPhase(run);
    if (state.results.val_loss === undefined) {
      // Continuing a checkpoint (init_from): its perplexity as it came, the figure pretraining reports.
      state.results.val_loss = heldOutLoss(run, data.validationRows);
    }
    if (state.phase === 'sft') await sftPhase(run);
    return await exportModel(run, backend);
  } finally {
    run.optimizer?.dispose();
    model.dispose();
  }
}

/**
 * Refuses to clobber a finished model or an earlier run, then picks up the interrupted run (its
 * config and state) or starts a new one.
 */
async function openRun(input: PretrainConfigInput): Promise<{
  config: PretrainConfig;
  state: TrainerState;
  resumedPhase: PretrainPhase | null;
  work: WorkCheckpoint<PretrainConfig, TrainerState>;
  logBytes: number;
}> {
  const firstConfig = parsePretrainConfig(input);
  const out = resolve(firstConfig.out);
  const work = new WorkCheckpoint<PretrainConfig, TrainerState>(`${out}.work`, 'pretrain');
  if (existsSync(out) && !firstConfig.overwrite) {
    throw new PretrainConfigError('out', `${out} already exists (pass --overwrite to replace it)`);
  }
  if (firstConfig.resume && !existsSync(work.workDir)) {
    throw new PretrainConfigError('resume', `nothing to resume: ${work.workDir} does not exist`);
  }
  if (!firstConfig.resume && existsSync(work.workDir)) {
    throw new PretrainConfigError(
      'resume',
      `${work.workDir} holds an earlier run: pass --resume to continue it, or delete the directory to start over`,
    );
  }
  if (firstConfig.resume && work.saved) {
    const saved = await work.read();
    const config = parsePretrainConfig({
      ...resumedConfig(saved.config, input, RUN_CONTROL_FIELDS),
      resume: true,
    });
    return {
      config,
      state: { ...saved.state, resumed: true },
      resumedPhase: saved.state.phase,
      work,
      logBytes: saved.logBytes,
    };
  }
  const config = firstConfig;
  if (config.init_from !== null) await checkContinuedCheckpoint(config);
  const state: TrainerState = {
    version: `base-${config.seed}`,
    // A continued checkpoint is already pretrained: more pretraining only if a token budget asks for it.
    phase: config.init_from === null || config.pretrain_tokens !== null ? 'pretrain' : 'sft',
    pretrain: freshPhase(),
    sft: freshPhase(),
    results: {},
    seconds: { tokenizer: 0, pretrain: 0, sft: 0, eval: 0, other: 0 },
    resumed: false,
  };
  return { config, state, resumedPhase: null, work, logBytes: 0 };
}

/** 1) Byte-level BPE on the train split, kept in the work dir across sessions (or `init_from`'s). */
async function prepareTokenizer(
  config: PretrainConfig,
  work: WorkCheckpoint<PretrainConfig, TrainerState>,
  clock: PhaseClock,
  events: RunEvents,
): Promise<{
  tokenizer: Tokenizer;
  tokenizerFiles: Record<string, string>;
  trainDocs: BrownDocument[];
  validationDocs: BrownDocument[];
}> {
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
  const tokenizerPath = join(work.workDir, 'tokenizer.json');
  const tokenizerConfigPath = join(work.workDir, 'tokenizer_config.json');
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
    events.notice(`tokenizer: BPE to ${config.vocab_size} ids on ${trainDocs.length} train documents`);
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
  if (tokenizer.bosId === null || tokenizer.tokenToId('<|end|>') === undefined) {
    throw new Error('the trained tokenizer lacks <|begin_of_text|> or <|end|>');
  }
  return { tokenizer, tokenizerFiles, trainDocs, validationDocs };
}

/** 2) Token windows for pretraining and evaluation, packed chat rows for SFT. */
function prepareData(
  config: PretrainConfig,
  tokenizer: Tokenizer,
  trainDocs: BrownDocument[],
  validationDocs: BrownDocument[],
): PretrainData {
  const encode = (docs: BrownDocument[]) => docs.map((d) => Int32Array.from(tokenizer.encode(d.text)));
  const T = config.max_position_embeddings;
  const bos = tokenizer.bosId!;
  const eos = tokenizer.eosId;
  const pretrainRows = pretrainRowSource({
    documents: encode(trainDocs),
    contextLength: T,
    bos,
    eos,
    seed: config.seed,
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
  return {
    trainDocuments: trainDocs.length,
    pretrainRows,
    validationRows,
    sftExamples: sftSequences.length,
    sftRows,
    sftValidationRows,
  };
}

/** The phases' step totals that the config fixes (a minutes budget fixes pretraining's later). */
function setPhaseTotals(config: PretrainConfig, state: TrainerState, data: PretrainData): void {
  if (state.sft.totalSteps === null && data.sftExamples > 0) {
    state.sft.totalSteps = Math.max(
      1,
      Math.round((data.sftRows.rowsOf(0).count * config.sft_epochs) / config.sft_batch_size),
    );
  }
  if (state.pretrain.totalSteps === null && config.pretrain_tokens !== null) {
    state.pretrain.totalSteps = Math.floor(
      config.pretrain_tokens / (config.pretrain_batch_size * config.max_position_embeddings),
    );
  }
}

/** 3) The model: the work checkpoint's (resuming), `init_from`'s, or a fresh seeded one. */
async function createModel(
  config: PretrainConfig,
  tokenizer: Tokenizer,
  workCheckpointDir: string | null,
): Promise<LlamaModel> {
  if (workCheckpointDir) return loadCheckpoint(workCheckpointDir);
  if (config.init_from !== null) return loadCheckpoint(resolve(config.init_from));
  const modelConfig: LlamaConfig = parseLlamaConfig(
    buildModelConfigInput(config, tokenizer.vocabSize, {
      bos: tokenizer.bosId!,
      eos: [...tokenizer.stopIds],
      pad: tokenizer.padId,
    }),
  );
  const model = LlamaModel.init(modelConfig, { seed: config.seed, std: config.initializer_range });
  scaleResidualProjections(model);
  return model;
}

/** The phase's optimizer: fresh, with the saved moments when the run resumes inside this phase. */
async function startOptimizer(run: PretrainRun, phase: TrainingPhase, optimizer: AdamW): Promise<AdamW> {
  if (run.resumedPhase === phase) await run.work.loadOptimizer(optimizer);
  run.optimizer = optimizer;
  return optimizer;
}

/** Ends a phase: no moments are kept between phases, and the next phase is checkpointed. */
async function endPhase(run: PretrainRun, next: PretrainPhase): Promise<void> {
  run.optimizer?.dispose();
  run.optimizer = null;
  run.state.phase = next;
  await saveWork(run);
}

/** Writes the work checkpoint: weights, optimizer moments, state (cursor, phase, log length). */
async function saveWork(run: PretrainRun): Promise<void> {
  run.clock.flush();
  await run.work.save({
    model: run.model,
    optimizer: run.optimizer,
    config: run.config,
    state: run.state,
    log: run.metricsLog,
    extraFiles: run.tokenizerFiles,
  });
}

/** Checkpoints and stops when the signal asked for it (Ctrl-C), after the step that just ended. */
async function stopIfInterrupted(run: PretrainRun, phase: TrainingPhase, step: number): Promise<void> {
  if (run.signal?.aborted !== true) return;
  await saveWork(run);
  run.events.notice(`pretrain: interrupted; checkpoint written to ${run.work.dir}`);
  throw new TrainingInterruptedError(phase, step, run.work.dir);
}

/** The held-out next-token loss on `rows` (forward only). */
function heldOutLoss(run: PretrainRun, rows: Rows, limitBatches = Infinity): number {
  run.clock.switchTo('eval');
  return evaluateLoss(run.model, evaluationBatches(rows, run.config.pretrain_batch_size, limitBatches)).loss;
}

/** An `eval_loss` line for the log. */
function evalRecord(
  run: PretrainRun,
  phase: TrainingPhase,
  step: number,
  loss: number,
  extra = {},
): PretrainLogRecord {
  return {
    phase,
    step,
    eval_loss: round(loss),
    eval_ppl: round(Math.exp(loss), 3),
    ...extra,
    elapsed_s: round(run.clock.total(), 1),
  };
}

/** 4) Pretraining, then the pretrained model's perplexity on the whole validation split. */
async function pretrainPhase(run: PretrainRun): Promise<void> {
  const { config, state, data } = run;
  await startOptimizer(
    run,
    'pretrain',
    new AdamW(run.model.params, {
      lr: config.learning_rate,
      weightDecay: config.weight_decay,
      maxGradNorm: config.max_grad_norm,
    }),
  );
  await pretrainLoop(run);
  const valLoss = heldOutLoss(run, data.validationRows);
  state.results.val_loss = valLoss;
  run.events.log(
    evalRecord(run, 'pretrain', state.pretrain.step, valLoss, {
      eval_tokens: data.validationRows.count * config.max_position_embeddings,
    }),
  );
  run.events.notice(
    `pretrain: validation loss ${valLoss.toFixed(4)}, perplexity ${Math.exp(valLoss).toFixed(2)}`,
  );
  await endPhase(run, data.sftExamples > 0 ? 'sft' : 'export');
}

/** The pretraining loop: learning rate → batch → step → log → budget → evaluate → checkpoint. */
async function pretrainLoop(run: PretrainRun): Promise<void> {
  const { config, model, clock, data } = run;
  const s = run.state.pretrain;
  const B = config.pretrain_batch_size;
  const T = config.max_position_embeddings;
  const opt = run.optimizer!;
  let parallel = config.threads === 2 ? await DataParallelTrainer.start(model, opt) : null;
  const step = async (batch: Batch): Promise<StepStats> => {
    const { inputs, targets } = batchTensors(batch);
    try {
      return parallel ? await parallel.step(inputs, targets) : trainStep(model, opt, inputs, targets);
    } finally {
      tf.dispose([inputs, targets]);
    }
  };
  const periodicRows = spreadRows(data.validationRows, config.eval_batches * B);
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
      const { batch, next } = data.pretrainRows.takeBatch(s.cursor, B);
      // 3) forward, backward and AdamW update (split over two threads with threads = 2)
      const stats = await step(batch);
      if (!Number.isFinite(stats.loss)) {
        throw new Error(`pretraining loss is ${stats.loss} at step ${s.step + 1}; lower learning_rate`);
      }
      const seconds = (performance.now() - t0) / 1000;
      // 4) bookkeeping, log and the step event
      finishStep(run, 'pretrain', {
        stats,
        batch,
        next,
        seconds,
        tokens: B * T,
        learningRate: opt.lr,
        rows: data.pretrainRows,
      });
      // 5) a minutes budget: time the first steps, then fix the total
      if (s.totalSteps === null) {
        probeTimes.push(seconds);
        if (probeTimes.length >= config.budget_probe_steps) await fixBudget(run, probeTimes);
      }
      // 6) periodic held-out loss
      if (s.step % config.eval_steps === 0 && s.step !== s.totalSteps) {
        const loss = heldOutLoss(run, periodicRows);
        run.events.log(evalRecord(run, 'pretrain', s.step, loss));
        run.events.notice(
          `pretrain: step ${s.step}: eval loss ${loss.toFixed(4)} (ppl ${Math.exp(loss).toFixed(1)})`,
        );
      }
      // 7) checkpoint: on Ctrl-C, and periodically
      await stopIfInterrupted(run, 'pretrain', s.step);
      if (s.step % config.save_steps === 0 && s.step !== s.totalSteps) await saveWork(run);
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
async function fixBudget(run: PretrainRun, probeTimes: number[]): Promise<void> {
  const { config, model, data, state } = run;
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
    evaluateLoss(model, evaluationBatches(data.validationRows, config.pretrain_batch_size, 1));
    evalBatchSeconds = (performance.now() - t0) / 1000; // the second: warm
  }
  let sftStepSeconds = 0;
  if (data.sftExamples > 0) {
    const { batch } = data.sftRows.takeBatch({ epoch: 0, row: 0 }, config.sft_batch_size);
    for (let i = 0; i < 2; i++) {
      t0 = performance.now();
      const { grads } = maskedLossAndGradients(model, batch);
      tf.dispose([...grads.values()]);
      sftStepSeconds = (performance.now() - t0) / 1000; // the second: warm
    }
  }
  t0 = performance.now();
  await saveWork(run);
  const saveSeconds = (performance.now() - t0) / 1000;
  const batchesOf = (rows: Rows, size: number) => Math.ceil(rows.count / size);
  const B = config.pretrain_batch_size;
  const T = config.max_position_embeddings;
  const sftSteps = state.sft.totalSteps ?? 0;
  const reserveSeconds =
    sftSteps * sftStepSeconds * 1.1 + // the optimizer update on top of forward and backward
    (2 * batchesOf(data.validationRows, B) + 2 * batchesOf(data.sftValidationRows, B)) * evalBatchSeconds +
    (sftSteps / config.save_steps + 3) * saveSeconds +
    10; // export, summary, slack
  const more = planPretrainSteps({
    // 5% kept back: the machine is shared, and the rate after the probe is not promised.
    secondsLeft: 0.95 * (config.minutes * 60 - run.clock.total()),
    reserveSeconds,
    stepSeconds: stepSeconds + (config.threads === 2 ? WORKER_RESTART_SECONDS / WORKER_RESTART_STEPS : 0),
    evalSeconds: config.eval_batches * evalBatchSeconds,
    evalEvery: config.eval_steps,
    saveSeconds,
    saveEvery: config.save_steps,
  });
  s.totalSteps = s.step + more;
  if (more === 0) {
    run.events.notice(
      `pretrain: warning: ${config.minutes} min leave no time for pretraining after the probe ` +
        `(SFT, evaluation and export need about ${Math.ceil(reserveSeconds / 60)} min); raise --minutes or lower --sft-examples`,
    );
  }
  run.events.notice(
    `pretrain: budget ${config.minutes} min → ${s.totalSteps} steps (pretrain_tokens ${s.totalSteps * B * T}); ` +
      `measured ${Math.round((B * T) / stepSeconds)} tok/s, ` +
      `${Math.round(sftSteps * sftStepSeconds * 1.1)} s reserved for SFT`,
  );
  await saveWork(run); // the budget is now part of the run
}

/** 5) SFT, with the held-out assistant-token loss before and after it. */
async function sftPhase(run: PretrainRun): Promise<void> {
  const { config, state, data } = run;
  await startOptimizer(
    run,
    'sft',
    // No weight decay in SFT (TRL's/HF's default); the clip is the pretraining one.
    new AdamW(run.model.params, {
      lr: config.sft_learning_rate,
      weightDecay: 0,
      maxGradNorm: config.max_grad_norm,
    }),
  );
  if (state.sft.step === 0 && state.results.sft_val_loss_before === undefined) {
    state.results.sft_val_loss_before = heldOutLoss(run, data.sftValidationRows);
  }
  await sftLoop(run);
  state.results.sft_val_loss = heldOutLoss(run, data.sftValidationRows);
  state.results.val_loss_after_sft = heldOutLoss(run, data.validationRows);
  await endPhase(run, 'export');
}

/**
 * The SFT loop: learning rate → batch → step (loss on the assistant tokens only) → log →
 * held-out loss → checkpoint.
 */
async function sftLoop(run: PretrainRun): Promise<void> {
  const { config, model, clock, data } = run;
  const s = run.state.sft;
  const opt = run.optimizer!;
  // Short warm-up, cosine to the floor.
  const schedule = {
    peak: config.sft_learning_rate,
    floor: config.sft_min_learning_rate,
    warmup: config.sft_warmup_steps,
  };
  while (s.step < s.totalSteps!) {
    clock.switchTo('sft');
    const t0 = performance.now();
    // 1) learning rate
    opt.lr = learningRateAt(s.step, { ...schedule, total: s.totalSteps });
    // 2) the next rows; 3) the step, loss on the masked targets only
    const { batch, next } = data.sftRows.takeBatch(s.cursor, config.sft_batch_size);
    const stats = maskedTrainStep(model, opt, batch);
    if (!Number.isFinite(stats.loss)) {
      throw new Error(`SFT loss is ${stats.loss} at step ${s.step + 1}; lower sft_learning_rate`);
    }
    // 4) bookkeeping, log and the step event
    finishStep(run, 'sft', {
      stats,
      batch,
      next,
      seconds: (performance.now() - t0) / 1000,
      tokens: batch.rows * batch.cols,
      learningRate: opt.lr,
      rows: data.sftRows,
    });
    // 5) periodic held-out loss
    if (s.step % config.eval_steps === 0 && s.step !== s.totalSteps) {
      run.events.log(evalRecord(run, 'sft', s.step, heldOutLoss(run, data.sftValidationRows)));
    }
    // 6) checkpoint: on Ctrl-C, and periodically
    await stopIfInterrupted(run, 'sft', s.step);
    if (s.step % config.save_steps === 0 && s.step !== s.totalSteps) await saveWork(run);
  }
}

/** After an optimizer step of either phase: advance the state, log every logging_steps, emit the step event. */
function finishStep(
  run: PretrainRun,
  phase: TrainingPhase,
  step: {
    stats: StepStats;
    batch: { targetTokens: number };
    next: DataCursor;
    seconds: number;
    /** Input tokens in the batch (B × T). */
    tokens: number;
    learningRate: number;
    rows: RowSource;
  },
): void {
  const { stats, batch, next, seconds, tokens, learningRate, rows } = step;
  const s = run.state[phase];
  s.step += 1;
  s.cursor = next;
  s.tokens += tokens;
  s.targetTokens += batch.targetTokens;
  s.stepSeconds += seconds;
  s.lastLoss = stats.loss;
  addToWindow(s.window, stats, tokens, seconds);
  if (s.step % run.config.logging_steps === 0 || s.step === s.totalSteps) {
    run.events.log({
      phase,
      step: s.step,
      ...drainWindow(s.window),
      learning_rate: Number(learningRate.toPrecision(6)),
      tokens: s.tokens,
      epoch: round(s.cursor.epoch + s.cursor.row / rows.rowsOf(s.cursor.epoch).count, 3),
      elapsed_s: round(run.clock.total(), 1),
    });
  }
  const secondsPerStep = s.stepSeconds / Math.max(1, s.step);
  run.events.step({
    phase,
    step: s.step,
    totalSteps: s.totalSteps,
    loss: stats.loss,
    gradNorm: stats.gradNorm,
    learningRate,
    tokensPerSecond: s.tokens / Math.max(1e-9, s.stepSeconds),
    etaSeconds: s.totalSteps === null ? Number.NaN : (s.totalSteps - s.step) * secondsPerStep,
    elapsedSeconds: run.clock.total(),
  });
}

/** 6) The HF-layout checkpoint, atomically, with the log and the summary; the work dir goes. */
async function exportModel(run: PretrainRun, backend: string): Promise<PretrainSummary> {
  const { config, state, tokenizer, out } = run;
  run.clock.switchTo('other');
  const summary = buildSummary(run, backend);
  run.events.log({
    phase: 'final',
    step: summary.steps,
    ...finalMetrics(state),
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
    bos_token_id: tokenizer.bosId,
    eos_token_id: [...tokenizer.stopIds],
    pad_token_id: tokenizer.padId,
    max_length: config.max_position_embeddings,
    corgi_version: state.version,
  };
  await saveCheckpoint(run.model, out, {
    overwrite: config.overwrite,
    files: {
      ...run.tokenizerFiles,
      'generation_config.json': `${JSON.stringify(generationConfig, null, 2)}\n`,
      'corgi.json': `${JSON.stringify(corgiJson, null, 2)}\n`,
      'train_log.jsonl': await readFile(run.metricsLog.path, 'utf8'),
      'training_summary.json': `${JSON.stringify(summary, null, 2)}\n`,
    },
  });
  await rm(run.work.workDir, { recursive: true, force: true });
  run.events.notice(
    `pretrain: wrote ${out} (${state.version}, ${summary.size_mb} MB, val ppl ${summary.val_ppl}) in ${summary.minutes} min`,
  );
  return summary;
}

function finalMetrics(state: TrainerState): Record<string, number> {
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

function buildSummary(run: PretrainRun, backendName: string): PretrainSummary {
  const { config, state, model, data, clock } = run;
  const T = config.max_position_embeddings;
  const p = state.pretrain;
  const f = state.sft;
  const r = state.results;
  const minutes = round(clock.total() / 60, 2);
  const partMinutes = (part: keyof TrainerState['seconds']) => round(state.seconds[part] / 60, 2);
  return {
    version: state.version,
    seed: config.seed,
    config: { ...config, pretrain_tokens: p.step * config.pretrain_batch_size * T },
    model_config: toConfigJson(model.config),
    steps: p.step + f.step,
    tokens: p.tokens + f.tokens,
    minutes,
    minutes_by_part: {
      tokenizer: partMinutes('tokenizer'),
      pretrain: partMinutes('pretrain'),
      sft: partMinutes('sft'),
      eval: partMinutes('eval'),
      other: partMinutes('other'),
    },
    params: model.numParameters(),
    size_mb: round((model.numParameters() * 4) / 1e6, 2), // float32 safetensors
    val_ppl: round(Math.exp(r.val_loss!), 3),
    val_loss: round(r.val_loss!),
    val_ppl_after_sft: r.val_loss_after_sft !== undefined ? round(Math.exp(r.val_loss_after_sft), 3) : null,
    sft_val_loss_before: r.sft_val_loss_before !== undefined ? round(r.sft_val_loss_before) : null,
    sft_val_loss: r.sft_val_loss !== undefined ? round(r.sft_val_loss) : null,
    tokenizer: {
      vocab_size: run.tokenizer.vocabSize,
      train_documents: data.trainDocuments,
      minutes: partMinutes('tokenizer'),
    },
    pretrain: {
      steps: p.step,
      tokens: p.tokens,
      epochs: round(p.tokens / (data.pretrainRows.rowsOf(0).count * T), 3),
      tokens_per_s: Math.round(p.tokens / Math.max(1e-9, p.stepSeconds)),
      minutes: partMinutes('pretrain'),
      final_loss: round(p.lastLoss ?? Number.NaN),
    },
    sft: {
      examples: data.sftExamples,
      steps: f.step,
      tokens: f.tokens,
      target_tokens: f.targetTokens,
      tokens_per_s: Math.round(f.tokens / Math.max(1e-9, f.stepSeconds)),
      minutes: partMinutes('sft'),
      final_loss: f.lastLoss === null ? null : round(f.lastLoss),
    },
    backend: backendName,
    threads: config.threads,
    out: run.out,
    resumed: state.resumed,
  };
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
