/**
 * `Tokenizer`: the one tokenizer API the model, generation and the trainer use, over
 * `@huggingface/tokenizers` (a pure-JS loader for Hugging Face `tokenizer.json`).
 *
 * It loads our own byte-level BPE (see `bpe-trainer.ts`) and real checkpoints' tokenizers
 * (Llama 3.2, SmolLM2, TinyLlama) alike, and adds what the library lacks:
 * - `encode` treats special-token strings in text as plain text unless asked (`allowSpecial`),
 *   so a user typing "<|end|>" cannot forge a turn boundary (tiktoken's rule);
 * - `decode` never runs the "clean up tokenization spaces" pass (it deletes the space in
 *   "a ." and breaks exact round trips), whatever `tokenizer_config.json` says;
 * - `createStreamDecoder` turns ids into text as they arrive, emitting only whole characters;
 * - `applyChatTemplate` returns ids plus the mask of assistant tokens the CORGI trainer trains on.
 *
 * Chat templates: Hugging Face checkpoints carry a Jinja `chat_template` in
 * `tokenizer_config.json`. We do not run Jinja. Instead the template is chosen from the special
 * tokens the tokenizer has, and implemented here:
 * - `corgi` (our models: `<|system|>`, `<|user|>`, `<|assistant|>`, `<|end|>`):
 *   `<|begin_of_text|><|user|>{content}<|end|><|assistant|>{content}<|end|>`
 *   (no newlines: the markers are single special tokens, so nothing else is needed to delimit turns);
 * - `llama3` (`<|start_header_id|>`, `<|end_header_id|>`, `<|eot_id|>`, as Llama 3 / 3.1 / 3.2):
 *   `<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>...`, content
 *   trimmed as Meta's template does. Not reproduced: Llama 3.1+'s automatic system preamble
 *   ("Cutting Knowledge Date: ...", tools);
 * - `chatml` (`<|im_start|>`, `<|im_end|>`, as SmolLM2): `<|im_start|>user\n{content}<|im_end|>\n`.
 *   A Jinja template that opens with a system message when the conversation has none (SmolLM2's:
 *   "You are a helpful AI assistant named SmolLM, trained by Hugging Face") is read from
 *   `chat_template` (`defaultSystemMessageOf`) and rendered the same way, so our ids equal the
 *   template's.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import type { TokenizerJson } from './bpe-trainer.ts';
import { bytesToTokenString, GPT2_PRETOKENIZE_PATTERN, UNICODE_TO_BYTE } from './bpe-trainer.ts';

/** Entries in the per-tokenizer pre-token cache (Brown has about 52k distinct pre-tokens). */
const PIECE_CACHE_SIZE = 200_000;

export const chatRoleSchema = z.enum(['system', 'user', 'assistant']);
/** One chat message; CORGI feedback goes in as a `user` message. */
export const chatMessageSchema = z.object({ role: chatRoleSchema, content: z.string() });
export type ChatRole = z.infer<typeof chatRoleSchema>;
export type ChatMessage = z.infer<typeof chatMessageSchema>;

export type ChatTemplateName = 'corgi' | 'llama3' | 'chatml';

/** Our chat template in Jinja, for `tokenizer_config.json` (Hugging Face `apply_chat_template`). */
export const CORGI_CHAT_TEMPLATE_JINJA =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

/** The result of `applyChatTemplate`. */
export interface ChatEncoding {
  ids: number[];
  /**
   * 1 where the token is a training target: an assistant message's content and its end-of-turn
   * token (so the model learns to stop); 0 for BOS, role headers, system/user/feedback content.
   */
  assistantMask: (0 | 1)[];
  /** Token span `[start, end)` of each message, headers and end-of-turn included, in order. */
  spans: { role: ChatRole; start: number; end: number }[];
}

/** The fields of `tokenizer_config.json` we read. A token may be a string or `{content}`. */
export interface TokenizerConfigJson {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  /** The Jinja chat template (a string, or named templates); only its default system message is read. */
  chat_template?: string | { name: string; template: string }[] | null;
  [key: string]: unknown;
}

/**
 * The system message a ChatML Jinja template inserts when the first message is not a system one
 * (`{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n…<|im_end|>\n' }}`),
 * or null when it inserts none.
 */
