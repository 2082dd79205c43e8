/**
 * A byte-level BPE trainer that writes a Hugging Face `tokenizer.json`.
 *
 * Follows GPT-2 (Radford et al. 2019; openai/gpt-2 `encoder.py`) and the Hugging Face
 * `tokenizers` BpeTrainer:
 * 1) text is split into pre-tokens by GPT-2's regex (the exact pattern `@huggingface/tokenizers`
 *    and the Rust crate use for a `ByteLevel` pre-tokenizer with `use_regex: true`);
 * 2) each pre-token becomes its UTF-8 bytes, and the 256 bytes are the base vocabulary, so every
 *    string encodes with no unknown token and decodes back exactly;
 * 3) the most frequent adjacent pair inside a pre-token is merged into a new token, repeatedly,
 *    until the vocabulary is full. Ties go to the pair with the smaller (left id, right id), so
 *    the same text always gives the same merges.
 *
 * Training is incremental: pair counts live in a map, a lazy max-heap finds the best pair, and a
 * per-pair list of the words containing it means each merge only touches those words.
 */

/**
 * GPT-2's pre-tokenization regex, character for character as `@huggingface/tokenizers` applies
 * it for a ByteLevel pre-tokenizer. Training must split text exactly as encoding will.
 */
export const GPT2_PRETOKENIZE_PATTERN =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's byte ↔ unicode table: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100 onward, so every byte is a visible character (space is `Ġ`, newline `Ċ`).
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCharCode(printable.includes(b) ? b : next++);
  }
  return table;
})();

/** The inverse of `BYTE_TO_UNICODE`. */
export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(
  BYTE_TO_UNICODE.map((char, byte) => [char, byte]),
);

/**
 * The special tokens of CORGI's own models, at ids 0–6 in this order.
 * - `<|begin_of_text|>` (BOS) starts every sequence, `<|end_of_text|>` (EOS) ends a pretraining
 *   document, `<|pad|>` pads batches (never attended to, never a target).
 * - Chat turns are `<|system|>…<|end|>`, `<|user|>…<|end|>`, `<|assistant|>…<|end|>`; the model
 *   ends its turn by emitting `<|end|>`. See `Tokenizer.applyChatTemplate`.
 */
export const CORGI_SPECIAL_TOKENS = [
  '<|begin_of_text|>',
  '<|end_of_text|>',
  '<|pad|>',
  '<|system|>',
  '<|user|>',
  '<|assistant|>',
  '<|end|>',
] as const;

