/**
 * `PretrainConfig`: the one config object of `corgi pretrain`, the pipeline that builds the shipped
 * base model (tokenizer → pretraining → SFT → export). As TRL's configs: fields grouped by purpose,
 * each with a default and a doc line, cross-field rules checked once at parse time, and the CLI
 * flags generated from it (`hidden_size` → `--hidden-size`; pretrain-command.ts).
 *
 * Model fields use Hugging Face `LlamaConfig` names; they become the checkpoint's `config.json`.
 * The defaults are the shipped base model, chosen by measurement on the 2-core development machine
 * (wasm backend, two data-parallel threads): see the chosen-config note in pretrain.ts.
 */

import { z } from 'zod';
import { CorgiError } from '../../common/errors.ts';
import { ConfigError, parseLlamaConfig } from '../../model/config.ts';

const nullableInt = (min: number) => z.int().min(min).nullable().default(null);

/** Fields that control the run itself; none of them changes the numbers a run produces. */
const runFields = {
  seed: z
    .int()
    .min(0)
    .default(0)
    .describe(
      'Seeds initialization, data order and the SFT mix; names the version base-<seed>. ' +
        'The same seed and token budget reproduce a run.',
    ),
  out: z
    .string()
    .min(1)
    .default('models/base')
    .describe('Output checkpoint directory (HF layout); work files (checkpoints, log) go to <out>.work/'),
  resume: z
    .boolean()
    .default(false)
    .describe('Continue the interrupted run in <out>.work/ exactly where its last checkpoint left off'),
  overwrite: z.boolean().default(false).describe('Replace <out> if it already exists'),
  minutes: z
    .number()
    .positive()
    .default(55)
    .describe(
      'Wall-clock budget for the whole pipeline: after a short throughput probe the pretraining token ' +
        'budget is set to what fits. Ignored if pretrain_tokens is set.',
    ),
  threads: z
    .int()
    .min(1)
    .max(2)
    .default(2)
    .describe(
      'Threads for the pretraining step: 2 runs it data parallel with a worker thread. ' +
        'Changes float rounding, so it is part of what a run reproduces.',
    ),
};

/** The tokenizer: byte-level BPE trained on the Brown train split. */
const tokenizerFields = {
  vocab_size: z
    .int()
    .min(264)
    .default(4096)
    .describe('BPE vocabulary incl. 7 special and 256 byte tokens; a multiple of 64 keeps matmuls aligned'),
};

/** Which text the pipeline reads (tests shrink it). */
const dataFields = {
  max_train_documents: nullableInt(1).describe(
    'Use at most this many Brown train documents (a seeded choice) for the tokenizer and pretraining; null: all ~450',
  ),
  max_validation_documents: nullableInt(1).describe(
    'Evaluate on at most this many Brown validation documents; null: all ~24 (~82k tokens)',
  ),
};

/** The model: a Llama with tied embeddings. */
const modelFields = {
  num_hidden_layers: z.int().min(1).default(4).describe('Transformer blocks'),
  hidden_size: z.int().min(8).default(192).describe('Residual width'),
  intermediate_size: nullableInt(1).describe("SwiGLU width; null: Meta's rule 256·⌈(8·hidden_size/3)/256⌉"),
  num_attention_heads: z.int().min(1).default(4).describe('Query heads (head_dim = hidden_size / heads)'),
  num_key_value_heads: z
    .int()
    .min(1)
    .nullable()
    .default(2)
    .describe('K/V heads (grouped-query attention); null: one per query head'),
  max_position_embeddings: z
    .int()
    .min(8)
    .default(256)
    .describe('Training window length and the longest sequence the model is trained for (prompt + attempts)'),
  rope_theta: z.number().positive().default(10000).describe('RoPE base'),
  initializer_range: z
    .number()
    .positive()
    .default(0.02)
    .describe('Std of the normal init (HF); residual projections are scaled by 1/√(2·layers) as GPT-2'),
};

