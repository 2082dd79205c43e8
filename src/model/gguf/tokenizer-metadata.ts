/**
 * A Hugging Face byte-level BPE `tokenizer.json` as llama.cpp's `tokenizer.*` GGUF metadata, the way
 * `convert_hf_to_gguf.py` (`_set_vocab_gpt2`) writes it: every id's token string, its type (normal,
 * control for special added tokens, user-defined for other added tokens, unused for holes), the
 * merges as "left right" strings, the special ids, and `tokenizer.ggml.pre`, which selects the
 * pre-tokenizer regex llama.cpp splits text with before BPE.
 */
import { CORGI_CHAT_TEMPLATE_JINJA, type Tokenizer } from '../tokenizer.ts';
import { GgufWriteError, type GgufWriteValue, gguf } from './writer.ts';

/** llama.cpp's `llama_token_type` (gguf-py `TokenType`). */
const TokenType = { NORMAL: 1, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5 } as const;

/**
 * The `tokenizer.ggml.pre` whose regex splits text as this tokenizer.json's normalizer and
 * pre-tokenizer do. GPT-2's ByteLevel regex (ours) is llama.cpp's "gpt-2"; the two other shapes
 * recognized are Llama 3's Split regex ("llama-bpe") and SmolLM2's digits-then-ByteLevel ("smollm").
 * @throws GgufWriteError for a pre-tokenizer llama.cpp has no known equivalent of
 */
export function llamaCppPreTokenizer(json: Tokenizer['json']): string {
  const pre = json.pre_tokenizer as Record<string, unknown> | null;
  const isByteLevel = (p: Record<string, unknown> | undefined, regex: boolean) =>
    p?.type === 'ByteLevel' && p.add_prefix_space !== true && (p.use_regex !== false) === regex;
  if (json.normalizer == null && pre) {
    if (isByteLevel(pre, true)) return 'gpt-2';
    const parts = pre.type === 'Sequence' ? (pre.pretokenizers as Record<string, unknown>[]) : [];
    const [first, second] = parts;
    if (
      parts.length === 2 &&
      first?.type === 'Digits' &&
      first.individual_digits === true &&
      isByteLevel(second, true)
    )
      return 'smollm';
    const pattern = (first?.pattern as { Regex?: string } | undefined)?.Regex ?? '';
    if (
      parts.length === 2 &&
      first?.type === 'Split' &&
      pattern.includes('\\p{N}{1,3}') &&
      isByteLevel(second, false)
    )
      return 'llama-bpe';
  }
  throw new GgufWriteError(
    `tokenizer.json: pre_tokenizer ${JSON.stringify(pre)} (normalizer ${JSON.stringify(json.normalizer)}) has no llama.cpp equivalent known here`,
  );
}

/**
 * The tokenizer as GGUF metadata, padded to `vocabSize` ids (the model's embedding rows).
 * @param chatTemplate a Jinja chat template; our own tokenizers get ours when none is given
 */
export function tokenizerGgufMetadata(
  tokenizer: Tokenizer,
  vocabSize: number,
  chatTemplate?: string | null,
): Map<string, GgufWriteValue> {
  const json = tokenizer.json;
  if (json.model.type !== 'BPE')
    throw new GgufWriteError(`tokenizer.json: model type ${json.model.type} is not written (BPE only)`);
  if (tokenizer.vocabSize > vocabSize)
    throw new GgufWriteError(
      `tokenizer.json: ${tokenizer.vocabSize} tokens do not fit the model's vocab_size ${vocabSize}`,
    );
  const tokens: string[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize).fill(TokenType.UNUSED);
  for (const [token, id] of Object.entries(json.model.vocab)) {
    tokens[id] = token;
    types[id] = TokenType.NORMAL;
  }
  for (const added of json.added_tokens ?? []) {
    tokens[added.id] = added.content;
    types[added.id] = added.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  for (let id = 0; id < vocabSize; id++) tokens[id] ??= `[PAD${id}]`;
  const merges = (json.model.merges as (string | [string, string])[]).map((m) =>
    typeof m === 'string' ? m : `${m[0]} ${m[1]}`,
  );

  const metadata = new Map<string, GgufWriteValue>([
    ['tokenizer.ggml.model', gguf.str('gpt2')],
    ['tokenizer.ggml.pre', gguf.str(llamaCppPreTokenizer(json))],
    ['tokenizer.ggml.tokens', gguf.strings(tokens)],
    ['tokenizer.ggml.token_type', gguf.i32s(types)],
    ['tokenizer.ggml.merges', gguf.strings(merges)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(tokenizer.eosId)],
    ['tokenizer.ggml.padding_token_id', gguf.u32(tokenizer.padId)],
  ]);
  if (tokenizer.bosId !== null) {
    metadata.set('tokenizer.ggml.bos_token_id', gguf.u32(tokenizer.bosId));
    // Our post-processor prepends BOS; so does llama.cpp when asked to add special tokens.
    metadata.set('tokenizer.ggml.add_bos_token', gguf.bool(true));
  }
  metadata.set('tokenizer.ggml.add_eos_token', gguf.bool(false));
  // The end-of-turn marker, so llama.cpp stops a chat turn where our generation does.
  const endOfTurn = ['<|end|>', '<|eot_id|>', '<|im_end|>']
    .map((name) => tokenizer.tokenToId(name))
    .find((id) => id !== undefined && tokenizer.isSpecial(id));
  if (endOfTurn !== undefined && endOfTurn !== tokenizer.eosId)
    metadata.set('tokenizer.ggml.eot_token_id', gguf.u32(endOfTurn));
  const template = chatTemplate ?? (tokenizer.chatTemplate === 'corgi' ? CORGI_CHAT_TEMPLATE_JINJA : null);
  if (template) metadata.set('tokenizer.chat_template', gguf.str(template));
  return metadata;
}
