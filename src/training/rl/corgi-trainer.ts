/**
 * The CORGI training loop (`corgi train`, and the background trainer): each step
 *
 *   1. draws `prompts_per_step` prompts (task pools, plus logged live prompts when a database is
 *      given) and rolls each out `group_size` times as K-attempt feedback sessions (rollouts.ts,
 *      the live server's session runner) on llama.cpp, the model under training exported to it
 *      (llama-rollouts.ts: an adapter GGUF on the base for LoRA);
 *   2. scores each session (best attempt score, plus a rating bonus for logged sessions), turns
 *      rewards into group-relative advantages, and makes every attempt a training sequence: its
 *      prompt as context, its sampled tokens as targets;
 *   3. scores the targets under the frozen reference (for the KL penalty) and under the policy as
 *      it is (π_old, recomputed in TensorFlow.js: llama.cpp's quantized μ differs), logs how far
 *      μ is from π_old, and runs `epochs` passes of minibatch AdamW steps on the clipped surrogate
 *      against π_old, weighted by min(c, π_old/μ) (corgi-objective.ts);
 *   4. logs the step's metrics (console, `<out>.work/train_log.jsonl`) and emits `onStep`, where the
 *      caller attaches PostgreSQL's training_steps (db/training-steps.ts).
 *
 * It ends after `steps` steps or `pg_tokens` policy-gradient tokens and writes a checkpoint: from a
 * checkpoint directory, HF layout with the base weights plus the PEFT adapter (LoRA) or the updated
 * weights (full); from a GGUF base (a store model), an adapter checkpoint (PEFT files, the llama.cpp
 * adapter GGUF and `base_model.json` naming the base), which a later run trains further.
 * Seeded end to end on one thread: the same config gives the same checkpoint, and `--resume`
 * continues from the last work checkpoint exactly.
 */

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type pg from 'pg';
import { createRng } from '../../common/random.ts';
import {
  CheckpointError,
  loadCheckpoint,
  saveCheckpoint,
  writeCheckpointFiles,
} from '../../model/checkpoint.ts';
import { writeLoraAdapterGguf } from '../../model/gguf/lora-to-gguf.ts';
import type { LlamaModel, LoraAdapter } from '../../model/llama.ts';
import {
  attachLora,
  hasLoraAdapter,
  type LoraConfig,
  loadLoraAdapter,
  loraAdapterFiles,
  mergeLora,
  readLoraAdapter,
  withAdapters,
} from '../../model/lora.ts';
import { selectedBackend } from '../../model/tfjs/backend.ts';
import { ADAPTER_GGUF_FILE, BASE_MODEL_FILE } from '../../policy/adapter-base.ts';
import { buildTaskPool } from '../../tasks/pools.ts';
import { TrainingInterruptedError } from '../interrupted.ts';
import { AdamW } from '../lm/optim.ts';
import { computeGradients, maskedLogProbs, trainableParameters } from '../lm/sequence-logprobs.ts';
import { ProgressReporter } from '../progress.ts';
import { resumedConfig, WorkCheckpoint } from '../run-state.ts';
import { type CorgiConfig, type CorgiConfigInput, parseCorgiConfig } from './corgi-config.ts';
import {
  type AttemptSample,
  corgiLoss,
  disposePrepared,
  engineMismatch,
  groupAdvantages,
  type ObjectiveStats,
  prepareBatch,
  readStats,
  sampleSequence,
  sessionReward,
} from './corgi-objective.ts';
import { baseModelJson, baseModelName, LlamaRollouts, resolveTrainingBase } from './llama-rollouts.ts';
import {
  loadLoggedSessions,
  loadProductionPrompts,
  type PromptEncoder,
  policyFamily,
  replaySamples,
} from './production.ts';
import { type RolloutPrompt, type RolloutSession, rollOut } from './rollouts.ts';

