/** A byte-level BPE tokenizer.json for the 48-token tiny Llama fixtures, which ship without one. */
import type { TokenizerJson } from '../../../src/model/bpe-trainer.ts';
import { Tokenizer } from '../../../src/model/tokenizer.ts';

const SPECIAL: Record<number, string> = { 0: '<unk>', 1: '<s>', 2: '</s>' };

/** Ids 0–2 special (<unk>, BOS <s>, EOS </s>), ids 3–47 single letters; no merges. */
export function tinyTokenizer(vocabSize = 48): Tokenizer {
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const vocab: Record<string, number> = {};
  for (let id = 3; id < vocabSize; id++) vocab[letters[id - 3]!] = id;
  const json: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: Object.entries(SPECIAL).map(([id, content]) => ({
      id: Number(id),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', vocab, merges: [] },
  };
  return new Tokenizer(json, { bos_token: '<s>', eos_token: '</s>' });
}