export function defaultSystemMessageOf(template: string | null | undefined): string | null {
  if (!template) return null;
  const match =
    /\{%-?\s*if[^%]*\[\s*['"]role['"]\s*\]\s*!=\s*['"]system['"][^%]*-?%\}\s*\{\{-?\s*(['"])<\|im_start\|>system(?:\n|\\n)([\s\S]*?)<\|im_end\|>/.exec(
      template,
    );
  if (!match) return null;
  // A Jinja string literal may spell a newline as \n.
  return match[2]!.replace(/\\n/g, '\n');
}

export interface EncodeOptions {
  /**
   * Parse special-token strings in the text ("<|end|>") as the special tokens. Leave off for any
   * text that came from a user or a model.
   * @default false
   */
  allowSpecial?: boolean;
  /** Prepend the BOS token (when the tokenizer has one). @default false */
  addBos?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, chat markers) from the text. @default false */
  skipSpecialTokens?: boolean;
}

/** Turns token ids into text as they arrive; `push` returns only whole characters. */
export interface StreamDecoder {
  /** Adds one token id and returns the newly completed text (often '', never a broken character). */
  push(id: number): string;
  /** Returns whatever is still held back (an incomplete UTF-8 sequence decodes to U+FFFD). */
  flush(): string;
}

// Candidates by name when tokenizer_config.json does not say (or is absent).
const BOS_NAMES = ['<|begin_of_text|>', '<s>', '<|startoftext|>'];
const EOS_NAMES = ['<|end_of_text|>', '</s>', '<|endoftext|>', '<|im_end|>', '<|eot_id|>'];
const PAD_NAMES = ['<|pad|>', '<pad>', '<|finetune_right_pad_id|>'];
/** End-of-turn or end-of-text tokens: generation stops at any of these that exist. */
const STOP_NAMES = [
  '<|end|>',
  '<|eot_id|>',
  '<|eom_id|>',
  '<|im_end|>',
  '<|end_of_text|>',
  '</s>',
  '<|endoftext|>',
];

function tokenName(value: TokenizerConfigJson['bos_token']): string | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? value : value.content;
}

export class Tokenizer {
  /** The `tokenizer.json` object this was built from (write it into checkpoints as is). */
  readonly json: TokenizerJson;
  /** Rows the embedding needs: highest id in the vocabulary or added tokens, plus one. */
  readonly vocabSize: number;
  /** Beginning-of-sequence id, or null for tokenizers without one. */
  readonly bosId: number | null;
  /** End-of-text id (`<|end_of_text|>` for ours). */
  readonly eosId: number;
  /** Padding id; falls back to EOS for tokenizers without a pad token (Llama 3 base). */
  readonly padId: number;
  /** Ids that end a generation: EOS and the end-of-turn token (`<|end|>`, `<|eot_id|>`, ...). */
  readonly stopIds: readonly number[];
  /** The chat template chosen from the special tokens, or null when none fits. */
  readonly chatTemplate: ChatTemplateName | null;
  /**
   * The system message the ChatML template renders when the conversation has none (from the
   * config's Jinja `chat_template`), or null.
   */
  readonly defaultSystemMessage: string | null;

  private readonly hf: HfTokenizer;
  /** Added tokens by id: the decoder prints these as their content, never as bytes. */
  private readonly addedById = new Map<number, { content: string; special: boolean }>();
  private readonly addedByContent = new Map<string, number>();
  /** Pre-token → ids; BPE encodes each pre-token on its own, so this is exact. */
  private readonly pieceCache = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();
  /** No normalizer and a plain GPT-2 ByteLevel pre-tokenizer (ours, GPT-2): use the fast path. */
  private readonly gpt2PreTokenizer: boolean;
  /** Whether decoding is byte-level (ours, Llama 3, SmolLM2), which allows the exact stream decoder. */
  private readonly byteLevel: boolean;

