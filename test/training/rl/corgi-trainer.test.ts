import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureRuntime } from '../../../src/common/runtime-settings.ts';
import { servingPolicyLoader } from '../../../src/policy/serving-loader.ts';
import { ProgressReporter } from '../../../src/training/progress.ts';
import { sessionReward } from '../../../src/training/rl/corgi-objective.ts';
import { type StepMetrics, trainCorgi } from '../../../src/training/rl/corgi-trainer.ts';
import { type RolloutPrompt, rollOut } from '../../../src/training/rl/rollouts.ts';
import { ResumeConfigError } from '../../../src/training/run-state.ts';
import { useBackend } from '../../policy/helpers.ts';
import { saveTinyCheckpoint, tinyModel } from '../../policy/tiny-policy.ts';

// The toy task: answer in fewer than 2 words. A random tiny model rambles (about 1 in 5 of its
// answers pass); stopping early is one token's decision, so a few policy-gradient steps find it.
const TOY: RolloutPrompt[] = ['dog', 'park', 'cat'].map((word, i) => ({
  id: `toy/${i}`,
  task: 'toy',
  prompt: `Write about the ${word}.`,
  constraints: [{ id: 'length_constraints:number_words', kwargs: { relation: 'less than', num_words: 2 } }],
}));

const quiet = new ProgressReporter(() => {}, false);
let root: string;
let base: string;
beforeAll(async () => {
  // One llama.cpp thread: on a loaded two-core machine a second one stalls every layer's barrier.
  configureRuntime({ llamaThreads: 1 });
  await useBackend('wasm');
  root = mkdtempSync(join(tmpdir(), 'corgi-trainer-test-'));
  const model = tinyModel(7);
  base = await saveTinyCheckpoint(model, root, 'toy-base');
  model.dispose();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Mean session reward of a checkpoint on the toy prompts, over fixed sampling seeds, on llama.cpp. */
async function meanReward(dir: string): Promise<number> {
  const policy = await servingPolicyLoader({ cacheDir: join(root, 'cache'), sequences: 48 })(dir, 'eval');
  try {
    const groups = await rollOut(policy, TOY, {
      groupSize: 16,
      attempts: 1,
      temperature: 1,
      maxTokens: 12,
      seed: 99,
    });
    const rewards = groups.flat().map((s) =>
      sessionReward(
        s.attempts.map((a) => a.score),
        'best',
      ),
    );
    return rewards.reduce((a, b) => a + b, 0) / rewards.length;
  } finally {
    await policy.dispose();
  }
}

const toyConfig = (out: string) => ({
  policy: base,
  out,
  seed: 1,
  attempts: 2,
  prompts_per_step: 3,
  group_size: 8,
  max_tokens: 12,
  budget: 'steps' as const,
  steps: 20,
  epochs: 2,
  minibatch_size: 16,
  learning_rate: 5e-3,
  lora_r: 4,
  lora_alpha: 8,
  kl_coef: 0.01,
  save_steps: 5,
});

describe('trainCorgi (llama.cpp rollouts, TensorFlow.js updates)', () => {
  it('raises the reward on a toy task and writes a checkpoint with a PEFT adapter', async () => {
    const out = join(root, 'toy-corgi');
    const steps: StepMetrics[] = [];
    const summary = await trainCorgi(toyConfig(out), {
      dataDir: root,
      prompts: TOY,
      progress: quiet,
      onStep: (m) => steps.push(m),
    });
    expect(summary.steps).toBe(20);
    expect(steps.map((m) => m.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const m of steps) {
      expect(m.success_at).toHaveLength(2);
      expect(m.success_at[1]).toBeGreaterThanOrEqual(m.success_at[0]!);
      expect(m.kl).toBeGreaterThanOrEqual(0);
      expect(m.entropy).toBeGreaterThan(0);
      // Measured over the trained samples: none when every group scored alike.
      if (m.sessions_trained > 0) expect(m.mismatch_abs_logprob).toBeGreaterThan(0);
      else expect(m.mismatch_abs_logprob).toBe(0);
      expect(m.mismatch_kl).toBeGreaterThanOrEqual(0);
    }
    expect(existsSync(join(out, 'adapter_model.safetensors'))).toBe(true);
    expect(existsSync(`${out}.work`)).toBe(false);
    expect(JSON.parse(readFileSync(join(out, 'corgi.json'), 'utf8'))).toMatchObject({
      version: 'toy-corgi',
      attempts: 2,
    });

    const before = await meanReward(base);
    const after = await meanReward(out);
    expect(after).toBeGreaterThan(before + 0.2);
    const early = (steps[0]!.reward + steps[1]!.reward + steps[2]!.reward) / 3;
    const late = (steps[17]!.reward + steps[18]!.reward + steps[19]!.reward) / 3;
    expect(late).toBeGreaterThan(early);
  }, 120_000);

  it('reproduces a run bit for bit from its seed, and batched rollouts still train', async () => {
    const run = async (name: string, extra: object = {}) => {
      const config = { ...toyConfig(join(root, name)), steps: 3, ...extra };
      const steps: StepMetrics[] = [];
      await trainCorgi(config, {
        dataDir: root,
        prompts: TOY,
        progress: quiet,
        onStep: (m) => steps.push(m),
      });
      // Everything but the clock.
      const metrics = steps.map(({ elapsed_s, rollout_tokens_per_s, train_tokens_per_s, ...m }) => m);
      return { metrics, adapter: readFileSync(join(config.out, 'adapter_model.safetensors')) };
    };
    const first = await run('same-seed-a');
    const second = await run('same-seed-b');
    expect(second.metrics).toEqual(first.metrics);
    expect(second.adapter.equals(first.adapter)).toBe(true);
    // Another seed draws other sessions: the check above is not comparing two constants.
    const reseeded = await run('other-seed', { seed: 2 });
    expect(reseeded.metrics).not.toEqual(first.metrics);
    // Batched rollouts (24 sessions decoded together) run the same steps.
    const batched = await run('batched', { rollout_concurrency: 24 });
    expect(batched.metrics.map((m) => m.step)).toEqual([1, 2, 3]);
    for (const m of batched.metrics) expect(m.sessions).toBe(24);
  }, 180_000);

  it("logs the engines' mismatch, near 0 when both run the same F32 weights", async () => {
    const steps: StepMetrics[] = [];
    await trainCorgi(
      { ...toyConfig(join(root, 'mismatch')), steps: 3, skip_zero_advantage: false },
      { dataDir: root, prompts: TOY, progress: quiet, onStep: (m) => steps.push(m) },
    );
    expect(steps).toHaveLength(3);
    for (const m of steps) {
      // F32 weights on both sides; llama.cpp keeps its KV cache in F16, hence not exactly 0.
      expect(m.mismatch_abs_logprob).toBeGreaterThan(0);
      expect(m.mismatch_abs_logprob).toBeLessThan(0.01);
      expect(m.mismatch_kl).toBeLessThan(1e-4);
    }
  }, 120_000);

  it('resumes an interrupted run where it stopped, ending where the uninterrupted run ends, bit for bit', async () => {
    const config = { ...toyConfig(join(root, 'resumed')), steps: 4, save_steps: 2, group_size: 4 };
    const controller = new AbortController();
    const before: StepMetrics[] = [];
    await expect(
      trainCorgi(config, {
        dataDir: root,
        prompts: TOY,
        progress: quiet,
        signal: controller.signal,
        onStep: (m) => {
          before.push(m);
          if (m.step === 2) controller.abort();
        },
      }),
    ).rejects.toThrow(/interrupted after step 2/);
    const work = join(`${config.out}.work`, 'checkpoint');
    const saved = readFileSync(join(work, 'adapter_model.safetensors'));
    // A resume keeps the recorded config: a changed field is refused by name, before any work.
    await expect(
      trainCorgi(
        { ...config, resume: true, learning_rate: 1e-2, group_size: 2 },
        { dataDir: root, prompts: TOY, progress: quiet },
      ),
    ).rejects.toSatisfy(
      (e) =>
        ResumeConfigError.isInstance(e) &&
        e.field === 'group_size' &&
        /group_size \(recorded 4, given 2\), learning_rate/.test(e.message),
    );
    const after: StepMetrics[] = [];
    const summary = await trainCorgi(
      { ...config, resume: true },
      { dataDir: root, prompts: TOY, progress: quiet, onStep: (m) => after.push(m) },
    );
    expect(after.map((m) => m.step)).toEqual([3, 4]);
    expect(after[0]!.pg_tokens_total).toBe(before[1]!.pg_tokens_total + after[0]!.pg_tokens);
    expect(summary.first).toEqual(before[0]); // the run's first step, not the resumed session's
    expect(summary.last?.step).toBe(4);
    const log = readFileSync(join(config.out, 'train_log.jsonl'), 'utf8').trim().split('\n');
    expect(log.map((line) => JSON.parse(line))).toEqual([...before, ...after]);
    // Trained on from the saved adapter: two more steps moved it.
    const resumed = readFileSync(join(config.out, 'adapter_model.safetensors'));
    expect(resumed.equals(saved)).toBe(false);
    // And to the very bit where the same run without the interruption ends.
    const straight = { ...config, out: join(root, 'uninterrupted') };
    await trainCorgi(straight, { dataDir: root, prompts: TOY, progress: quiet });
    expect(readFileSync(join(straight.out, 'adapter_model.safetensors')).equals(resumed)).toBe(true);
  }, 120_000);
});
