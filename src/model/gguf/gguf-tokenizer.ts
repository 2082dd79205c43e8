/**
 * A GGUF's `tokenizer.*` metadata (llama.cpp's "gpt2" byte-level BPE) as a Hugging Face
 * `tokenizer.json`, the inverse of tokenizer-metadata.ts: normal tokens and merges become the BPE
 * model, control and user-defined tokens the added tokens, and `tokenizer.ggml.pre` the
 * pre-tokenizer that splits text as llama.cpp's regex does. So a GGUF model trains in TF.js with
 * the very token ids llama.cpp serves it with.
 */

import type { AddedTokenJson, TokenizerJson } from '../../policy/bpe-trainer.ts';
import { CheckpointError } from '../../policy/checkpoint.ts';
import { Tokenizer, type TokenizerConfigJson } from '../../policy/tokenizer.ts';
import type { GgufFile } from './parse-header.ts';
import { inspectGguf } from './reader.ts';

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
/** Llama 3's split regex (llama.cpp LLAMA_VOCAB_PRE_TYPE_LLAMA3, tokenizer.json of Llama 3.x). */
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const PRE_TOKENIZERS: Record<string, unknown> = {
  'gpt-2': BYTE_LEVEL,
  smollm: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, BYTE_LEVEL] },
  'llama-bpe': {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: LLAMA3_PATTERN }, behavior: 'Isolated', invert: false },
      { ...BYTE_LEVEL, use_regex: false },
    ],
  },
};

/** `tokenizer.json` and `tokenizer_config.json` content for a GGUF's tokenizer. @throws CheckpointError */
export function tokenizerJsonFromGguf(
  file: GgufFile,
  path: string,
): { json: TokenizerJson; config: TokenizerConfigJson } {
  const fail = (reason: string): never => {
    throw new CheckpointError(path, reason);
  };
  const m = file.metadata;
  if (m['tokenizer.ggml.model'] !== 'gpt2')
    fail(
      `tokenizer.ggml.model is ${JSON.stringify(m['tokenizer.ggml.model'])}; only "gpt2" (byte-level BPE) is read`,
    );
  const pre = String(m['tokenizer.ggml.pre'] ?? 'gpt-2');
  const preTokenizer =
    PRE_TOKENIZERS[pre] ??
    fail(`tokenizer.ggml.pre "${pre}" is not one of ${Object.keys(PRE_TOKENIZERS).join(', ')}`);
  const tokens = m['tokenizer.ggml.tokens'];
  const types = m['tokenizer.ggml.token_type'];
  const merges = m['tokenizer.ggml.merges'];
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string'))
    return fail('tokenizer.ggml.tokens is not a list of strings');
  if (!Array.isArray(types) || types.length !== tokens.length)
    return fail('tokenizer.ggml.token_type does not match the tokens');
  if (!Array.isArray(merges) || !merges.every((t) => typeof t === 'string'))
    return fail('tokenizer.ggml.merges is not a list of strings');

  const vocab: Record<string, number> = {};
  const added: AddedTokenJson[] = [];
  tokens.forEach((token, id) => {
    const type = Number(types[id]);
    if (type === 5) return; // unused padding rows
    if (type === 3 || type === 4) {
      added.push({
        id,
        content: token as string,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: type === 4,
        special: type === 3,
      });
    }
    vocab[token as string] = id;
  });
  const nameOf = (key: string) => {
    const id = m[`tokenizer.ggml.${key}`];
    return typeof id === 'number' && typeof tokens[id] === 'string' ? (tokens[id] as string) : undefined;
  };
  const bos = nameOf('bos_token_id');
  const addBos = m['tokenizer.ggml.add_bos_token'] === true && bos !== undefined;
  const json: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: addBos
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos, type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [bos]: { id: bos, ids: [m['tokenizer.ggml.bos_token_id']], tokens: [bos] } },
        }
      : null,
    decoder: { ...BYTE_LEVEL, add_prefix_space: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges as string[],
    },
  };
  const config: TokenizerConfigJson = {};
  if (bos !== undefined) config.bos_token = bos;
  const eos = nameOf('eos_token_id');
  if (eos !== undefined) config.eos_token = eos;
  const pad = nameOf('padding_token_id');
  if (pad !== undefined) config.pad_token = pad;
  if (typeof m['tokenizer.chat_template'] === 'string') config.chat_template = m['tokenizer.chat_template'];
  return { json, config };
}

/** Our `Tokenizer` for a GGUF file's tokenizer metadata. @throws CheckpointError */
export async function loadGgufTokenizer(path: string, file?: GgufFile): Promise<Tokenizer> {
  const { json, config } = tokenizerJsonFromGguf(file ?? (await inspectGguf(path)), path);
  return new Tokenizer(json, config);
}
