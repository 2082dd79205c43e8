/**
 * Off-policy replay of logged production sessions (docs/training.md, "Learning from production") against the
 * real PostgreSQL: sessions are logged through the live path (runSession → logSession) by a tiny
 * real model, rated, loaded back, turned into samples and weighted, and one training step replays
 * them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConstraints } from '../../../src/checkers/registry.ts';
import type { ConstraintSpec } from '../../../src/checkers/types.ts';
import type { Database } from '../../../src/db/database.ts';
import { addRating, createSession, endSession, insertTurn } from '../../../src/db/sessions.ts';
import { trainingStepRecorder } from '../../../src/db/training-steps.ts';
import { trainBpe } from '../../../src/model/bpe-trainer.ts';
import { loadCheckpoint, saveCheckpoint } from '../../../src/model/checkpoint.ts';
import { LlamaModel } from '../../../src/model/llama.ts';
import type { LlamaCppPolicy } from '../../../src/policy/llama-cpp-policy.ts';
import { type ServingLoader, servingPolicyLoader } from '../../../src/policy/serving-loader.ts';
import { fixedPolicy, type SamplingOptions } from '../../../src/policy/types.ts';
import { registerCheckpoint } from '../../../src/promotion/versions.ts';
import { logSession } from '../../../src/session/recorder.ts';
import { runSession } from '../../../src/session/session-runner.ts';
import { buildTokenizerConfig } from '../../../src/training/pretrain/train-tokenizer.ts';
import { ProgressReporter } from '../../../src/training/progress.ts';
import { disposePrepared, prepareBatch, ratingBonus } from '../../../src/training/rl/corgi-objective.ts';
import { oldLogprobs, trainCorgi } from '../../../src/training/rl/corgi-trainer.ts';
import {
  type LoggedSession,
  loadLoggedSessions,
  policyFamily,
  type ReplaySkip,
  replaySamples,
} from '../../../src/training/rl/production.ts';
import type { RolloutPrompt } from '../../../src/training/rl/rollouts.ts';
import { useBackend } from '../../policy/helpers.ts';
import { saveTinyCheckpoint, tinyConfig, tinyModel } from '../../policy/tiny-policy.ts';
import { openTestDatabase } from '../../support/database.ts';

const FEWER_THAN_TWO_WORDS: ConstraintSpec[] = [
  { id: 'length_constraints:number_words', kwargs: { relation: 'less than', num_words: 2 } },
];
// The live server's default sampling (temperature 0.7): μ is the tempered distribution, π the
// trainer's at temperature 1, so the ratios spread on both sides of 1 even for one model.
const SAMPLING: SamplingOptions = { temperature: 0.7, maxTokens: 8 };
const CAP = 1;

let db: Database;
let root: string;
let base: string; // the trainer's start checkpoint
let behaviourDir: string; // another model of the same family wrote the traffic
let otherFamilyDir: string; // a model with another tokenizer
let family: string;
/** Live traffic and prompt encoding: llama.cpp, as served. */
let load: ServingLoader;

/** What a logged session's generations were, as the stream reported them. */
interface Logged {
  id: string;
  attempts: { tokenIds: number[]; logprobs: number[]; finishReason: string }[];
  bestScore: number;
}
const logged = new Map<string, Logged>();

/** One live session through the real path: createSession, runSession on `policy`, logSession. */
async function logLiveSession(policy: LlamaCppPolicy, prompt: string, seed: number): Promise<Logged> {
  const sampling = { ...SAMPLING, seed };
  const id = await createSession(db.pool, {
    source: 'live',
    prompt,
    constraints: FEWER_THAN_TWO_WORDS,
    maxAttempts: 2,
    sampling,
  });
  const entry: Logged = { id, attempts: [], bestScore: 0 };
  const request = { prompt, constraints: parseConstraints(FEWER_THAN_TWO_WORDS), maxAttempts: 2, sampling };
  for await (const part of logSession(db.pool, id, runSession(request, { policy: fixedPolicy(policy) }))) {
    if (part.type === 'attempt:end')
      entry.attempts.push({
        tokenIds: part.tokenIds,
        logprobs: part.logprobs,
        finishReason: part.finishReason,
      });
    if (part.type === 'session:end') entry.bestScore = part.bestScore;
  }
  logged.set(id, entry);
  return entry;
}