  /**
   * @param json a parsed `tokenizer.json`
   * @param config the parsed `tokenizer_config.json`, if any (names BOS/EOS/PAD)
   */
  constructor(json: TokenizerJson | Record<string, unknown>, config: TokenizerConfigJson = {}) {
    this.json = json as TokenizerJson;
    this.hf = new HfTokenizer(json, { ...config, clean_up_tokenization_spaces: false });
    for (const token of this.json.added_tokens ?? []) {
      this.addedById.set(token.id, { content: token.content, special: token.special });
      this.addedByContent.set(token.content, token.id);
    }
    let maxId = -1; // a loop, not Math.max(...ids): Llama 3 has 128k ids, too many for spread arguments
    for (const id of Object.values(this.json.model.vocab ?? {}) as number[]) maxId = Math.max(maxId, id);
    for (const id of this.addedById.keys()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.byteLevel = (this.json.decoder as { type?: string } | null)?.type === 'ByteLevel';
    const pre = this.json.pre_tokenizer as {
      type?: string;
      add_prefix_space?: boolean;
      use_regex?: boolean;
    } | null;
    this.gpt2PreTokenizer =
      this.json.normalizer === null &&
      this.json.model.type === 'BPE' &&
      pre?.type === 'ByteLevel' &&
      pre.use_regex !== false &&
      pre.add_prefix_space !== true;

    const find = (configured: string | undefined, names: readonly string[]): number | undefined => {
      if (configured !== undefined) {
        const id = this.tokenToId(configured);
        if (id === undefined)
          throw new Error(`tokenizer_config.json names token ${configured}, which is not in the vocabulary`);
        return id;
      }
      for (const name of names) {
        const id = this.tokenToId(name);
        if (id !== undefined) return id;
      }
      return undefined;
    };
    this.bosId = find(tokenName(config.bos_token), BOS_NAMES) ?? null;
    const eosId = find(tokenName(config.eos_token), EOS_NAMES);
    if (eosId === undefined) {
      throw new Error(
        `no end-of-text token found: pass tokenizer_config.json with eos_token, or add one of ${EOS_NAMES.join(', ')}`,
      );
    }
    this.eosId = eosId;
    this.padId = find(tokenName(config.pad_token), PAD_NAMES) ?? eosId;
    const stops = new Set([eosId]);
    for (const name of STOP_NAMES) {
      const id = this.addedId(name);
      if (id !== undefined) stops.add(id);
    }
    this.stopIds = [...stops];
    this.chatTemplate = this.detectChatTemplate();
    const jinja = Array.isArray(config.chat_template)
      ? config.chat_template.find((entry) => entry.name === 'default')?.template
      : config.chat_template;
    this.defaultSystemMessage = this.chatTemplate === 'chatml' ? defaultSystemMessageOf(jinja) : null;
  }

  /**
   * Loads `tokenizer.json` from a file path or a checkpoint directory, with the
   * `tokenizer_config.json` beside it when present.
   */
  static fromFile(path: string): Tokenizer {
    const file = statSync(path).isDirectory() ? join(path, 'tokenizer.json') : path;
    const json = JSON.parse(readFileSync(file, 'utf8'));
    const configPath = join(dirname(file), 'tokenizer_config.json');
    const config = existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : {};
    return new Tokenizer(json, config);
  }

  /** The id of a token string (vocabulary or added token). */
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** The token string of an id (byte-level tokens look like `Ġthe`). */
  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** Whether `id` is a special added token (BOS, EOS, PAD, chat markers). */
  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special ?? false;
  }

  /**
   * Text → token ids. Exact inverse of `decode` for byte-level tokenizers (any string without
   * lone UTF-16 surrogates, which UTF-8 cannot represent).
   */
  encode(text: string, { allowSpecial = false, addBos = false }: EncodeOptions = {}): number[] {
    const ids = allowSpecial
      ? this.hf.encode(text, { add_special_tokens: false }).ids
      : this.encodeOrdinary(text);
    return addBos && this.bosId !== null ? [this.bosId, ...ids] : ids;
  }

  /**
   * Token ids → text. Special tokens print as their content unless skipped.
   * @throws RangeError on an id outside the vocabulary
   */
  decode(ids: readonly number[], { skipSpecialTokens = false }: DecodeOptions = {}): string {
    for (const id of ids) this.checkId(id);
    if (ids.length === 0) return '';
    return this.hf.decode([...ids], {
      skip_special_tokens: skipSpecialTokens,
      clean_up_tokenization_spaces: false,
    });
  }

  /**
   * A decoder for streaming generation: feed ids one at a time, get text that never splits a
   * UTF-8 character (an emoji spread over several byte tokens appears only once complete). The
   * concatenated output equals `decode(allIds)`.
   *
   * @example
   * const stream = tokenizer.createStreamDecoder();
   * for await (const id of generate(...)) send(stream.push(id));
   * send(stream.flush());
   */
  createStreamDecoder({ skipSpecialTokens = false }: DecodeOptions = {}): StreamDecoder {
    return this.byteLevel
      ? this.byteStreamDecoder(skipSpecialTokens)
      : this.offsetStreamDecoder(skipSpecialTokens);
  }