/** An entry of `tokenizer.json`'s `added_tokens`. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The parts of a Hugging Face `tokenizer.json` this project writes and reads. */
export interface TokenizerJson {
  version: string;
  truncation: unknown;
  padding: unknown;
  added_tokens: AddedTokenJson[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: {
    type: string;
    vocab: Record<string, number>;
    merges: string[] | [string, string][];
    [key: string]: unknown;
  };
}

export interface TrainBpeOptions {
  /** Training texts (documents); each is pre-tokenized on its own. */
  texts: Iterable<string>;
  /** Final vocabulary size, counting special tokens and the 256 byte tokens. */
  vocabSize: number;
  /**
   * Special tokens, given ids 0..n-1 and marked `special` in `added_tokens`.
   * @default CORGI_SPECIAL_TOKENS
   */
  specialTokens?: readonly string[];
  /**
   * The BOS token the `TemplateProcessing` post-processor prepends when a Hugging Face caller
   * encodes with `add_special_tokens` (our `Tokenizer` never relies on it). `null`: no post-processor.
   * @default '<|begin_of_text|>' when it is among the special tokens, else null
   */
  bosToken?: string | null;
  /**
   * A pair must occur at least this often to be merged; training stops early when none does.
   * @default 2
   */
  minFrequency?: number;
}

/** Pair key for two token ids; ids stay below 2^21, so the key is an exact integer. */
const PAIR_BASE = 2 ** 21;

/**
 * A max-heap of (count, pair key), best = highest count then smallest key. Entries go stale when a
 * pair's count changes; `popBest` skips any entry whose count no longer matches.
 */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private better(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.better(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): [count: number, key: number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let best = i;
        if (left < this.counts.length && this.better(left, best)) best = left;
        if (right < this.counts.length && this.better(right, best)) best = right;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/** Counts the pre-tokens of every text: pre-token string → occurrences. */
export function countPretokens(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const match of text.matchAll(GPT2_PRETOKENIZE_PATTERN)) {
      const piece = match[0];
      counts.set(piece, (counts.get(piece) ?? 0) + 1);
    }
  }
  return counts;
}

/** The byte-level string of some bytes, as tokens appear in `vocab` and `merges`. */
export function bytesToTokenString(bytes: Uint8Array | readonly number[]): string {
  let out = '';
  for (const byte of bytes) out += BYTE_TO_UNICODE[byte];
  return out;
}

/**
 * Trains byte-level BPE merges and returns a Hugging Face `tokenizer.json` object: model `BPE`
 * with `vocab` and `merges` (`"left right"` strings), `ByteLevel` pre-tokenizer and decoder,
 * specials in `added_tokens`. Ids: specials 0..n-1, then the 256 bytes in byte order, then merges
 * in the order learned.
 *
 * @example
 * const json = trainBpe({ texts: ['the cat sat on the mat'], vocabSize: 300 });
 * new Tokenizer(json).encode('the cat'); // via src/model/tokenizer.ts
 */
export function trainBpe({
  texts,
  vocabSize,
  specialTokens = CORGI_SPECIAL_TOKENS,
  bosToken,
  minFrequency = 2,
}: TrainBpeOptions): TokenizerJson {
  const baseSize = specialTokens.length + 256;
  if (!Number.isInteger(vocabSize) || vocabSize < baseSize || vocabSize >= PAIR_BASE) {
    throw new RangeError(
      `vocabSize must be an integer in [${baseSize}, ${PAIR_BASE}) (${specialTokens.length} special + 256 byte tokens), got ${vocabSize}`,
    );
  }
  if (new Set(specialTokens).size !== specialTokens.length) {
    throw new Error(`specialTokens has duplicates: ${specialTokens.join(', ')}`);
  }

  // 1) Unique pre-tokens as arrays of byte token ids, with their counts.
  const byteOffset = specialTokens.length;
  const encoder = new TextEncoder();
  const words: Int32Array[] = [];
  const wordCounts: number[] = [];
  for (const [piece, count] of countPretokens(texts)) {
    const bytes = encoder.encode(piece);
    if (bytes.length < 2) continue; // nothing to merge inside a single byte
    const ids = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) ids[i] = bytes[i] + byteOffset;
    words.push(ids);
    wordCounts.push(count);
  }

  // Token id → its bytes, for naming merged tokens.
  const tokenBytes: number[][] = [];
  for (let b = 0; b < 256; b++) tokenBytes[byteOffset + b] = [b];
  const tokenString = (id: number) => bytesToTokenString(tokenBytes[id]);
  const forbidden = new Set<string>(specialTokens); // a merge must never spell a special token

  // 2) Initial pair counts and, per pair, the words that contain it.
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  for (let w = 0; w < words.length; w++) {
    const word = words[w];
    const count = wordCounts[w];
    for (let i = 0; i + 1 < word.length; i++) {
      const key = word[i] * PAIR_BASE + word[i + 1];
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      const list = pairWords.get(key);
      if (list === undefined) pairWords.set(key, [w]);
      else if (list[list.length - 1] !== w) list.push(w);
    }
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);