/** A checkpoint with a tokenizer of its own (another policy family). */
async function saveOtherFamily(dir: string): Promise<string> {
  const tokenizer = trainBpe({
    texts: ['Another corpus entirely: numbers 1 2 3, letters a b c.', 'Other words, other merges.'],
    vocabSize: 290,
  });
  const model = LlamaModel.init(tinyConfig({ vocab_size: 290 }), { seed: 5, std: 0.2 });
  await saveCheckpoint(model, dir, {
    files: {
      'tokenizer.json': JSON.stringify(tokenizer),
      'tokenizer_config.json': JSON.stringify(buildTokenizerConfig(tokenizer)),
    },
  });
  model.dispose();
  return dir;
}

let same: Logged[] = [];
let other: Logged;
let broken: string;
let unregistered: string;

beforeAll(async () => {
  await useBackend('wasm');
  db = await openTestDatabase();
  root = mkdtempSync(join(tmpdir(), 'corgi-replay-'));
  for (const [seed, name] of [
    [7, 'tiny-base'],
    [3, 'tiny-v0'],
  ] as const) {
    const model = tinyModel(seed);
    const dir = await saveTinyCheckpoint(model, root, name);
    model.dispose();
    if (name === 'tiny-base') base = dir;
    else behaviourDir = dir;
  }
  otherFamilyDir = await saveOtherFamily(join(root, 'other-family'));
  family = policyFamily(base)!;
  await registerCheckpoint(db, { dir: behaviourDir });
  await registerCheckpoint(db, { dir: otherFamilyDir });

  // Traffic: three sessions by tiny-v0 (the trainer's family), one by the other family.
  load = servingPolicyLoader({ cacheDir: join(root, 'cache'), sequences: 2, threads: 1 });
  const behaviour = await load(behaviourDir, 'tiny-v0');
  const otherPolicy = await load(otherFamilyDir, 'other-family');
  try {
    same = [];
    for (const [i, word] of ['dog', 'park', 'cat'].entries())
      same.push(await logLiveSession(behaviour, `Write about the ${word}.`, 100 + i));
    other = await logLiveSession(otherPolicy, 'Write about the fox.', 200);
  } finally {
    await Promise.all([behaviour.dispose(), otherPolicy.dispose()]);
  }
  // A remote model's session: attempt 1 without token ids, attempt 2 cancelled mid-way.
  broken = await createSession(db.pool, {
    source: 'live',
    prompt: 'Write about the mat.',
    constraints: FEWER_THAN_TWO_WORDS,
    maxAttempts: 2,
  });
  const user = { role: 'user', kind: 'instruction', attempt: 1, text: 'Write about the mat.' } as const;
  await insertTurn(db.pool, broken, { idx: 0, ...user });
  await insertTurn(db.pool, broken, {
    idx: 1,
    role: 'assistant',
    kind: 'attempt',
    attempt: 1,
    text: 'The mat is flat.',
    tokenIds: [],
    logprobs: [],
    policyVersion: 'tiny-v0',
    finishReason: 'stop',
  });
  await insertTurn(db.pool, broken, { idx: 2, role: 'user', kind: 'feedback', attempt: 2, text: 'Shorter.' });
  await insertTurn(db.pool, broken, {
    idx: 3,
    role: 'assistant',
    kind: 'attempt',
    attempt: 2,
    text: 'Ma',
    tokenIds: [70, 71],
    logprobs: [-1, -2],
    policyVersion: 'tiny-v0',
    finishReason: 'cancelled',
  });
  await endSession(db.pool, broken, { status: 'completed', ok: false, bestScore: 0, attempts: 2 });
  // Ids from a version nobody registered (a remote model's name).
  unregistered = await createSession(db.pool, {
    source: 'live',
    prompt: 'Write about the sun.',
    constraints: FEWER_THAN_TWO_WORDS,
    maxAttempts: 1,
  });
  await insertTurn(db.pool, unregistered, { idx: 0, ...user, text: 'Write about the sun.' });
  await insertTurn(db.pool, unregistered, {
    idx: 1,
    role: 'assistant',
    kind: 'attempt',
    attempt: 1,
    text: 'Sun.',
    tokenIds: [80, 81, 2],
    logprobs: [-0.5, -0.25, -0.1],
    policyVersion: 'gpt-4o-mini',
    finishReason: 'stop',
  });
  await endSession(db.pool, unregistered, { status: 'completed', ok: true, bestScore: 1, attempts: 1 });

  // Ratings: the latest one counts.
  await addRating(db.pool, same[0]!.id, { rating: 5 });
  await addRating(db.pool, same[0]!.id, { rating: 2 });
  await addRating(db.pool, same[1]!.id, { rating: -1 });
}, 120_000);

