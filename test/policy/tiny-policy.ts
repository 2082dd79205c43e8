/** A tiny chat model for generation tests: our BPE on a few sentences, a 2-layer Llama with GQA. */
import { join } from 'node:path';
import { type TokenizerJson, trainBpe } from '../../src/model/bpe-trainer.ts';
import { saveCheckpoint } from '../../src/model/checkpoint.ts';
import { type LlamaConfig, parseLlamaConfig } from '../../src/model/config.ts';
import { LlamaModel } from '../../src/model/llama.ts';
import { Tokenizer } from '../../src/model/tokenizer.ts';
import { buildTokenizerConfig } from '../../src/training/pretrain/train-tokenizer.ts';

const TEXTS = [
  'The dog ran in the park. The cat sat on the mat.',
  'A quick brown fox jumps over the lazy dog.',
  'Write a sentence using the words dog and park. Feedback: try again.',
  'Café 日本語 🎉 naïve — “quotes” ½',
];

// 7 special tokens + 256 bytes + a few merges: small enough that a forward takes well under a ms.
export const tinyTokenizerJson: TokenizerJson = trainBpe({ texts: TEXTS, vocabSize: 300 });
export const tinyTokenizer = new Tokenizer(tinyTokenizerJson);

/** A config for `tinyTokenizer`; max_position_embeddings leaves room for short chats. */
export function tinyConfig(overrides: Record<string, unknown> = {}): LlamaConfig {
  return parseLlamaConfig({
    vocab_size: tinyTokenizer.vocabSize,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 256,
    ...overrides,
  });
}

/**
 * A random model; std 0.2 instead of HF's 0.02 so the next-token distribution is far from uniform
 * (sampling tests then see distinct probabilities, and greedy decoding is not a tie-break).
 */
export function tinyModel(seed = 1, overrides: Record<string, unknown> = {}): LlamaModel {
  return LlamaModel.init(tinyConfig(overrides), { seed, std: 0.2 });
}

/** Saves `model` with the tiny tokenizer as a checkpoint directory `root/name`. */
export async function saveTinyCheckpoint(model: LlamaModel, root: string, name: string): Promise<string> {
  const dir = join(root, name);
  await saveCheckpoint(model, dir, {
    files: {
      'tokenizer.json': JSON.stringify(tinyTokenizerJson),
      'tokenizer_config.json': JSON.stringify(buildTokenizerConfig(tinyTokenizerJson)),
    },
  });
  return dir;
}