/** Next-token pretraining on the Brown train split. */
const pretrainFields = {
  init_from: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe(
      'Continue from this checkpoint (a `corgi pretrain` output) instead of pretraining: its tokenizer and ' +
        'weights are kept; pretraining runs only with an explicit pretrain_tokens (continued pretraining), then SFT. The model fields must match its config.json.',
    ),
  pretrain_tokens: nullableInt(1).describe(
    'Pretraining budget in input tokens (steps × batch × window); null: set from minutes. ' +
      'The summary reports the value a run used, so passing it back reproduces the run.',
  ),
  pretrain_batch_size: z.int().min(2).default(8).describe('Windows per step (split between the threads)'),
  learning_rate: z.number().positive().default(1e-3).describe('Peak pretraining learning rate (AdamW)'),
  min_learning_rate: z
    .number()
    .min(0)
    .default(1e-4)
    .describe('Cosine decay floor, reached at the last step (nanoGPT: peak / 10)'),
  warmup_steps: z.int().min(0).default(50).describe('Linear warm-up steps'),
  weight_decay: z.number().min(0).default(0.1).describe('Decoupled weight decay on matrices'),
  max_grad_norm: z.number().positive().default(1).describe('Global gradient-norm clip'),
  budget_probe_steps: z
    .int()
    .min(3)
    .default(30)
    .describe(
      'With a minutes budget: training steps timed (inside warm-up) before the token budget is fixed; ' +
        'more steps average out a busy machine',
    ),
};

/** Supervised fine-tuning on single-turn instruction → reference examples of every task. */
const sftFields = {
  sft_examples: z
    .int()
    .min(0)
    .default(20000)
    .describe(
      'Train-split SFT examples (tasks balanced, plus the repeat share; buildSftExamples); 0 skips SFT',
    ),
  sft_copy_share: z
    .number()
    .min(0)
    .max(0.9)
    .default(0.25)
    .describe('Share of the SFT examples that are "Repeat this sentence" copying examples (tasks/sft.ts)'),
  sft_epochs: z.number().positive().default(1).describe('Passes over the SFT examples'),
  sft_batch_size: z.int().min(1).default(8).describe('Packed rows per SFT step'),
  sft_learning_rate: z.number().positive().default(1e-3).describe('Peak SFT learning rate'),
  sft_min_learning_rate: z.number().min(0).default(5e-5).describe('SFT cosine decay floor'),
  sft_warmup_steps: z.int().min(0).default(10).describe('SFT linear warm-up steps'),
  sft_eval_examples: z
    .int()
    .min(0)
    .default(210)
    .describe('Validation-split task instances for the held-out SFT loss'),
};

/** Logging, evaluation and checkpoint cadence. */
const loggingFields = {
  logging_steps: z.int().min(1).default(10).describe('Write a train_log.jsonl line every this many steps'),
  eval_steps: z
    .int()
    .min(1)
    .default(200)
    .describe('Held-out loss on eval_batches validation batches every this many pretraining steps'),
  eval_batches: z.int().min(1).default(8).describe('Validation batches in each periodic evaluation'),
  save_steps: z
    .int()
    .min(1)
    .default(100)
    .describe('Atomic checkpoint into <out>.work/ every this many steps (and at Ctrl-C)'),
};

type ModelFields = z.output<z.ZodObject<typeof modelFields>>;

/** The fields by purpose, in `--help` order. */
export const PRETRAIN_CONFIG_GROUPS = {
  run: runFields,
  tokenizer: tokenizerFields,
  data: dataFields,
  model: modelFields,
  pretraining: pretrainFields,
  sft: sftFields,
  logging: loggingFields,
} as const;

/** Fields that may differ when resuming: they steer the run but never change its numbers. */
export const RUN_CONTROL_FIELDS: ReadonlySet<string> = new Set(['out', 'resume', 'overwrite']);

