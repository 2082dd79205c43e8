/**
 * The CORGI training loop (`corgi train`, and the background trainer): each step
 *
 *   1. draws `prompts_per_step` prompts (task pools, plus logged live prompts when a database is
 *      given) and rolls each out `group_size` times as K-attempt feedback sessions (rollouts.ts,
 *      the live server's session runner);
 *   2. scores each session (best attempt score, plus a rating bonus for logged sessions), turns
 *      rewards into group-relative advantages, and makes every attempt a training sequence: its
 *      prompt as context, its sampled tokens as targets;
 *   3. scores the targets under the frozen reference (for the KL penalty) and runs `epochs`
 *      passes of minibatch AdamW steps on the clipped surrogate (corgi-objective.ts);
 *   4. logs the step's metrics (console, `<out>.work/train_log.jsonl`, PostgreSQL training_steps).
 *
 * It ends after `steps` steps or `pg_tokens` policy-gradient tokens and writes an HF-layout
 * checkpoint: the base weights plus the PEFT adapter (LoRA), or the updated weights (full).
 * Seeded end to end on one thread: the same config gives the same checkpoint, and `--resume`
 * continues from the last work checkpoint exactly.
 */

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type pg from 'pg';
import { selectedBackend } from '../policy/backend.ts';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from '../policy/checkpoint.ts';
import { LocalPolicy } from '../policy/local-policy.ts';
import {
  attachLora,
  copyMergedWeights,
  hasLoraAdapter,
  type LoraConfig,
  loadLoraAdapter,
  loraAdapterFiles,
} from '../policy/lora.ts';
import { AdamW } from '../policy/optim.ts';
import { computeGradients, maskedLogProbs, trainableParameters } from '../policy/sequence-logprobs.ts';
import { createRng } from '../random.ts';
import { buildTaskPool } from '../tasks/pools.ts';
import { type CorgiConfig, type CorgiConfigInput, parseCorgiConfig } from './corgi-config.ts';
import {
  type AttemptSample,
  corgiLoss,
  disposePrepared,
  groupAdvantages,
  type ObjectiveStats,
  prepareBatch,
  readStats,
  sampleSequence,
  sessionReward,
} from './corgi-objective.ts';
import { TrainingInterruptedError } from './interrupted.ts';
import { loadOptimizerState, serializeOptimizerState } from './optimizer-state.ts';
import { loadLoggedSessions, loadProductionPrompts, policyFamily, replaySamples } from './production.ts';
import { MetricsLog, ProgressReporter } from './progress.ts';
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

export interface TrainHooks {
  /** Logs steps to training_steps and draws production prompts / replays from it. */
  db?: pg.Pool;
  signal?: AbortSignal;
  /** Called after every step. */
  onStep?: (metrics: StepMetrics) => void;
  /** Where progress goes. @default a ProgressReporter on stderr */
  progress?: ProgressReporter;
  /** Train on these prompts instead of the task pools (toy tasks in tests, a curated set). */
  prompts?: readonly RolloutPrompt[];
}

/** What a work checkpoint records besides weights and optimizer moments. */
interface WorkState {
  step: number;
  pgTokens: number;
  optimizerSteps: number;
  logBytes: number;
  elapsedSeconds: number;
  /** The run's first step, kept here so a resumed run's summary still reports step 1. */
  first?: StepMetrics;
}

const WORK_STATE = 'corgi_train_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';
/** Files copied from the start checkpoint into every checkpoint this run writes. */
const CARRIED_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];

