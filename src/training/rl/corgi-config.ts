/**
 * The one config object of a CORGI training run (`corgi train` flags map onto it one to one:
 * `group_size` ↔ `--group-size`). Every field has a default and a line saying what it does; the
 * defaults are what docs/experiments/2026-11-24-brown-base-and-corgi.md ran with.
 */
import { z } from 'zod';
import { LORA_TARGET_MODULES } from '../../model/lora.ts';
import { ALL_TASKS, SOURCE_TASKS } from '../../tasks/types.ts';

export const corgiConfigSchema = z
  .object({
    seed: z.int().min(0).default(0).describe('Seeds the prompt order, the rollouts and the minibatch order'),
    policy: z
      .string()
      .default('models/base')
      .describe('Checkpoint to start from (and the frozen KL reference)'),
    out: z.string().describe('Where the trained checkpoint goes; work files go to <out>.work/'),
    resume: z.boolean().default(false).describe('Continue the interrupted run in <out>.work/'),
    overwrite: z.boolean().default(false).describe('Replace <out> if it exists'),
    version: z
      .string()
      .nullable()
      .default(null)
      .describe('Version name recorded in corgi.json and policy_versions; null: the basename of <out>'),

    // The CORGI session.
    attempts: z
      .int()
      .min(1)
      .max(10)
      .default(4)
      .describe('K: attempts per rollout session (1 = single-attempt baseline)'),
    tasks: z
      .array(z.enum(ALL_TASKS))
      .min(1)
      .default([...SOURCE_TASKS])
      .describe('Task pools to train on (the source tasks; target tasks stay held out)'),
    pool_size: z.int().min(1).default(5000).describe('Train-split prompts drawn from the pools (cycled)'),
    prompts_per_step: z.int().min(1).default(8).describe('Distinct prompts per step'),
    group_size: z.int().min(2).default(4).describe('G: sessions per prompt (the advantage baseline group)'),
    temperature: z
      .number()
      .positive()
      .default(1)
      .describe('Rollout sampling temperature (log-probs use the same)'),
    max_tokens: z.int().min(1).default(48).describe('Upper bound on generated tokens per attempt'),
    rollout_concurrency: z
      .int()
      .min(1)
      .max(32)
      .default(1)
      .describe(
        "Sessions decoded at once in a step's rollouts. 1 decodes them one after another, so a run " +
          "reproduces bit for bit from its seed; more batch them (faster rollouts, but a batch's composition moves llama.cpp's logits in the last bits)",
      ),

    // Reward and advantages.
    reward: z
      .enum(['best', 'final', 'discounted'])
      .default('best')
      .describe('Session reward from attempt scores: best (the paper), final, or discounted max'),
    discount: z.number().min(0).max(1).default(0.9).describe('γ for reward = discounted'),
    advantage: z
      .enum(['rloo', 'grpo'])
      .default('rloo')
      .describe('Group-relative advantage: leave-one-out baseline, or GRPO mean/std normalisation'),
    skip_zero_advantage: z
      .boolean()
      .default(true)
      .describe(
        'Leave out sessions whose advantage is 0 (their group all scored the same): no signal, only cost',
      ),

    // The update.
    budget: z
      .enum(['steps', 'pg_tokens'])
      .default('pg_tokens')
      .describe(
        'What ends the run: a number of steps, or policy-gradient tokens (equal compute for K=4 vs K=1)',
      ),
    steps: z.int().min(1).default(60).describe('Steps when budget = steps'),
    pg_tokens: z
      .int()
      .min(1)
      .default(150_000)
      .describe('Policy-gradient (assistant) tokens when budget = pg_tokens'),
    epochs: z.int().min(1).default(2).describe("Optimisation epochs over each step's samples"),
    minibatch_size: z.int().min(1).default(16).describe('Attempt sequences per gradient step'),
    learning_rate: z
      .number()
      .positive()
      .default(2e-4)
      .describe('AdamW peak learning rate (constant after warm-up)'),
    warmup_steps: z.int().min(0).default(3).describe('Linear warm-up, in optimizer steps'),
    weight_decay: z.number().min(0).default(0).describe('AdamW decoupled weight decay'),
    max_grad_norm: z.number().positive().default(1).describe('Global gradient-norm clip'),
    clip_epsilon: z.number().positive().default(0.2).describe('ε of the clipped surrogate'),
    kl_coef: z
      .number()
      .min(0)
      .default(0.075)
      .describe('β of the per-token KL penalty to the reference (paper: 0.075)'),

    // What trains.
    finetune: z.enum(['lora', 'full']).default('lora').describe('LoRA adapters (default) or every weight'),
    lora_r: z.int().min(1).default(16).describe('LoRA rank (paper: 16)'),
    lora_alpha: z.number().positive().default(32).describe('LoRA alpha (update scaled by alpha / r)'),
    lora_target_modules: z
      .array(z.enum(LORA_TARGET_MODULES))
      .min(1)
      .default([...LORA_TARGET_MODULES])
      .describe('Projections that get adapters'),

    // Learning from production (needs a database).
    production_fraction: z
      .number()
      .min(0)
      .max(1)
      .default(0.25)
      .describe("Share of each step's prompts taken from logged live sessions, when there are any"),
    replay_sessions: z
      .int()
      .min(0)
      .default(0)
      .describe(
        'Logged live sessions replayed off-policy per step (their own tokens, truncated importance weights)',
      ),
    importance_cap: z.number().positive().default(1).describe('c: off-policy weights are min(c, π/μ)'),
    rating_weight: z
      .number()
      .min(0)
      .default(0.5)
      .describe("Weight of a writer's rating in a logged session's reward"),

    // Bookkeeping.
    save_steps: z.int().min(1).default(10).describe('Work checkpoint every this many steps (for --resume)'),
    run_id: z.string().nullable().default(null).describe('training_steps.run_id; null: <version>'),
  })
  .strict();

export type CorgiConfigInput = z.input<typeof corgiConfigSchema>;
export type CorgiConfig = z.output<typeof corgiConfigSchema>;

/** Validates and fills defaults; a bad field throws a ZodError naming it. */
export function parseCorgiConfig(input: CorgiConfigInput): CorgiConfig {
  return corgiConfigSchema.parse(input);
}