/** Every metric of a step, as logged (docs/training.md explains each). */
export interface StepMetrics {
  step: number;
  /** Mean session reward (best attempt score, the optimised quantity). */
  reward: number;
  /** success@k for k = 1..K: fraction of the step's sessions solved within k attempts. */
  success_at: number[];
  /** Mean k3 KL to the reference per target token, over the step's updates. */
  kl: number;
  /** Fraction of on-policy target tokens whose ratio left [1−ε, 1+ε]. */
  clip_fraction: number;
  /** Sampled-token entropy estimate −mean log μ(token) of the rollouts (nats). */
  entropy: number;
  /** Mean |log π_old − log μ| over the rollouts' sampled tokens: TensorFlow.js against llama.cpp. */
  mismatch_abs_logprob: number;
  /** KL(μ‖π_old) per sampled token (k3 estimate): how far llama.cpp's sampling is from the trained model. */
  mismatch_kl: number;
  /** Mean loss over the step's updates. */
  loss: number;
  grad_norm: number;
  learning_rate: number;
  /** Policy-gradient tokens this step (each target token once, not once per epoch). */
  pg_tokens: number;
  /** Cumulative policy-gradient tokens. */
  pg_tokens_total: number;
  /** Mean attempts per session. */
  attempts: number;
  /** Sessions trained on (after dropping zero-advantage ones) / rolled out. */
  sessions_trained: number;
  sessions: number;
  replayed_sessions: number;
  /** Generated tokens per second in the rollouts, and target tokens per second in the update. */
  rollout_tokens_per_s: number;
  train_tokens_per_s: number;
  elapsed_s: number;
}

export interface TrainSummary {
  version: string;
  out: string;
  steps: number;
  pg_tokens: number;
  minutes: number;
  backend: string | null;
  config: CorgiConfig;
  first: StepMetrics | null;
  last: StepMetrics | null;
}

/** Which run a step belongs to, as `training_steps` records it. */
export interface StepRun {
  /** `run_id` (the config's, or the version). */
  runId: string;
  /** The version the run writes. */
  version: string;
}

export interface TrainHooks {
  /** Draws production prompts and replayed sessions from the logged live traffic. */
  db?: pg.Pool;
  signal?: AbortSignal;
  /** Called after every step (minGPT's `on_batch_end`); a returned promise is awaited before the next. */
  onStep?: (metrics: StepMetrics, run: StepRun) => unknown;
  /** Where progress goes. @default a ProgressReporter on stderr */
  progress?: ProgressReporter;
  /** Train on these prompts instead of the task pools (toy tasks in tests, a curated set). */
  prompts?: readonly RolloutPrompt[];
  /** The model store (store names, bases of adapter checkpoints) and converted-GGUF cache (the commands pass CORGI_DATA_DIR). @default './data' */
  dataDir?: string;
}

/** What a work checkpoint records besides weights and optimizer moments. */
interface WorkState {
  step: number;
  pgTokens: number;
  optimizerSteps: number;
  elapsedSeconds: number;
  /** The run's first step, kept here so a resumed run's summary still reports step 1. */
  first?: StepMetrics;
}

/**
 * Config fields a resumed run may change (every other one must match the record): run control,
 * and the budget, which ends the run later or sooner without changing any step taken.
 */
const MAY_CHANGE_ON_RESUME: ReadonlySet<string> = new Set([
  'out',
  'resume',
  'overwrite',
  'budget',
  'steps',
  'pg_tokens',
  'save_steps',
]);
/** Files copied from the start checkpoint into every checkpoint this run writes. */
const CARRIED_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];

