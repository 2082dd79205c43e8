import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, headDimOf, kvHeadsOf, parseLlamaConfig, toConfigJson } from '../../src/model/config.ts';
import { FIXTURES } from '../policy/helpers.ts';

const minimal = {
  vocab_size: 100,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
};

describe('parseLlamaConfig', () => {
  it("fills in HF LlamaConfig's defaults", () => {
    const c = parseLlamaConfig(minimal);
    expect(c).toMatchObject({
      max_position_embeddings: 2048,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      tie_word_embeddings: false,
      hidden_act: 'silu',
      model_type: 'llama',
      architectures: ['LlamaForCausalLM'],
    });
    expect(kvHeadsOf(c)).toBe(4);
    expect(headDimOf(c)).toBe(16);
  });

  it('reads a SmolLM2-style config, keeping unknown fields for the way back', () => {
    const c = parseLlamaConfig({
      ...minimal,
      num_key_value_heads: 2,
      tie_word_embeddings: true,
      eos_token_id: [2, 7],
      initializer_range: 0.041666666666666664,
      transformers_version: '4.40.1',
      attention_bias: false,
      rope_scaling: null,
    });
    expect(kvHeadsOf(c)).toBe(2);
    expect(toConfigJson(c)).toMatchObject({
      transformers_version: '4.40.1',
      num_key_value_heads: 2,
      head_dim: 16,
    });
  });

  it('reads the fixture configs', () => {
    for (const variant of ['tied', 'untied']) {
      const c = parseLlamaConfig(JSON.parse(readFileSync(join(FIXTURES, variant, 'config.json'), 'utf8')));
      expect(c.num_key_value_heads).toBe(2);
    }
  });

  it.each([
    [{ ...minimal, hidden_size: 0 }, 'hidden_size'],
    [{ ...minimal, vocab_size: 10.5 }, 'vocab_size'],
    [{ ...minimal, num_key_value_heads: 3 }, 'num_key_value_heads'],
    [{ ...minimal, hidden_size: 66 }, 'hidden_size'],
    [{ ...minimal, head_dim: 5 }, 'head_dim'],
    [{ ...minimal, hidden_act: 'gelu' }, 'hidden_act'],
    [{ ...minimal, attention_bias: true }, 'attention_bias'],
    [{ ...minimal, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'rope_scaling.rope_type'],
    [{ ...minimal, num_hidden_layers: undefined }, 'num_hidden_layers'],
  ])('refuses %j naming %s', (json, field) => {
    let error: unknown;
    try {
      parseLlamaConfig(json);
    } catch (e) {
      error = e;
    }
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as ConfigError).field).toBe(field);
    expect((error as ConfigError).message).toMatch(new RegExp(`^config\\.${field.replace('.', '\\.')}: `));
  });
});