afterAll(async () => {
  await db?.close();
  rmSync(root, { recursive: true, force: true });
});

const skipsOf = (skipped: readonly ReplaySkip[], id: string) =>
  skipped.filter((s) => s.sessionId === id).map(({ attempt, code }) => ({ attempt, code }));

describe('replaying logged production sessions', () => {
  it('loads the logged token ids and behaviour log-probs, and skips what cannot be replayed with the reason', async () => {
    const vocabSize = tinyConfig().vocab_size;
    const { sessions, skipped } = await loadLoggedSessions(db.pool, { limit: 50, family, vocabSize });
    expect(sessions.map((s) => s.id).sort()).toEqual(same.map((s) => s.id).sort());
    for (const session of sessions) {
      const expected = logged.get(session.id)!;
      expect(expected.attempts.length).toBeGreaterThan(0);
      expect(session.attempts).toHaveLength(expected.attempts.length);
      expect(session.bestScore).toBeCloseTo(expected.bestScore, 6);
      expect(session.maxTokens).toBe(8);
      session.attempts.forEach((attempt, k) => {
        expect(attempt.tokenIds).toEqual(expected.attempts[k]!.tokenIds);
        // Stored as PostgreSQL real: the same float32 values.
        expect(attempt.logprobs.map(Math.fround)).toEqual(expected.attempts[k]!.logprobs.map(Math.fround));
        expect(attempt.policyVersion).toBe('tiny-v0');
        // The context generation saw: the instruction, then each earlier attempt and its feedback.
        expect(attempt.messages).toHaveLength(2 * k + 1);
      });
    }
    expect(skipsOf(skipped, other.id)).toEqual([
      ...other.attempts.map((_, k) => ({ attempt: k + 1, code: 'other_family' })),
      { attempt: null, code: 'no_usable_attempt' },
    ]);
    expect(skipped.find((s) => s.sessionId === other.id)?.reason).toMatch(
      /"other-family" belongs to another policy family/,
    );
    expect(skipsOf(skipped, broken)).toEqual([
      { attempt: 1, code: 'no_token_ids' },
      { attempt: 2, code: 'cancelled' },
      { attempt: null, code: 'no_usable_attempt' },
    ]);
    expect(skipsOf(skipped, unregistered)).toEqual([
      { attempt: 1, code: 'other_family' },
      { attempt: null, code: 'no_usable_attempt' },
    ]);
    expect(skipped.find((s) => s.sessionId === unregistered)?.reason).toMatch(
      /"gpt-4o-mini" is not a registered checkpoint/,
    );

    // Newest first, paged with offset.
    const page = await loadLoggedSessions(db.pool, { limit: 2, offset: 0, family, vocabSize });
    const { rows } = await db.pool.query(
      `SELECT id FROM sessions WHERE source = 'live' AND status = 'completed' ORDER BY created_at DESC, id DESC LIMIT 2`,
    );
    const pageIds = [
      ...page.sessions.map((s) => s.id),
      ...page.skipped.filter((s) => s.attempt === null).map((s) => s.sessionId),
    ];
    expect(pageIds.sort()).toEqual(rows.map((r) => r.id).sort());
  });

  it("adds rating_weight × the writer's latest rating to a session's reward and advantage", async () => {
    const { sessions } = await loadLoggedSessions(db.pool, { limit: 50, family });
    const byId = new Map(sessions.map((s) => [s.id, s]));
    const [rated, thumbsDown, unrated] = same.map((s) => byId.get(s.id)!) as [
      LoggedSession,
      LoggedSession,
      LoggedSession,
    ];
    expect([rated.rating, thumbsDown.rating, unrated.rating]).toEqual([2, -1, null]);
    for (const weight of [0.5, 2]) {
      expect(rated.reward(weight) - rated.reward(0)).toBeCloseTo(weight * -0.5, 9);
      expect(thumbsDown.reward(weight) - thumbsDown.reward(0)).toBeCloseTo(-weight, 9);
      expect(unrated.reward(weight)).toBe(unrated.bestScore);
    }
    // The samples' advantage: reward minus the step's baseline, shared by every attempt.
    const policy = await load(base, 'tiny-base');
    try {
      const baseline = 0.3;
      const advantages = (weight: number) => {
        const { samples } = replaySamples([rated, thumbsDown, unrated], policy, {
          ratingWeight: weight,
          baseline,
          skipZeroAdvantage: false,
        });
        return samples.map((s) => s.advantage);
      };
      const counts = [rated, thumbsDown, unrated].map((s) => s.attempts.length);
      const bonuses = [rated, thumbsDown, unrated].flatMap((s, i) =>
        Array.from({ length: counts[i]! }, () => ratingBonus(s.rating)),
      );
      const unweighted = advantages(0);
      const weighted = advantages(0.5);
      expect(weighted.map((a, i) => a - unweighted[i]!)).toEqual(
        bonuses.map((b) => expect.closeTo(0.5 * b, 9)),
      );
      expect(unweighted).toEqual(
        [rated, thumbsDown, unrated].flatMap((s, i) =>
          Array.from({ length: counts[i]! }, () => expect.closeTo(s.bestScore - baseline, 9)),
        ),
      );
    } finally {
      await policy.dispose();
    }
  });

  it('weights each replayed token by min(c, π/μ) with π the trained model now and μ as logged', async () => {
    const { sessions } = await loadLoggedSessions(db.pool, { limit: 50, family });
    const policy = await load(base, 'tiny-base');
    const model = await loadCheckpoint(base);
    try {
      const { samples } = replaySamples(sessions, policy, {
        ratingWeight: 0.5,
        baseline: 0.3,
        skipZeroAdvantage: false,
      });
      expect(samples.every((s) => s.offPolicy)).toBe(true);
      expect(samples.flatMap((s) => s.completionIds)).toEqual(
        sessions.flatMap((s) => s.attempts.flatMap((a) => a.tokenIds)),
      );
      expect(samples.flatMap((s) => s.behaviourLogprobs)).toEqual(
        sessions.flatMap((s) => s.attempts.flatMap((a) => a.logprobs)),
      );
      // The prompt is what generation encoded (the session's maxTokens).
      expect(samples[0]!.promptIds).toEqual(
        policy.encodePrompt(sessions[0]!.attempts[0]!.messages, { maxTokens: 8 }),
      );

      // The trainer's path: π scored before the update, weights fixed in prepareBatch.
      const current = oldLogprobs(model, samples, { minibatch_size: 4, temperature: 1 });
      const prepared = prepareBatch(
        samples,
        samples.map((s) => s.completionIds.map(() => 0)),
        current,
        { importanceCap: CAP },
      );
      const T = prepared.offWeight.shape[1];
      const weights = prepared.offWeight.dataSync();
      disposePrepared(prepared);

      // Independently: log π from the model's logits, log-softmax in float64, one sequence at a time.
      let truncated = 0;
      let below = 0;
      samples.forEach((sample, b) => {
        const ids = [...sample.promptIds, ...sample.completionIds];
        const logits = tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], 'int32')));
        const V = logits.shape[2];
        const values = logits.dataSync();
        logits.dispose();
        sample.completionIds.forEach((token, j) => {
          const row = sample.promptIds.length + j - 1; // the position that predicts this token
          let max = Number.NEGATIVE_INFINITY;
          for (let v = 0; v < V; v++) max = Math.max(max, values[row * V + v]!);
          let sum = 0;
          for (let v = 0; v < V; v++) sum += Math.exp(values[row * V + v]! - max);
          const logPi = values[row * V + token]! - max - Math.log(sum);
          const ratio = Math.exp(logPi - sample.behaviourLogprobs[j]!);
          const weight = weights[b * T + sample.promptIds.length + j]!;
          if (Math.abs(ratio - CAP) < 1e-3) return; // too close to the cap to tell which side
          if (ratio > CAP) {
            truncated++;
            expect(weight).toBe(CAP);
          } else {
            below++;
            expect(weight).toBeCloseTo(ratio, 3);
            expect(Math.abs(weight - ratio) / ratio).toBeLessThan(2e-3);
          }
        });
      });
      // Both regimes are exercised.
      expect(truncated).toBeGreaterThan(0);
      expect(below).toBeGreaterThan(0);
    } finally {
      model.dispose();
      await policy.dispose();
    }
  });

  it('replays them in a training step with replay_sessions > 0', async () => {
    const lines: string[] = [];
    const toy: RolloutPrompt[] = ['dog', 'park'].map((word, i) => ({
      id: `toy/${i}`,
      task: 'toy',
      prompt: `Write about the ${word}.`,
      constraints: FEWER_THAN_TWO_WORDS,
    }));
    const summary = await trainCorgi(
      {
        policy: base,
        out: join(root, 'replayed'),
        seed: 3,
        budget: 'steps',
        steps: 1,
        attempts: 2,
        prompts_per_step: 2,
        group_size: 4,
        max_tokens: 8,
        epochs: 1,
        minibatch_size: 8,
        lora_r: 2,
        production_fraction: 0,
        replay_sessions: 20,
        importance_cap: CAP,
        rating_weight: 0.5,
      },
      {
        db: db.pool,
        onStep: trainingStepRecorder(db.pool), // as `corgi train` and the background trainer attach it
        prompts: toy,
        progress: new ProgressReporter((line) => lines.push(line), false),
      },
    );
    expect(summary.steps).toBe(1);
    // A logged session whose reward equals the step's baseline has no advantage and is skipped.
    const { sessions: replayable } = await loadLoggedSessions(db.pool, { limit: 50, family });
    expect(replayable).toHaveLength(3);
    const advantaged = replayable.filter((s) => Math.abs(s.reward(0.5) - summary.last!.reward) > 1e-3);
    expect(advantaged.length).toBeGreaterThan(0);
    expect(summary.last?.replayed_sessions).toBe(advantaged.length);
    const replayedTokens = same.reduce(
      (a, s) => a + s.attempts.reduce((b, t) => b + t.tokenIds.length, 0),
      0,
    );
    expect(summary.last!.pg_tokens).toBeGreaterThanOrEqual(replayedTokens);
    expect(Number.isFinite(summary.last!.loss)).toBe(true);
    expect(lines.join('\n')).toMatch(/not replayed \(.*other_family.*\)/);
    const { rows } = await db.pool.query('SELECT metrics FROM training_steps WHERE run_id = $1', [
      'replayed',
    ]);
    expect(rows[0].metrics.replayed_sessions).toBe(advantaged.length);
  }, 180_000);
});
