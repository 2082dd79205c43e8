/**
 * A Hugging Face `tokenizer.json` (and the `tokenizer_config.json` fields our `Tokenizer` reads)
 * rebuilt from a GGUF file's tokenizer metadata, so a GGUF with no tokenizer.json beside it (a model
 * from the store) is tokenized by the same TypeScript tokenizer the trainer uses, and llama.cpp is fed
 * our ids.
 *
 * Only byte-level BPE (`tokenizer.ggml.model = "gpt2"`) is rebuilt. Its pre-tokenizer is not in the
 * file: llama.cpp picks a split regex by the name in `tokenizer.ggml.pre` (llama-vocab.cpp), and
 * `PRE_TOKENIZERS` holds the Hugging Face equivalent of each name we serve. Token types follow
 * llama.cpp's `llama_token_type`: 3 (control) becomes a special added token, 4 (user-defined) a
 * plain added token.
 */
import { CorgiError } from '../common/errors.ts';
import { byteLevelBpeJson, type TokenizerJson } from './bpe-trainer.ts';

/** llama.cpp's `llama_token_type` values that become added tokens. */
const TOKEN_TYPE_CONTROL = 3;
const TOKEN_TYPE_USER_DEFINED = 4;

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

/**
 * `tokenizer.ggml.pre` → the Hugging Face pre-tokenizer splitting text as llama.cpp does.
 * - gpt-2: GPT-2's regex (our built-in tokenizer's);
 * - smollm, starcoder and kin: every digit on its own, then GPT-2's regex (SmolLM2's tokenizer.json);
 * - llama-bpe: Llama 3's split regex, then byte-level without GPT-2's regex.
 */
const DIGITS_THEN_BYTE_LEVEL = {
  type: 'Sequence',
  pretokenizers: [{ type: 'Digits', individual_digits: true }, BYTE_LEVEL],
};
/** Llama 3's split regex (llama.cpp's LLAMA_VOCAB_PRE_TYPE_LLAMA3, the tokenizer.json of Llama 3.x). */
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const PRE_TOKENIZERS: Readonly<Record<string, unknown>> = {
  'gpt-2': BYTE_LEVEL,
  'llama-bpe': {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: LLAMA3_PATTERN }, behavior: 'Isolated', invert: false },
      { ...BYTE_LEVEL, use_regex: false },
    ],
  },
  gpt2: BYTE_LEVEL,
  smollm: DIGITS_THEN_BYTE_LEVEL,
  starcoder: DIGITS_THEN_BYTE_LEVEL,
  refact: DIGITS_THEN_BYTE_LEVEL,
  codeshell: DIGITS_THEN_BYTE_LEVEL,
};

/** What `tokenizerJsonFromGguf` returns: the two files a Hugging Face checkpoint would carry. */
export interface GgufTokenizerFiles {
  tokenizerJson: TokenizerJson;
  /** `bos_token`, `eos_token`, `pad_token` (when the file names them) and `chat_template`. */
  tokenizerConfig: { bos_token?: string; eos_token?: string; pad_token?: string; chat_template?: string };
}

/** A GGUF's tokenizer metadata is missing, malformed, or of a kind we do not rebuild. */
export class GgufTokenizerError extends CorgiError {
  constructor(message: string) {
    super('unsupported_tokenizer', message);
  }
}

/**
 * Builds `tokenizer.json` and `tokenizer_config.json` from a GGUF's flat metadata (keys such as
 * `tokenizer.ggml.tokens`, `tokenizer.ggml.merges`, `tokenizer.ggml.token_type`,
 * `tokenizer.ggml.pre`, `tokenizer.ggml.bos_token_id`, `tokenizer.chat_template`).
 * @throws GgufTokenizerError naming the key and the reason
 */
export function tokenizerJsonFromGguf(metadata: Record<string, unknown>): GgufTokenizerFiles {
  const model = metadata['tokenizer.ggml.model'];
  if (model !== 'gpt2') {
    throw new GgufTokenizerError(
      `tokenizer.ggml.model: only byte-level BPE ("gpt2") can be rebuilt, got ${JSON.stringify(model)}`,
    );
  }
  const tokens = stringArray(metadata, 'tokenizer.ggml.tokens');
  const merges = stringArray(metadata, 'tokenizer.ggml.merges');
  const types = metadata['tokenizer.ggml.token_type'];
  if (types !== undefined && !(Array.isArray(types) && types.length === tokens.length)) {
    throw new GgufTokenizerError(
      `tokenizer.ggml.token_type: expected ${tokens.length} token types (one per token), got ${describe(types)}`,
    );
  }
  const pre = metadata['tokenizer.ggml.pre'] ?? 'gpt-2';
  const preTokenizer = typeof pre === 'string' ? PRE_TOKENIZERS[pre] : undefined;
  if (!preTokenizer) {
    throw new GgufTokenizerError(
      `tokenizer.ggml.pre: no pre-tokenizer known for ${JSON.stringify(pre)} (known: ${Object.keys(PRE_TOKENIZERS).join(', ')})`,
    );
  }

  const vocab: Record<string, number> = {};
  const added: TokenizerJson['added_tokens'] = [];
  tokens.forEach((token, id) => {
    const type = (types as number[] | undefined)?.[id];
    if (type === TOKEN_TYPE_CONTROL || type === TOKEN_TYPE_USER_DEFINED) {
      added.push({
        id,
        content: token,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: type === TOKEN_TYPE_CONTROL,
      });
    }
    // The first id wins, as llama.cpp's token-to-id map (a few GGUFs repeat a token string).
    if (!Object.hasOwn(vocab, token)) vocab[token] = id;
  });

  const tokenizerJson = byteLevelBpeJson({ addedTokens: added, preTokenizer, vocab, merges });

  const tokenizerConfig: GgufTokenizerFiles['tokenizerConfig'] = {};
  const named = (key: string): string | undefined => {
    const id = metadata[key];
    if (id === undefined) return undefined;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= tokens.length)
      throw new GgufTokenizerError(`${key}: expected a token id below ${tokens.length}, got ${describe(id)}`);
    return tokens[id];
  };
  const bos = named('tokenizer.ggml.bos_token_id');
  const eos = named('tokenizer.ggml.eos_token_id');
  const pad = named('tokenizer.ggml.padding_token_id');
  if (bos !== undefined) tokenizerConfig.bos_token = bos;
  if (eos !== undefined) tokenizerConfig.eos_token = eos;
  if (pad !== undefined) tokenizerConfig.pad_token = pad;
  const template = metadata['tokenizer.chat_template'];
  if (typeof template === 'string') tokenizerConfig.chat_template = template;
  return { tokenizerJson, tokenizerConfig };
}

function stringArray(metadata: Record<string, unknown>, key: string): string[] {
  const value = metadata[key];
  if (!Array.isArray(value) || value.length === 0 || value.some((v) => typeof v !== 'string'))
    throw new GgufTokenizerError(`${key}: expected a non-empty array of strings, got ${describe(value)}`);
  return value as string[];
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return value === undefined ? 'nothing' : (JSON.stringify(value)?.slice(0, 60) ?? String(value));
}