/** Runs a CORGI training run; see the file comment. */
export async function trainCorgi(input: CorgiConfigInput, hooks: TrainHooks = {}): Promise<TrainSummary> {
  const given = parseCorgiConfig(input);
  const out = resolve(given.out);
  const work = `${out}.work`;
  // The work checkpoint is replaced whole at every save; the metrics log lives beside it.
  const workCheckpoint = new WorkCheckpoint<CorgiConfig, WorkState>(work, 'corgi');
  const resumed = given.resume && workCheckpoint.saved ? await workCheckpoint.read() : null;
  // A resumed run keeps the config it started with; flags that would change it are refused.
  const config = resumed
    ? parseCorgiConfig({
        ...resumedConfig(resumed.config, input, MAY_CHANGE_ON_RESUME),
        resume: true,
      } as CorgiConfigInput)
    : given;
  const version = config.version ?? basename(out);
  const runId = config.run_id ?? version;
  if (existsSync(out) && !config.overwrite && !config.resume)
    throw new CheckpointError(config.out, 'already exists (pass --overwrite to replace it)');
  const progress = hooks.progress ?? new ProgressReporter();

  const resuming = resumed !== null;
  const base = await resolveTrainingBase(config.policy, { dataDir: hooks.dataDir ?? './data' });
  const startDir = base.weights;
  const weightsDir = resuming ? workCheckpoint.dir : startDir;
  // From a GGUF base, LoRA checkpoints hold the adapter only (the base stays where it is).
  const adapterOnly = config.finetune === 'lora' && base.ref !== null;

  // The policy being trained, and the frozen reference it is kept close to (always the start
  // weights, adapter merged). The trained model gets fresh adapters on the merged start weights,
  // or, from an adapter checkpoint on a GGUF base, trains that adapter further.
  const startAdapter = base.adapterDir ?? (hasLoraAdapter(startDir) ? startDir : null);
  const loadStart = async (merge: boolean): Promise<LlamaModel> => {
    const model = await loadCheckpoint(startDir);
    if (startAdapter && merge) {
      await loadLoraAdapter(model, startAdapter);
      mergeLora(model);
    }
    return model;
  };
  const model =
    resuming && config.finetune === 'full'
      ? await loadCheckpoint(workCheckpoint.dir)
      : await loadStart(config.finetune === 'full' || base.adapterDir === null);
  // The reference of a LoRA run is the model under training with its start adapters in place of the
  // trained ones (none for fresh adapters: the merged start weights), so the frozen weights are held
  // once — two copies of a 135M model do not fit wasm's 4 GB. Full fine-tuning keeps its own copy.
  const reference: Reference =
    config.finetune === 'full'
      ? modelReference(await loadStart(true))
      : adapterReference(
          model,
          base.adapterDir ? (await readLoraAdapter(model, base.adapterDir)).adapters : new Map(),
        );
  const carried: Record<string, string> = {};
  for (const name of CARRIED_FILES) {
    const path = join(startDir, name);
    if (existsSync(path)) carried[name] = readFileSync(path, 'utf8');
  }

  const lora: LoraConfig | null =
    config.finetune === 'lora'
      ? {
          r: config.lora_r,
          alpha: config.lora_alpha,
          targetModules: config.lora_target_modules,
          seed: config.seed,
          baseModelNameOrPath: base.ref ? baseModelName(base.ref) : config.policy,
        }
      : null;
  if (lora) {
    if (resuming && hasLoraAdapter(weightsDir)) await loadLoraAdapter(model, weightsDir);
    else if (base.adapterDir) await loadLoraAdapter(model, base.adapterDir);
    else attachLora(model, lora);
  }
  const params = trainableParameters(model);
  const optimizer = new AdamW(params, {
    lr: config.learning_rate,
    weightDecay: config.weight_decay,
    maxGradNorm: config.max_grad_norm,
  });
  // Rollouts decode on llama.cpp: the model under training, exported again before every step.
  const rollouts = new LlamaRollouts(base, {
    dir: join(work, 'rollout'),
    version,
    sequences: Math.min(config.rollout_concurrency, config.prompts_per_step * config.group_size),
  });

  const state: WorkState = resumed?.state ?? { step: 0, pgTokens: 0, optimizerSteps: 0, elapsedSeconds: 0 };
  if (resumed) {
    await workCheckpoint.loadOptimizer(optimizer);
    progress.line(`train: resuming ${version} at step ${state.step} (${state.pgTokens} pg tokens)`);
  }
  mkdirSync(work, { recursive: true });
  const log = workCheckpoint.openLog(resumed);

  const pool: readonly RolloutPrompt[] =
    hooks.prompts ??
    buildTaskPool({
      tasks: config.tasks,
      split: 'train',
      size: config.pool_size,
      seed: config.seed,
    }).map(({ id, task, constraints, prompt }) => ({ id, task, constraints, ...(prompt ? { prompt } : {}) }));
  const production = hooks.db && config.production_fraction > 0 ? await loadProductionPrompts(hooks.db) : [];
  // Logged sessions are replayed only if a policy of this one's family (same tokenizer) wrote them.
  const family = policyFamily(startDir);
  if (production.length > 0) progress.line(`train: ${production.length} logged live prompts join the pool`);

  const startedAt = performance.now() / 1000 - state.elapsedSeconds;
  const elapsed = () => performance.now() / 1000 - startedAt;
  const done = () =>
    config.budget === 'steps' ? state.step >= config.steps : state.pgTokens >= config.pg_tokens;
  const total = () => (config.budget === 'steps' ? config.steps : config.pg_tokens);
  let last: StepMetrics | null = null;

  // What a checkpoint of the model under training holds besides `files`: on a GGUF base the adapter
  // alone (no weights), else the weights with the start checkpoint's tokenizer files and any adapter.
  const weights = adapterOnly ? null : model;
  const modelFiles = () => ({ ...(adapterOnly ? {} : carried), ...(lora ? loraAdapterFiles(model) : {}) });
  const writeModel = (dir: string, files: Record<string, string | Uint8Array>) =>
    weights
      ? saveCheckpoint(weights, dir, { overwrite: true, files: { ...modelFiles(), ...files } })
      : writeCheckpointFiles(dir, { ...modelFiles(), ...files }, { overwrite: true });
  const saveWork = async () => {
    state.elapsedSeconds = elapsed();
    await workCheckpoint.save({
      model: weights,
      optimizer,
      config,
      state,
      log,
      extraFiles: modelFiles(),
    });
  };

  try {
    while (!done()) {
      if (hooks.signal?.aborted) {
        await saveWork();
        throw new TrainingInterruptedError('rl', state.step, work);
      }
      const step = state.step + 1;
      const prompts = drawPrompts(pool, production, config, step);

      const rolloutStart = performance.now();
      const policy = await rollouts.renew(model);
      const sessions = await rollOut(policy, prompts, {
        groupSize: config.group_size,
        attempts: config.attempts,
        temperature: config.temperature,
        maxTokens: config.max_tokens,
        seed: config.seed * 1_000_003 + step * 65_537,
        concurrency: config.rollout_concurrency,
        ...(hooks.signal ? { signal: hooks.signal } : {}),
      });
      const rolloutSeconds = (performance.now() - rolloutStart) / 1000;
      if (hooks.signal?.aborted) continue; // saves and stops at the top of the loop

      const { samples, rewards, trainedSessions } = buildSamples(sessions, policy, config);
      const meanReward = rewards.reduce((a, b) => a + b, 0) / Math.max(1, rewards.length);
      let replayed = 0;
      if (hooks.db && config.replay_sessions > 0) {
        const logged = await loadLoggedSessions(hooks.db, {
          limit: config.replay_sessions,
          offset: (step - 1) * config.replay_sessions,
          family,
          vocabSize: model.config.vocab_size,
        });
        if (logged.skipped.length > 0)
          progress.line(
            `train: step ${step}: ${logged.skipped.length} logged attempts/sessions not replayed (${summarizeSkips(logged.skipped)})`,
          );
        const replay = replaySamples(logged.sessions, policy, {
          ratingWeight: config.rating_weight,
          baseline: meanReward,
          skipZeroAdvantage: config.skip_zero_advantage,
        });
        samples.push(...replay.samples);
        replayed = replay.sessions;
      }

      const trainStart = performance.now();
      // π_old in TensorFlow.js: the ratio's denominator and, against llama.cpp's μ, the mismatch.
      const old = oldLogprobs(model, samples, config);
      const mismatch = engineMismatch(samples, old);
      const update = await optimise(samples, old, {
        model,
        reference,
        optimizer,
        params,
        config,
        state,
        step,
      });
      const trainSeconds = (performance.now() - trainStart) / 1000;

      const pgTokens = samples.reduce((a, s) => a + s.completionIds.length, 0);
      state.step = step;
      state.pgTokens += pgTokens;
      const flat = sessions.flat();
      const generated = flat.reduce((a, s) => a + s.attempts.reduce((b, t) => b + t.tokenIds.length, 0), 0);
      const behaviour = flat.flatMap((s) => s.attempts.flatMap((a) => a.logprobs));
      const metrics: StepMetrics = {
        step,
        reward: round(meanReward),
        success_at: Array.from({ length: config.attempts }, (_, k) =>
          round(flat.filter((s) => s.solvedAt !== null && s.solvedAt <= k + 1).length / flat.length),
        ),
        kl: round(update.kl),
        clip_fraction: round(update.clipFraction),
        entropy: round(behaviour.length > 0 ? -behaviour.reduce((a, b) => a + b, 0) / behaviour.length : 0),
        mismatch_abs_logprob: round(mismatch.absLogprob, 6),
        mismatch_kl: round(mismatch.kl, 6),
        loss: round(update.loss),
        grad_norm: round(update.gradNorm),
        learning_rate: optimizer.lr,
        pg_tokens: pgTokens,
        pg_tokens_total: state.pgTokens,
        attempts: round(flat.reduce((a, s) => a + s.attempts.length, 0) / flat.length),
        sessions_trained: trainedSessions,
        sessions: flat.length,
        replayed_sessions: replayed,
        rollout_tokens_per_s: Math.round(generated / Math.max(1e-9, rolloutSeconds)),
        train_tokens_per_s: Math.round((pgTokens * config.epochs) / Math.max(1e-9, trainSeconds)),
        elapsed_s: round(elapsed(), 1),
      };
      state.first ??= metrics;
      last = metrics;
      log.write(metrics as unknown as Record<string, unknown>);
      await hooks.onStep?.(metrics, { runId, version });
      const fraction = config.budget === 'steps' ? step / config.steps : state.pgTokens / config.pg_tokens;
      progress.update({
        phase: `train K=${config.attempts}`,
        step: config.budget === 'steps' ? step : Math.min(state.pgTokens, config.pg_tokens),
        totalSteps: total(),
        tokensPerSecond: metrics.train_tokens_per_s,
        loss: metrics.reward,
        elapsedSeconds: elapsed(),
        etaSeconds: (elapsed() / Math.max(1e-9, fraction)) * (1 - Math.min(1, fraction)),
      });
      if (step % config.save_steps === 0 && !done()) await saveWork();
    }

    const summary: TrainSummary = {
      version,
      out,
      steps: state.step,
      pg_tokens: state.pgTokens,
      minutes: round(elapsed() / 60, 2),
      backend: selectedBackend(),
      config,
      first: state.first ?? null,
      last,
    };
    const corgiJson = {
      version,
      parent: config.policy,
      seed: config.seed,
      trainer: 'corgi',
      attempts: config.attempts,
    };
    const adapterGguf = join(work, ADAPTER_GGUF_FILE);
    if (adapterOnly) await writeLoraAdapterGguf(model, adapterGguf);
    await writeModel(out, {
      ...(adapterOnly && base.ref
        ? { [ADAPTER_GGUF_FILE]: await readFile(adapterGguf), [BASE_MODEL_FILE]: baseModelJson(base.ref) }
        : {}),
      'corgi.json': `${JSON.stringify(corgiJson, null, 2)}\n`,
      'train_log.jsonl': await readFile(log.path, 'utf8'),
      'training_summary.json': `${JSON.stringify(summary, null, 2)}\n`,
    });
    await rm(work, { recursive: true, force: true });
    progress.line(
      `train: wrote ${out} (${version}: ${state.step} steps, ${state.pgTokens} pg tokens, ${summary.minutes} min)`,
    );
    return summary;
  } finally {
    await rollouts.dispose();
    optimizer.dispose();
    model.dispose();
    reference.dispose();
  }
}