export const pretrainConfigSchema = z
  .object({
    ...runFields,
    ...tokenizerFields,
    ...dataFields,
    ...modelFields,
    ...pretrainFields,
    ...sftFields,
    ...loggingFields,
  })
  .strict()
  .superRefine((c, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    // The model's own rules (heads divide the width, K/V heads divide the heads, even head_dim).
    try {
      parseLlamaConfig(buildModelConfigInput(c, c.vocab_size));
    } catch (error) {
      if (!ConfigError.isInstance(error)) throw error;
      issue(error.field, error.message.replace(/^config\.[\w.]+: /, ''));
    }
    if (c.min_learning_rate > c.learning_rate) {
      issue(
        'min_learning_rate',
        `min_learning_rate (${c.min_learning_rate}) must not exceed learning_rate (${c.learning_rate})`,
      );
    }
    if (c.sft_min_learning_rate > c.sft_learning_rate) {
      issue(
        'sft_min_learning_rate',
        `sft_min_learning_rate (${c.sft_min_learning_rate}) must not exceed sft_learning_rate (${c.sft_learning_rate})`,
      );
    }
    const tokensPerStep = c.pretrain_batch_size * c.max_position_embeddings;
    if (c.pretrain_tokens !== null && c.pretrain_tokens < tokensPerStep) {
      issue(
        'pretrain_tokens',
        `pretrain_tokens (${c.pretrain_tokens}) is less than one step of pretrain_batch_size × max_position_embeddings (${tokensPerStep})`,
      );
    }
    if (c.init_from !== null && c.sft_examples === 0 && c.pretrain_tokens === null) {
      issue('sft_examples', 'with init_from nothing would train: set pretrain_tokens or sft_examples');
    }
    if (c.init_from === null && c.pretrain_tokens === null && c.warmup_steps < c.budget_probe_steps) {
      // The probe's steps must not depend on the total it is about to fix: keep them inside warm-up.
      issue(
        'warmup_steps',
        `with a minutes budget, warmup_steps (${c.warmup_steps}) must be at least budget_probe_steps (${c.budget_probe_steps})`,
      );
    }
  });

/** A parsed config: every default filled in. */
export type PretrainConfig = z.infer<typeof pretrainConfigSchema>;
/** What a caller writes: any subset of the fields. */
export type PretrainConfigInput = z.input<typeof pretrainConfigSchema>;

/** A bad pretraining config, naming the offending field. */
export class PretrainConfigError extends CorgiError {
  constructor(
    readonly field: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super('invalid_config', `${field}: ${reason}`, options);
  }
}

/**
 * Validates a config and fills in the defaults.
 * @throws PretrainConfigError naming the first offending field.
 */
export function parsePretrainConfig(input: unknown): PretrainConfig {
  const result = pretrainConfigSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new PretrainConfigError(field, issue.message, { cause: result.error });
  }
  return result.data;
}

/** `intermediate_size`, with Meta's rule when unset. */
export function intermediateSizeOf(c: Pick<ModelFields, 'intermediate_size' | 'hidden_size'>): number {
  return c.intermediate_size ?? 256 * Math.ceil((8 * c.hidden_size) / 3 / 256);
}

/**
 * The model's `config.json` fields for a tokenizer with `vocabSize` ids (and its special ids, when
 * known). Embeddings are tied: at this size the embedding is a quarter of the parameters.
 */
export function buildModelConfigInput(
  c: ModelFields,
  vocabSize: number,
  special: { bos: number; eos: number | number[]; pad: number } | null = null,
): Record<string, unknown> {
  return {
    vocab_size: vocabSize,
    hidden_size: c.hidden_size,
    intermediate_size: intermediateSizeOf(c),
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads ?? c.num_attention_heads,
    max_position_embeddings: c.max_position_embeddings,
    rope_theta: c.rope_theta,
    initializer_range: c.initializer_range,
    rms_norm_eps: 1e-5, // Meta's value for Llama 2/3; HF's class default is 1e-6
    tie_word_embeddings: true,
    ...(special ? { bos_token_id: special.bos, eos_token_id: special.eos, pad_token_id: special.pad } : {}),
  };
}