  /** Async-iterator form of `createStreamDecoder`: yields non-empty text pieces. */
  async *decodeStream(ids: AsyncIterable<number>, options: DecodeOptions = {}): AsyncGenerator<string> {
    const stream = this.createStreamDecoder(options);
    for await (const id of ids) {
      const text = stream.push(id);
      if (text) yield text;
    }
    const rest = stream.flush();
    if (rest) yield rest;
  }

  /**
   * Renders messages with this tokenizer's chat template (see the file header) into ids and the
   * assistant mask. With `addGenerationPrompt`, ends with the assistant header so the model's
   * next tokens are its answer.
   *
   * @example
   * const { ids, assistantMask } = tokenizer.applyChatTemplate([
   *   { role: 'user', content: 'Use the words dog and park.' },
   *   { role: 'assistant', content: 'The dog ran.' },
   *   { role: 'user', content: 'Feedback: You are missing the following concepts: park. Please try again.' },
   * ], { addGenerationPrompt: true });
   */
  applyChatTemplate(
    messages: readonly ChatMessage[],
    { addGenerationPrompt = false }: { addGenerationPrompt?: boolean } = {},
  ): ChatEncoding {
    const template = this.chatTemplate;
    if (template === null) {
      throw new Error(
        'this tokenizer has no chat markers we know (<|user|>/<|assistant|>/<|end|>, Llama 3 <|start_header_id|>, or ChatML <|im_start|>)',
      );
    }
    let parsed = z.array(chatMessageSchema).parse(messages);
    if (this.defaultSystemMessage !== null && parsed.length > 0 && parsed[0]!.role !== 'system')
      parsed = [{ role: 'system', content: this.defaultSystemMessage }, ...parsed];
    const out: ChatEncoding = { ids: [], assistantMask: [], spans: [] };
    const special = (name: string, target = false) => {
      out.ids.push(this.addedId(name)!);
      out.assistantMask.push(target ? 1 : 0);
    };
    const text = (value: string, target = false) => {
      for (const id of this.encodeOrdinary(value)) {
        out.ids.push(id);
        out.assistantMask.push(target ? 1 : 0);
      }
    };
    if (template !== 'chatml' && this.bosId !== null) special(this.idToToken(this.bosId)!);
    for (const { role, content } of parsed) {
      const start = out.ids.length;
      const target = role === 'assistant';
      if (template === 'corgi') {
        special(`<|${role}|>`);
        text(content, target);
        special('<|end|>', target);
      } else if (template === 'llama3') {
        special('<|start_header_id|>');
        text(role);
        special('<|end_header_id|>');
        text('\n\n');
        text(content.trim(), target);
        special('<|eot_id|>', target);
      } else {
        special('<|im_start|>');
        text(`${role}\n`);
        text(content, target);
        special('<|im_end|>', target);
        text('\n');
      }
      out.spans.push({ role, start, end: out.ids.length });
    }
    if (addGenerationPrompt) {
      if (template === 'corgi') {
        special('<|assistant|>');
      } else if (template === 'llama3') {
        special('<|start_header_id|>');
        text('assistant');
        special('<|end_header_id|>');
        text('\n\n');
      } else {
        special('<|im_start|>');
        text('assistant\n');
      }
    }
    return out;
  }

  /** Text → ids with no special-token parsing: normalizer, pre-tokenizer and model only. */
  private encodeOrdinary(text: string): number[] {
    if (text.length === 0) return [];
    const ids: number[] = [];
    if (this.gpt2PreTokenizer) {
      // Fast path, same result: the library's ByteLevel pre-tokenizer is this regex plus a byte
      // mapping, and it re-encodes every piece (2.7 s for Brown's 6 MB); we cache ids per raw piece.
      for (const match of text.matchAll(GPT2_PRETOKENIZE_PATTERN)) this.pushPieceIds(match[0], ids);
      return ids;
    }
    const { normalizer, pre_tokenizer: preTokenizer } = this.hf;
    const normalized = normalizer ? normalizer(text) : text;
    const pieces = preTokenizer ? preTokenizer(normalized, { section_index: 0 }) : [normalized];
    for (const piece of pieces) this.pushPieceIds(piece, ids, true);
    return ids;
  }