/** Scores targets under the frozen reference the KL penalty keeps the policy close to. */
interface Reference {
  logProbs: (
    sequences: Parameters<typeof maskedLogProbs>[1],
    options: Parameters<typeof maskedLogProbs>[2],
  ) => number[][];
  dispose: () => void;
}

function modelReference(reference: LlamaModel): Reference {
  return {
    logProbs: (sequences, options) => maskedLogProbs(reference, sequences, options),
    dispose: () => reference.dispose(),
  };
}

function adapterReference(model: LlamaModel, adapters: ReadonlyMap<string, LoraAdapter>): Reference {
  return {
    logProbs: (sequences, options) =>
      withAdapters(model, adapters, () => maskedLogProbs(model, sequences, options)),
    dispose: () => {
      for (const { a, b } of adapters.values()) tf.dispose([a, b]);
    },
  };
}

/**
 * The step's prompts: a `production_fraction` share from logged live prompts (when there are any),
 * the rest from the task pool, both cycled in order so a resumed run draws the same ones.
 */
function drawPrompts(
  pool: readonly RolloutPrompt[],
  production: readonly RolloutPrompt[],
  config: CorgiConfig,
  step: number,
): RolloutPrompt[] {
  const P = config.prompts_per_step;
  const fromProduction = production.length > 0 ? Math.round(P * config.production_fraction) : 0;
  const fromPool = P - fromProduction;
  const prompts: RolloutPrompt[] = [];
  for (let i = 0; i < fromPool; i++) prompts.push(pool[((step - 1) * fromPool + i) % pool.length]!);
  for (let i = 0; i < fromProduction; i++)
    prompts.push(production[((step - 1) * fromProduction + i) % production.length]!);
  return prompts;
}