  // 3) Merge the best pair until the vocabulary is full.
  const merges: string[] = [];
  const lastVisit = new Int32Array(words.length).fill(-1); // dedupes a word listed twice for a pair
  let nextId = baseSize;
  while (nextId < vocabSize && heap.size > 0) {
    const [count, key] = heap.pop();
    if (pairCounts.get(key) !== count) continue; // stale entry; the current count was pushed too
    if (count < minFrequency) break;
    const left = Math.floor(key / PAIR_BASE);
    const right = key - left * PAIR_BASE;
    const mergedBytes = [...tokenBytes[left], ...tokenBytes[right]];
    if (forbidden.has(bytesToTokenString(mergedBytes))) {
      pairCounts.delete(key);
      continue;
    }
    const newId = nextId++;
    tokenBytes[newId] = mergedBytes;
    merges.push(`${tokenString(left)} ${tokenString(right)}`);

    // Rewrite every word containing the pair, collecting the change in each pair's count.
    const delta = new Map<number, number>();
    const addDelta = (k: number, d: number) => delta.set(k, (delta.get(k) ?? 0) + d);
    for (const w of pairWords.get(key) ?? []) {
      if (lastVisit[w] === newId) continue;
      lastVisit[w] = newId;
      const word = words[w];
      const wordCount = wordCounts[w];
      const merged: number[] = [];
      let found = false;
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === left && word[i + 1] === right) {
          merged.push(newId);
          found = true;
          i++;
        } else {
          merged.push(word[i]);
        }
      }
      if (!found) continue; // the list is lazy: an earlier merge may have consumed the pair here
      for (let i = 0; i + 1 < word.length; i++) addDelta(word[i] * PAIR_BASE + word[i + 1], -wordCount);
      for (let i = 0; i + 1 < merged.length; i++) {
        const k = merged[i] * PAIR_BASE + merged[i + 1];
        addDelta(k, wordCount);
        if (merged[i] === newId || merged[i + 1] === newId) {
          const list = pairWords.get(k);
          if (list === undefined) pairWords.set(k, [w]);
          else if (list[list.length - 1] !== w) list.push(w);
        }
      }
      words[w] = Int32Array.from(merged);
    }
    pairWords.delete(key);
    for (const [k, d] of delta) {
      if (d === 0) continue;
      const updated = (pairCounts.get(k) ?? 0) + d;
      if (updated > 0) {
        pairCounts.set(k, updated);
        heap.push(updated, k);
      } else {
        pairCounts.delete(k);
        pairWords.delete(k);
      }
    }
  }

  // 4) Serialize as tokenizer.json.
  const vocab: Record<string, number> = {};
  specialTokens.forEach((token, id) => {
    vocab[token] = id;
  });
  for (let id = byteOffset; id < nextId; id++) vocab[tokenString(id)] = id;
  const bos =
    bosToken === undefined
      ? specialTokens.includes('<|begin_of_text|>')
        ? '<|begin_of_text|>'
        : null
      : bosToken;
  return byteLevelBpeJson({
    addedTokens: specialTokens.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    preTokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    postProcessor: bos === null ? null : bosTemplateProcessor(bos, vocab[bos]),
    vocab,
    merges,
  });
}

/**
 * A byte-level BPE `tokenizer.json` (GPT-2's decoder, no normalizer): what our trainer writes and what
 * a GGUF's tokenizer metadata rebuilds into.
 */
export function byteLevelBpeJson({
  addedTokens,
  preTokenizer,
  postProcessor = null,
  vocab,
  merges,
}: {
  addedTokens: AddedTokenJson[];
  preTokenizer: unknown;
  postProcessor?: unknown;
  vocab: Record<string, number>;
  merges: string[];
}): TokenizerJson {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
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
      merges,
    },
  };
}

/** Llama-style post-processor: `add_special_tokens` prepends BOS (for Hugging Face callers). */
function bosTemplateProcessor(bos: string, id: number | undefined) {
  if (id === undefined) throw new Error(`bosToken ${bos} is not among the special tokens`);
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: bos, type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: bos, type_id: 1 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { [bos]: { id: bos, ids: [id], tokens: [bos] } },
  };
}
