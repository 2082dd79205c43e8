/**
 * The policy's model config: Hugging Face `LlamaConfig` field names, so a checkpoint's `config.json`
 * (SmolLM2, TinyLlama, Llama 3.2, or one we wrote) parses as is. The zod schema is both the
 * validation and the documentation; defaults are HF's unless a comment says otherwise.
 *
 * Unknown fields (`initializer_range`, `use_cache`, `transformers_version`, ...) are kept and
 * written back untouched. Fields that would change the math and that we do not implement
 * (`attention_bias`, `mlp_bias`, an unsupported `rope_scaling`) are refused, never ignored.
 */

import { z } from 'zod';
import { CorgiError } from '../common/errors.ts';

/** A bad model config, naming the offending field (`num_key_value_heads`). */
export class ConfigError extends CorgiError {
  readonly field: string;

  constructor(field: string, reason: string, options: { cause?: unknown } = {}) {
    super('invalid_config', `config.${field}: ${reason}`, options);
    this.field = field;
  }
}

const positiveInt = z.number().int().positive();

/** Llama 3's frequency-dependent RoPE scaling (`rope_type: "llama3"`), as in HF `_compute_llama3_parameters`. */
const llama3RopeScaling = z.looseObject({
  rope_type: z.literal('llama3'),
  factor: z.number().positive(),
  low_freq_factor: z.number().positive(),
  high_freq_factor: z.number().positive(),
  original_max_position_embeddings: positiveInt,
});

export const llamaConfigSchema = z
  .looseObject({
    vocab_size: positiveInt,
    hidden_size: positiveInt,
    intermediate_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    /** Grouped-query attention: fewer K/V heads than query heads. HF: `null` means = num_attention_heads. */
    num_key_value_heads: positiveInt.nullish(),
    /** Only bounds RoPE tables and input length; HF's default 2048. */
    max_position_embeddings: positiveInt.default(2048),
    /** HF LlamaConfig's default is 1e-6 (Meta's original code used 1e-5; real configs set it explicitly). */
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().default(10000),
    rope_scaling: llama3RopeScaling.nullish(),
    /** HF's default is false: a separate `lm_head.weight`. Small models (SmolLM2) tie it to the embedding. */
    tie_word_embeddings: z.boolean().default(false),
    bos_token_id: z.number().int().nonnegative().nullish().default(1),
    /** Llama 3 lists several end-of-turn ids, hence a number or an array. */
    eos_token_id: z
      .union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())])
      .nullish()
      .default(2),
    pad_token_id: z.number().int().nonnegative().nullish(),
    /** The MLP is SwiGLU: down(silu(gate(x)) · up(x)); no other activation is implemented. */
    hidden_act: z.literal('silu').default('silu'),
    model_type: z.literal('llama').default('llama'),
    architectures: z.array(z.string()).default(['LlamaForCausalLM']),
    /** Only what the checkpoint is stored in; computation is always float32 here. */
    torch_dtype: z.enum(['float32', 'float16', 'bfloat16']).default('float32'),
    /** Per-head width; HF derives hidden_size / num_attention_heads when absent. */
    head_dim: positiveInt.nullish(),
    attention_bias: z.literal(false, { error: 'attention_bias=true is not implemented' }).optional(),
    mlp_bias: z.literal(false, { error: 'mlp_bias=true is not implemented' }).optional(),
  })
  .superRefine((c, ctx) => {
    const heads = c.num_attention_heads;
    const kvHeads = c.num_key_value_heads ?? heads;
    if (heads % kvHeads !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['num_key_value_heads'],
        message: `num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`,
      });
    }
    if (c.head_dim == null && c.hidden_size % heads !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['hidden_size'],
        message: `hidden_size (${c.hidden_size}) must be divisible by num_attention_heads (${heads}) when head_dim is not given`,
      });
    }
    const headDim = c.head_dim ?? c.hidden_size / heads;
    if (Number.isInteger(headDim) && headDim % 2 !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['head_dim'],
        message: `head_dim (${headDim}) must be even: RoPE rotates pairs of channels`,
      });
    }
  });

/** A parsed config: every default filled in. */
export type LlamaConfig = z.infer<typeof llamaConfigSchema>;
/** What a caller writes: required fields plus any overrides. */
export type LlamaConfigInput = z.input<typeof llamaConfigSchema>;

/**
 * Validates a `config.json` object (or overrides for a new model) and fills in the defaults.
 * @throws ConfigError naming the first offending field.
 */
export function parseLlamaConfig(json: unknown): LlamaConfig {
  const result = llamaConfigSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new ConfigError(field, issue.message, { cause: result.error });
  }
  return result.data;
}

/** Derived sizes every part of the model needs, computed in one place. */
export function headDimOf(config: LlamaConfig): number {
  return config.head_dim ?? config.hidden_size / config.num_attention_heads;
}

export function kvHeadsOf(config: LlamaConfig): number {
  return config.num_key_value_heads ?? config.num_attention_heads;
}

/** The config as `config.json` content: HF names, derived `num_key_value_heads`/`head_dim` written out. */
export function toConfigJson(config: LlamaConfig): Record<string, unknown> {
  const json: Record<string, unknown> = { ...config };
  json.num_key_value_heads = kvHeadsOf(config);
  json.head_dim = headDimOf(config);
  if (json.rope_scaling == null) delete json.rope_scaling;
  if (json.pad_token_id == null) delete json.pad_token_id;
  return json;
}