/** Rewards, advantages and one training sample per attempt of every session that carries signal. */
function buildSamples(
  groups: readonly RolloutSession[][],
  policy: PromptEncoder,
  config: CorgiConfig,
): { samples: AttemptSample[]; rewards: number[]; trainedSessions: number } {
  const samples: AttemptSample[] = [];
  const rewards: number[] = [];
  let trainedSessions = 0;
  for (const group of groups) {
    const groupRewards = group.map((s) =>
      sessionReward(
        s.attempts.map((a) => a.score),
        config.reward,
        config.discount,
      ),
    );
    rewards.push(...groupRewards);
    const advantages = groupAdvantages(groupRewards, config.advantage);
    group.forEach((session, g) => {
      const advantage = advantages[g]!;
      if (config.skip_zero_advantage && Math.abs(advantage) < 1e-9) return;
      trainedSessions++;
      for (const attempt of session.attempts) {
        if (attempt.tokenIds.length === 0) continue;
        samples.push({
          promptIds: policy.encodePrompt(attempt.messages, { maxTokens: config.max_tokens }),
          completionIds: attempt.tokenIds,
          behaviourLogprobs: attempt.logprobs,
          advantage,
          offPolicy: false,
        });
      }
    });
  }
  return { samples, rewards, trainedSessions };
}

