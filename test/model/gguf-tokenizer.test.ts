import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TokenizerJson } from '../../src/model/bpe-trainer.ts';
import { GgufTokenizerError, tokenizerJsonFromGguf } from '../../src/model/gguf-tokenizer.ts';
import { defaultSystemMessageOf, Tokenizer } from '../../src/model/tokenizer.ts';
import { parityTexts } from '../support/tokenizer-texts.ts';

/** The GGUF tokenizer metadata llama.cpp's converter writes for a byte-level BPE tokenizer.json. */
function ggufMetadataOf(json: TokenizerJson, pre: string, bos: string, eos: string): Record<string, unknown> {
  const byId: string[] = [];
  for (const [token, id] of Object.entries(json.model.vocab)) byId[id] = token;
  const types = byId.map(() => 1);
  for (const added of json.added_tokens) {
    byId[added.id] = added.content;
    types[added.id] = added.special ? 3 : 4;
  }
  const merges = (json.model.merges as (string | [string, string])[]).map((m) =>
    Array.isArray(m) ? m.join(' ') : m,
  );
  return {
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': pre,
    'tokenizer.ggml.tokens': byId,
    'tokenizer.ggml.token_type': types,
    'tokenizer.ggml.merges': merges,
    'tokenizer.ggml.bos_token_id': byId.indexOf(bos),
    'tokenizer.ggml.eos_token_id': byId.indexOf(eos),
  };
}

const SMOLLM2_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

describe('tokenizerJsonFromGguf', () => {
  it('rebuilds the built-in tokenizer from GGUF metadata with the same ids on real text', () => {
    const original = Tokenizer.fromFile('models/base');
    const metadata = ggufMetadataOf(original.json, 'gpt-2', '<|begin_of_text|>', '<|end_of_text|>');
    const { tokenizerJson, tokenizerConfig } = tokenizerJsonFromGguf(metadata);
    const rebuilt = new Tokenizer(tokenizerJson, tokenizerConfig);
    expect(rebuilt.vocabSize).toBe(original.vocabSize);
    expect(rebuilt.bosId).toBe(original.bosId);
    expect(rebuilt.eosId).toBe(original.eosId);
    expect(rebuilt.chatTemplate).toBe('corgi');
    for (const text of parityTexts(200)) {
      const ids = original.encode(text);
      expect(rebuilt.encode(text), text).toEqual(ids);
      expect(rebuilt.decode(ids)).toBe(text);
    }
    const chat = [
      { role: 'user' as const, content: 'Use the words dog and park.' },
      { role: 'assistant' as const, content: 'The dog ran.' },
    ];
    expect(rebuilt.applyChatTemplate(chat, { addGenerationPrompt: true })).toEqual(
      original.applyChatTemplate(chat, { addGenerationPrompt: true }),
    );
  });

  it('refuses tokenizers it cannot rebuild, naming the key', () => {
    const base = ggufMetadataOf(
      Tokenizer.fromFile('models/base').json,
      'gpt-2',
      '<|begin_of_text|>',
      '<|end_of_text|>',
    );
    expect(() => tokenizerJsonFromGguf({ ...base, 'tokenizer.ggml.model': 'llama' })).toThrow(
      /tokenizer\.ggml\.model: only byte-level BPE/,
    );
    expect(() => tokenizerJsonFromGguf({ ...base, 'tokenizer.ggml.pre': 'qwen9' })).toThrow(
      /tokenizer\.ggml\.pre: no pre-tokenizer known for "qwen9"/,
    );
    expect(() => tokenizerJsonFromGguf({ ...base, 'tokenizer.ggml.token_type': [1, 2] })).toThrow(
      GgufTokenizerError,
    );
    expect(() => tokenizerJsonFromGguf({ ...base, 'tokenizer.ggml.tokens': [] })).toThrow(
      /tokenizer\.ggml\.tokens: expected a non-empty array of strings/,
    );
    expect(() => tokenizerJsonFromGguf({ ...base, 'tokenizer.ggml.eos_token_id': 1e9 })).toThrow(
      /tokenizer\.ggml\.eos_token_id: expected a token id below/,
    );
  });
});

describe('defaultSystemMessageOf', () => {
  it("reads SmolLM2's default system message from its Jinja template", () => {
    expect(defaultSystemMessageOf(SMOLLM2_TEMPLATE)).toBe(
      'You are a helpful AI assistant named SmolLM, trained by Hugging Face',
    );
    // Hugging Face's tokenizer_config.json spells the newline as \n inside the string literal.
    expect(defaultSystemMessageOf(SMOLLM2_TEMPLATE.replaceAll('\n', '\\n'))).toBe(
      'You are a helpful AI assistant named SmolLM, trained by Hugging Face',
    );
  });

  it('finds none in a template that adds no system message', () => {
    expect(
      defaultSystemMessageOf(
        JSON.parse(readFileSync('models/base/tokenizer_config.json', 'utf8')).chat_template,
      ),
    ).toBeNull();
    expect(
      defaultSystemMessageOf(
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}{% endfor %}",
      ),
    ).toBeNull();
    expect(defaultSystemMessageOf(undefined)).toBeNull();
  });
});