/** Runs a CORGI training run; see the file comment. */
export async function trainCorgi(input: CorgiConfigInput, hooks: TrainHooks = {}): Promise<TrainSummary> {
  const config = parseCorgiConfig(input);
  const out = resolve(config.out);
  const work = `${out}.work`;
  const version = config.version ?? basename(out);
  const runId = config.run_id ?? version;
  if (existsSync(out) && !config.overwrite && !config.resume)
    throw new CheckpointError(config.out, 'already exists (pass --overwrite to replace it)');
  const progress = hooks.progress ?? new ProgressReporter();

  // The work checkpoint is replaced whole at every save; the metrics log lives beside it.
  const workCheckpoint = join(work, 'checkpoint');
  const resuming = config.resume && existsSync(join(workCheckpoint, WORK_STATE));
  const startDir = resolve(config.policy);
  const weightsDir = resuming ? workCheckpoint : startDir;

  // The policy being trained, and the frozen reference it is kept close to (always the start
  // checkpoint, adapter merged). Both load merged; the trained model gets fresh adapters on top.
  const trained = await LocalPolicy.load(resuming && config.finetune === 'full' ? workCheckpoint : startDir, {
    version,
    mergeAdapter: true,
  });
  const reference = await LocalPolicy.load(startDir, { version: 'reference' });
  const model = trained.model;
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
          baseModelNameOrPath: config.policy,
        }
      : null;
  if (lora) {
    if (resuming && hasLoraAdapter(weightsDir)) await loadLoraAdapter(model, weightsDir);
    else attachLora(model, lora);
  }
  const params = trainableParameters(model);
  const optimizer = new AdamW(params, {
    lr: config.learning_rate,
    weightDecay: config.weight_decay,
    maxGradNorm: config.max_grad_norm,
  });
  // Rollouts sample from a merged copy of the model under training, refreshed after every update:
  // unmerged adapters would triple the small matmuls of every decoding step.
  const sampler = new LocalPolicy(await loadCheckpoint(startDir), trained.tokenizer, {
    version,
    maxBatch: Math.max(16, config.prompts_per_step * config.group_size),
  });
  const refreshSampler = () => copyMergedWeights(sampler.model, model);

  const state: WorkState = { step: 0, pgTokens: 0, optimizerSteps: 0, logBytes: 0, elapsedSeconds: 0 };
  if (resuming) {
    Object.assign(state, JSON.parse(readFileSync(join(workCheckpoint, WORK_STATE), 'utf8')) as WorkState);
    loadOptimizerState(optimizer, readFileSync(join(workCheckpoint, OPTIMIZER_FILE)));
    progress.line(`train: resuming ${version} at step ${state.step} (${state.pgTokens} pg tokens)`);
  }
  mkdirSync(work, { recursive: true });
  refreshSampler();
  const log = MetricsLog.open(join(work, 'train_log.jsonl'), resuming ? state.logBytes : null);

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

  const saveWork = async () => {
    state.logBytes = log.size;
    state.elapsedSeconds = elapsed();
    await saveCheckpoint(model, workCheckpoint, {
      overwrite: true,
      files: {
        ...carried,
        ...(lora ? loraAdapterFiles(model) : {}),
        [OPTIMIZER_FILE]: serializeOptimizerState(optimizer),
        [WORK_STATE]: JSON.stringify(state, null, 2),
      },
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
      const sessions = await rollOut(sampler, prompts, {
        groupSize: config.group_size,
        attempts: config.attempts,
        temperature: config.temperature,
        maxTokens: config.max_tokens,
        seed: config.seed * 1_000_003 + step * 65_537,
        ...(hooks.signal ? { signal: hooks.signal } : {}),
      });
      const rolloutSeconds = (performance.now() - rolloutStart) / 1000;
      if (hooks.signal?.aborted) continue; // saves and stops at the top of the loop

      const { samples, rewards, trainedSessions } = buildSamples(sessions, sampler, config);
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
        const replay = replaySamples(logged.sessions, sampler, {
          ratingWeight: config.rating_weight,
          baseline: meanReward,
          skipZeroAdvantage: config.skip_zero_advantage,
        });
        samples.push(...replay.samples);
        replayed = replay.sessions;
      }

      const trainStart = performance.now();
      const update = await optimise(samples, {
        model,
        reference: reference.model,
        optimizer,
        params,
        config,
        state,
        step,
      });
      refreshSampler();
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
      if (hooks.db) {
        await hooks.db.query(
          `INSERT INTO training_steps (run_id, step, policy_version, metrics) VALUES ($1, $2, $3, $4)
           ON CONFLICT (run_id, step) DO UPDATE SET metrics = EXCLUDED.metrics`,
          [runId, step, version, metrics],
        );
      }
      hooks.onStep?.(metrics);
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
    await saveCheckpoint(model, out, {
      overwrite: true,
      files: {
        ...carried,
        ...(lora ? loraAdapterFiles(model) : {}),
        'corgi.json': `${JSON.stringify(corgiJson, null, 2)}\n`,
        'train_log.jsonl': await readFile(log.path, 'utf8'),
        'training_summary.json': `${JSON.stringify(summary, null, 2)}\n`,
      },
    });
    await rm(work, { recursive: true, force: true });
    progress.line(
      `train: wrote ${out} (${version}: ${state.step} steps, ${state.pgTokens} pg tokens, ${summary.minutes} min)`,
    );
    return summary;
  } finally {
    sampler.dispose();
    optimizer.dispose();
    trained.dispose();
    reference.dispose();
  }
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
  sampler: LocalPolicy,
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
          promptIds: sampler.encodePrompt(attempt.messages, { maxTokens: config.max_tokens }),
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
  model: LocalPolicy['model'];
  reference: LocalPolicy['model'];
  optimizer: AdamW;
  params: ReturnType<typeof trainableParameters>;
  config: CorgiConfig;
  state: WorkState;
  step: number;
}

/**
 * log π of every off-policy sample's targets under `model` as it is before the step's updates (null
 * for on-policy samples): what the truncated importance weights min(c, π/μ) are fixed from.
 */
export function offPolicyLogprobs(
  model: LocalPolicy['model'],
  samples: readonly AttemptSample[],
  config: Pick<CorgiConfig, 'minibatch_size' | 'temperature'>,
): (number[] | null)[] {
  const M = config.minibatch_size;
  const current: (number[] | null)[] = samples.map(() => null);
  for (let i = 0; i < samples.length; i += M) {
    const chunk = samples.slice(i, i + M);
    const off = chunk.map((s, j) => (s.offPolicy ? j : -1)).filter((j) => j >= 0);
    if (off.length === 0) continue;
    const scored = maskedLogProbs(
      model,
      off.map((j) => sampleSequence(chunk[j]!)),
      { temperature: config.temperature },
    );
    off.forEach((j, n) => {
      current[i + j] = scored[n]!;
    });
  }
  return current;
}

/** Reference log-probs, then `epochs` passes of minibatch updates; returns the step's means. */
async function optimise(
  samples: readonly AttemptSample[],
  ctx: OptimiseContext,
): Promise<{ loss: number; kl: number; clipFraction: number; gradNorm: number }> {
  const { model, reference, optimizer, params, config, state } = ctx;
  if (samples.length === 0) return { loss: 0, kl: 0, clipFraction: 0, gradNorm: 0 };
  const M = config.minibatch_size;
  const scoring = { temperature: config.temperature };
  const referenceLogprobs: number[][] = [];
  for (let i = 0; i < samples.length; i += M) {
    const chunk = samples.slice(i, i + M);
    referenceLogprobs.push(...maskedLogProbs(reference, chunk.map(sampleSequence), scoring));
  }
  const currentLogprobs = offPolicyLogprobs(model, samples, config);

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
        idx.map((j) => currentLogprobs[j]!),
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