/** "3 cancelled, 1 other_family" */
function summarizeSkips(skipped: readonly { code: string }[]): string {
  const counts = new Map<string, number>();
  for (const { code } of skipped) counts.set(code, (counts.get(code) ?? 0) + 1);
  return [...counts].map(([code, n]) => `${n} ${code}`).join(', ');
}

interface OptimiseContext {
  model: LlamaModel;
  reference: Reference;
  optimizer: AdamW;
  params: ReturnType<typeof trainableParameters>;
  config: CorgiConfig;
  state: WorkState;
  step: number;
}

/**
 * log π_old of every sample's targets under `model` as it is before the step's updates: the PPO
 * ratio's denominator, and what the truncated importance weights min(c, π_old/μ) are fixed from.
 */
export function oldLogprobs(
  model: LlamaModel,
  samples: readonly AttemptSample[],
  config: Pick<CorgiConfig, 'minibatch_size' | 'temperature'>,
): number[][] {
  const M = config.minibatch_size;
  const old: number[][] = [];
  for (let i = 0; i < samples.length; i += M) {
    const chunk = samples.slice(i, i + M);
    old.push(...maskedLogProbs(model, chunk.map(sampleSequence), { temperature: config.temperature }));
  }
  return old;
}

/** Reference log-probs, then `epochs` passes of minibatch updates against `old`; returns the step's means. */
async function optimise(
  samples: readonly AttemptSample[],
  old: readonly (readonly number[])[],
  ctx: OptimiseContext,
): Promise<{ loss: number; kl: number; clipFraction: number; gradNorm: number }> {
  const { model, reference, optimizer, params, config, state } = ctx;
  if (samples.length === 0) return { loss: 0, kl: 0, clipFraction: 0, gradNorm: 0 };
  const M = config.minibatch_size;
  const scoring = { temperature: config.temperature };
  const referenceLogprobs: number[][] = [];
  for (let i = 0; i < samples.length; i += M) {
    const chunk = samples.slice(i, i + M);
    referenceLogprobs.push(...reference.logProbs(chunk.map(sampleSequence), scoring));
  }

  const totals: ObjectiveStats = {
    tokens: 0,
    lossSum: 0,
    klSum: 0,
    clipped: 0,
    onPolicyTokens: 0,
    ratioSum: 0,
  };
  let gradNormSum = 0;
  let updates = 0;
  for (let epoch = 0; epoch < config.epochs; epoch++) {
    const order = createRng(config.seed, 'minibatches', ctx.step, epoch).shuffle(samples.map((_, i) => i));
    for (let i = 0; i < order.length; i += M) {
      const idx = order.slice(i, i + M);
      const prepared = prepareBatch(
        idx.map((j) => samples[j]!),
        idx.map((j) => referenceLogprobs[j]!),
        idx.map((j) => old[j]!),
        { importanceCap: config.importance_cap },
      );
      let stats: tf.Tensor1D | undefined;
      try {
        const { grads } = computeGradients(params, () => {
          const result = corgiLoss(model, prepared, {
            clipEpsilon: config.clip_epsilon,
            klCoef: config.kl_coef,
            temperature: config.temperature,
            importanceCap: config.importance_cap,
          });
          stats = result.stats;
          return result.loss;
        });
        state.optimizerSteps++;
        optimizer.lr =
          config.learning_rate * Math.min(1, state.optimizerSteps / Math.max(1, config.warmup_steps));
        const { gradNorm } = optimizer.apply(grads);
        tf.dispose([...grads.values()]);
        gradNormSum += gradNorm;
        updates++;
        const s = readStats(stats!);
        for (const key of Object.keys(totals) as (keyof ObjectiveStats)[]) totals[key] += s[key];
      } finally {
        disposePrepared(prepared);
      }
      // Let the event loop breathe between updates (progress, signals, a server in the same process).
      await new Promise((r) => setImmediate(r));
    }
  }
  return {
    loss: totals.lossSum / Math.max(1, totals.tokens),
    kl: totals.klSum / Math.max(1, totals.tokens),
    clipFraction: totals.clipped / Math.max(1, totals.onPolicyTokens),
    gradNorm: gradNormSum / Math.max(1, updates),
  };
}

function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