  /**
   * Appends the ids of one pre-token. `preTokenized`: the piece is already in the model's
   * alphabet; otherwise it is raw text for the byte-level fast path.
   */
  private pushPieceIds(piece: string, ids: number[], preTokenized = false): void {
    const cached = this.pieceCache.get(piece);
    if (cached !== undefined) {
      for (const id of cached) ids.push(id);
      return;
    }
    const model = this.hf.model!;
    const modelInput = preTokenized ? piece : bytesToTokenString(this.utf8.encode(piece));
    const tokens: string[] = model([modelInput]);
    const pieceIds = tokens.map((token) => {
      const id = model.tokens_to_ids.get(token) ?? model.unk_token_id;
      if (id === undefined)
        throw new Error(`token ${JSON.stringify(token)} has no id and the model has no unk token`);
      return id;
    });
    // Bounded so a long-running server cannot grow it without limit.
    if (this.pieceCache.size >= PIECE_CACHE_SIZE) this.pieceCache.clear();
    this.pieceCache.set(piece, pieceIds);
    for (const id of pieceIds) ids.push(id);
  }

  /** The id of an added (special or not) token, or undefined. */
  private addedId(content: string): number | undefined {
    return this.addedByContent.get(content);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.hf.id_to_token(id) === undefined) {
      throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    }
  }

  private detectChatTemplate(): ChatTemplateName | null {
    const has = (...names: string[]) => names.every((name) => this.addedId(name) !== undefined);
    if (has('<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>')) return 'llama3';
    if (has('<|system|>', '<|user|>', '<|assistant|>', '<|end|>')) return 'corgi';
    if (has('<|im_start|>', '<|im_end|>')) return 'chatml';
    return null;
  }

  /**
   * Byte-level stream decoding: each token is a run of bytes; a streaming UTF-8 decoder holds an
   * incomplete character until its last byte arrives. Added tokens print as their content and
   * first flush pending bytes, as the library's decoder does.
   */
  private byteStreamDecoder(skipSpecialTokens: boolean): StreamDecoder {
    // ignoreBOM: a leading U+FEFF is text like any other, and the library keeps it too.
    let utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
    const cache = new Map<number, Uint8Array>();
    const bytesOf = (id: number): Uint8Array => {
      let bytes = cache.get(id);
      if (!bytes) {
        const token = this.hf.id_to_token(id)!;
        const out: number[] = [];
        for (const char of token) {
          const byte = UNICODE_TO_BYTE.get(char);
          if (byte !== undefined) out.push(byte);
          else out.push(...new TextEncoder().encode(char)); // not byte-level: keep the character
        }
        bytes = Uint8Array.from(out);
        cache.set(id, bytes);
      }
      return bytes;
    };
    const flush = () => {
      const rest = utf8.decode();
      utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
      return rest;
    };
    return {
      push: (id) => {
        this.checkId(id);
        const added = this.addedById.get(id);
        if (added) {
          const pending = flush();
          return pending + (skipSpecialTokens && added.special ? '' : added.content);
        }
        return utf8.decode(bytesOf(id), { stream: true });
      },
      flush,
    };
  }

  /**
   * Stream decoding for any decoder (SentencePiece-style Metaspace/ByteFallback): re-decode a
   * short window and emit the growth once it does not end in U+FFFD (text-generation-inference's
   * prefix/read offsets), so context-dependent decoders (leading-space stripping) stay right.
   */
  private offsetStreamDecoder(skipSpecialTokens: boolean): StreamDecoder {
    const ids: number[] = [];
    let prefixOffset = 0;
    let readOffset = 0;
    const options = { skipSpecialTokens };
    return {
      push: (id) => {
        this.checkId(id);
        ids.push(id);
        const prefixText = this.decode(ids.slice(prefixOffset, readOffset), options);
        const newText = this.decode(ids.slice(prefixOffset), options);
        if (newText.length > prefixText.length && !newText.endsWith('\uFFFD')) {
          prefixOffset = readOffset;
          readOffset = ids.length;
          return newText.slice(prefixText.length);
        }
        return '';
      },
      flush: () => {
        const prefixText = this.decode(ids.slice(prefixOffset, readOffset), options);
        const newText = this.decode(ids.slice(prefixOffset), options);
        prefixOffset = readOffset = ids.length;
        return newText.slice(prefixText.length);
      },
    };
  }
}
