/**
 * Training rows for the language-model phases, as fixed-length token windows:
 *
 * - pretraining: documents as `<|begin_of_text|> text <|end_of_text|>`, concatenated in a seeded
 *   order per epoch and cut into windows of T+1 tokens (x = w[0:T], y = w[1:T+1]; consecutive windows
 *   share one token, as nanoGPT's `get_batch`), then the windows shuffled, so a small batch mixes
 *   documents and genres. A share of the windows (`repeatShare`) can be rewritten as repeated
 *   passages of their own text (`repeatPassages`), which teaches in-context copying on real text;
 * - SFT: chat-template encodings packed whole into rows of T+1 tokens (next-fit in a seeded order,
 *   padded with `<|pad|>`), with a mask of the tokens that are training targets (assistant content
 *   and its `<|end|>`). As TRL's `packing=True`, attention is not blocked between the examples of
 *   one row; each starts with its own BOS.
 * - copying: synthetic rows `<|begin_of_text|> x <|end_of_text|> x` of uniformly random tokens x,
 *   where the second x can only be predicted by finding each token's earlier occurrence and copying
 *   its successor (the induction-head circuit).
 *
 * Every order comes from `createRng(seed, name, epoch)`, so a position in the data is just
 * `{epoch, row}` (a `DataCursor`): resuming needs nothing else.
 */
import { createRng, type Rng } from '../random.ts';

/** Rows of one epoch: `count` rows of `length` (= T+1) tokens, and a 0/1 target mask for SFT. */
export interface Rows {
  count: number;
  length: number;
  tokens: Int32Array;
  /** Per token: 1 if predicting it is trained on. Absent: every token is. */
  mask?: Uint8Array;
}

/** Where the next batch starts: row `row` of epoch `epoch`. */
export interface DataCursor {
  epoch: number;
  row: number;
}

/** One batch as flat int32/float32 arrays, ready for `tf.tensor2d(…, [rows, cols])`. */
export interface Batch {
  rows: number;
  cols: number;
  inputs: Int32Array;
  targets: Int32Array;
  /** Per target: 1 trained on, 0 ignored (SFT); absent for pretraining. */
  weights?: Float32Array;
  /** Targets that count (Σ weights, or rows·cols). */
  targetTokens: number;
}

/** A source of rows per epoch; rows of the current epoch are built once and kept. */
export class RowSource {
  private cached: { epoch: number; rows: Rows } | null = null;

  constructor(private readonly build: (epoch: number) => Rows) {}

  rowsOf(epoch: number): Rows {
    if (this.cached?.epoch !== epoch) this.cached = { epoch, rows: this.build(epoch) };
    return this.cached.rows;
  }

  /** The next `size` rows from `cursor` (running into the next epoch when one ends) and the cursor after them. */
  takeBatch(cursor: DataCursor, size: number): { batch: Batch; next: DataCursor } {
    let { epoch, row } = cursor;
    let rows = this.rowsOf(epoch);
    if (rows.count === 0) throw new Error('no training rows: the data is shorter than one window');
    const T = rows.length - 1;
    const inputs = new Int32Array(size * T);
    const targets = new Int32Array(size * T);
    const weights = rows.mask ? new Float32Array(size * T) : undefined;
    for (let b = 0; b < size; b++) {
      if (row >= rows.count) {
        epoch += 1;
        row = 0;
        rows = this.rowsOf(epoch);
      }
      const start = row * rows.length;
      inputs.set(rows.tokens.subarray(start, start + T), b * T);
      targets.set(rows.tokens.subarray(start + 1, start + T + 1), b * T);
      if (weights && rows.mask) for (let t = 0; t < T; t++) weights[b * T + t] = rows.mask[start + 1 + t]!;
      row += 1;
    }
    const targetTokens = weights ? weights.reduce((s, w) => s + w, 0) : size * T;
    return { batch: { rows: size, cols: T, inputs, targets, weights, targetTokens }, next: { epoch, row } };
  }
}

/** `[bos] doc [eos]` for each document, concatenated in the given order. */
function concatenateDocuments(
  docs: readonly Int32Array[],
  order: readonly number[],
  bos: number,
  eos: number,
) {
  let total = 0;
  for (const i of order) total += docs[i]!.length + 2;
  const stream = new Int32Array(total);
  let at = 0;
  for (const i of order) {
    stream[at++] = bos;
    stream.set(docs[i]!, at);
    at += docs[i]!.length;
    stream[at++] = eos;
  }
  return stream;
}

/** Windows of T+1 tokens at stride T (a trailing partial window is dropped), in window order `order`. */
function cutWindows(stream: Int32Array, T: number, order?: readonly number[]): Rows {
  const count = Math.max(0, Math.floor((stream.length - 1) / T));
  const tokens = new Int32Array(count * (T + 1));
  for (let k = 0; k < count; k++) {
    const w = order ? order[k]! : k;
    tokens.set(stream.subarray(w * T, w * T + T + 1), k * (T + 1));
  }
  return { count, length: T + 1, tokens };
}

export interface PretrainRowsOptions {
  /** Token ids of each document (without BOS/EOS). */
  documents: readonly Int32Array[];
  /** Window length T (the model's context); rows hold T+1 tokens. */
  contextLength: number;
  bos: number;
  eos: number;
  seed: number;
  /** Share of the windows rewritten as repeated passages (`repeatPassages`), in [0, 1). @default 0 */
  repeatShare?: number;
}

/** Passage lengths (tokens) of a repeated-passage row: short enough for several per window. */
export const REPEAT_PASSAGE_TOKENS = { min: 8, max: 64 } as const;

/**
 * Rewrites one window (`row`, T+1 tokens) in place as repeated passages of its own text:
 * `<bos> p <eos> p <bos> q <eos> q …`, each passage the next 8–64 tokens of the window, the last
 * unit cut at the row's end. Trained on as ordinary text (loss on every token), so the second `p`
 * can only be predicted by finding the first and copying its successors (the induction circuit),
 * on the real-text distribution the model must later copy prompt words from. Brown alone almost
 * never repeats a passage within a window, and the built-in base never learned to copy
 * (docs/experiments/2026-11-24-teaching-the-base-to-copy.md). Uses at most half of the window's text.
 */
export function repeatPassages(row: Int32Array, bos: number, eos: number, rng: Rng): void {
  const material = row.slice();
  let read = 0;
  let write = 0;
  const put = (token: number) => {
    if (write < row.length) row[write++] = token;
  };
  while (write < row.length) {
    const length = rng.int(REPEAT_PASSAGE_TOKENS.min, REPEAT_PASSAGE_TOKENS.max);
    const passage = material.subarray(read, read + length);
    read += length;
    put(bos);
    for (const token of passage) put(token);
    put(eos);
    for (const token of passage) put(token);
  }
}

/** Pretraining rows: a seeded document order and a seeded window order per epoch. */
export function pretrainRowSource({
  documents,
  contextLength,
  bos,
  eos,
  seed,
  repeatShare = 0,
}: PretrainRowsOptions): RowSource {
  if (!(repeatShare >= 0 && repeatShare < 1)) {
    throw new RangeError(`repeatShare must be in [0, 1), got ${repeatShare}`);
  }
  const indices = documents.map((_, i) => i);
  return new RowSource((epoch) => {
    const docOrder = createRng(seed, 'pretrain/documents', epoch).shuffle(indices);
    const stream = concatenateDocuments(documents, docOrder, bos, eos);
    const count = Math.max(0, Math.floor((stream.length - 1) / contextLength));
    const windowOrder = createRng(seed, 'pretrain/windows', epoch).shuffle(
      Array.from({ length: count }, (_, k) => k),
    );
    const rows = cutWindows(stream, contextLength, windowOrder);
    if (repeatShare > 0) {
      // Its own stream: with share 0 the rows are exactly the plain windows (the shipped base's data).
      const rng = createRng(seed, 'pretrain/repeats', epoch);
      for (let k = 0; k < rows.count; k++) {
        if (rng.next() >= repeatShare) continue;
        repeatPassages(rows.tokens.subarray(k * rows.length, (k + 1) * rows.length), bos, eos, rng);
      }
    }
    return rows;
  });
}

/** Evaluation rows: documents in the given order, windows in stream order (no randomness). */
export function evaluationRows(
  documents: readonly Int32Array[],
  contextLength: number,
  bos: number,
  eos: number,
): Rows {
  const stream = concatenateDocuments(
    documents,
    documents.map((_, i) => i),
    bos,
    eos,
  );
  return cutWindows(stream, contextLength);
}

/** A chat encoding: ids and the 0/1 mask of target tokens (`Tokenizer.applyChatTemplate`). */
export interface MaskedSequence {
  ids: readonly number[];
  mask: readonly (0 | 1)[];
}

/**
 * Packs whole sequences into rows of `contextLength + 1` tokens in the given order (next-fit: a
 * sequence that does not fit starts a new row), padding with `pad` (mask 0). A sequence longer than
 * a row is cut to one row.
 */
export function packSequences(
  sequences: readonly MaskedSequence[],
  order: readonly number[],
  contextLength: number,
  pad: number,
): Rows {
  const L = contextLength + 1;
  const rowsOut: { tokens: number[]; mask: number[] }[] = [];
  let current: { tokens: number[]; mask: number[] } = { tokens: [], mask: [] };
  for (const i of order) {
    const seq = sequences[i]!;
    const n = Math.min(seq.ids.length, L);
    if (current.tokens.length + n > L) {
      rowsOut.push(current);
      current = { tokens: [], mask: [] };
    }
    for (let t = 0; t < n; t++) {
      current.tokens.push(seq.ids[t]!);
      current.mask.push(seq.mask[t]!);
    }
  }
  if (current.tokens.length > 0) rowsOut.push(current);
  const tokens = new Int32Array(rowsOut.length * L).fill(pad);
  const mask = new Uint8Array(rowsOut.length * L);
  rowsOut.forEach((row, r) => {
    tokens.set(row.tokens, r * L);
    mask.set(row.mask, r * L);
  });
  return { count: rowsOut.length, length: L, tokens, mask };
}

/** SFT rows: the sequences in a seeded order per epoch, packed. */
export function sftRowSource(
  sequences: readonly MaskedSequence[],
  contextLength: number,
  pad: number,
  seed: number,
): RowSource {
  const indices = sequences.map((_, i) => i);
  return new RowSource((epoch) =>
    packSequences(sequences, createRng(seed, 'sft/examples', epoch).shuffle(indices), contextLength, pad),
  );
}

export interface CopyRowsOptions {
  /** Tokens per half (the longest half with `text`); rows hold 2·length + 2 tokens. */
  length: number;
  /** Random ids are drawn uniformly from [firstId, vocabSize): no special tokens. */
  firstId: number;
  vocabSize: number;
  bos: number;
  eos: number;
  /** Fills the rest of a row whose copy is shorter than `length` (text rows; never a target). */
  pad: number;
  seed: number;
  /** Rows per epoch. @default 1024 */
  rowsPerEpoch?: number;
  /**
   * Copy spans of these token sequences (documents) instead of random ids; see `copyRowSource`.
   * Absent: random ids.
   */
  text?: readonly Int32Array[];
}

/** The shortest span a text copying row repeats. */
export const MIN_TEXT_COPY_TOKENS = 4;

/**
 * Copying rows `bos x₁…x_L eos x₁…x_L`, a fresh seeded draw per epoch, the copy the only targets.
 * Two kinds:
 *
 * - random ids (the default): every row of the same L. Measured (docs/experiments/2026-11-24-teaching-the-base-to-copy.md): this
 *   teaches a positional shortcut — attend L+1 tokens back — rather than looking the token up, so
 *   it does not carry over to copying words from a prompt, and it moves the model far from text
 *   (400 steps on the built-in base raised its held-out SFT loss from 4.69 to 9.28);
 * - `text`: x is a span of a train document, of a seeded length in [4, length] (padded after the
 *   copy), so the offset to look back varies and only content matching (the induction circuit)
 *   predicts the copy. Measured: with the first half as targets too, the circuit forms several
 *   times slower (the text loss dominates), so it is not.
 */
export function copyRowSource({
  length,
  firstId,
  vocabSize,
  bos,
  eos,
  pad,
  seed,
  rowsPerEpoch = 1024,
  text,
}: CopyRowsOptions): RowSource {
  if (!(firstId >= 0 && firstId < vocabSize - 1)) {
    throw new RangeError(`copy rows need ids in [${firstId}, ${vocabSize}); the range is empty`);
  }
  const long = text?.filter((doc) => doc.length >= length);
  if (long && long.length === 0) throw new RangeError(`no text document has ${length} tokens to copy`);
  const L = 2 * length + 2;
  return new RowSource((epoch) => {
    const rng = createRng(seed, 'copy/rows', epoch);
    const tokens = new Int32Array(rowsPerEpoch * L).fill(pad);
    const mask = new Uint8Array(rowsPerEpoch * L);
    for (let r = 0; r < rowsPerEpoch; r++) {
      const at = r * L;
      let n = length;
      tokens[at] = bos;
      if (long) {
        n = rng.int(Math.min(MIN_TEXT_COPY_TOKENS, length), length);
        const doc = rng.pick(long);
        const from = rng.int(0, doc.length - n);
        tokens.set(doc.subarray(from, from + n), at + 1);
      } else {
        for (let t = 0; t < n; t++) tokens[at + 1 + t] = rng.int(firstId, vocabSize - 1);
      }
      tokens[at + 1 + n] = eos;
      tokens.copyWithin(at + 2 + n, at + 1, at + 1 + n);
      // The mask marks the targets: token t is predicted from t-1.
      mask.fill(1, at + 2 + n, at + 2 + 2 * n);
    }
    return { count: rowsPerEpoch, length: L, tokens, mask };
  });
}

/**
 * Greedy accuracy on the copied half of a batch of copying rows: the share of x₂…x_L in the second
 * half (x₁ follows the separator, not an earlier token) whose argmax prediction (`predicted`, one
 * id per target of the batch) is right. Each row's L is where its first `eos` input is.
 */
export function copyAccuracy(predicted: Int32Array, batch: Batch, eos: number): number {
  let right = 0;
  let counted = 0;
  for (let r = 0; r < batch.rows; r++) {
    const row = batch.inputs.subarray(r * batch.cols, (r + 1) * batch.cols);
    const length = row.indexOf(eos) - 1;
    if (length < 1) continue;
    // Row tokens: bos x₁…x_L eos x₁…x_L; target t is token t+1, so x₂…x_L of the copy are t = L+2 … 2L.
    for (let t = length + 2; t <= 2 * length; t++) {
      const i = r * batch.cols + t;
      counted += 1;
      if (predicted[i] === batch.targets[i]) right += 1;
    }
  }
  return counted === 0 ? 0 : right / counted;
}

/** Batches of `size` rows over `rows` in order (the last one may be smaller), for evaluation. */
export function* evaluationBatches(rows: Rows, size: number, limit = Infinity): Generator<Batch> {
  const source = new RowSource(() => rows);
  let produced = 0;
  for (let row = 0; row < rows.count && produced < limit; row += size, produced++) {
    const n = Math.min(size, rows.count - row);
    yield source.takeBatch({ epoch: 0, row }, n).batch;
  }
}

/** `count` rows spread evenly over `rows` (for a cheap periodic evaluation that sees every genre). */
export function spreadRows(rows: Rows, count: number): Rows {
  if (count >= rows.count) return rows;
  const L = rows.length;
  const tokens = new Int32Array(count * L);
  const mask = rows.mask ? new Uint8Array(count * L) : undefined;
  for (let k = 0; k < count; k++) {
    const r = Math.floor((k * rows.count) / count);
    tokens.set(rows.tokens.subarray(r * L, (r + 1) * L), k * L);
    if (mask && rows.mask) mask.set(rows.mask.subarray(r * L, (r + 1) * L), k * L);
  }
  return { count, length: L, tokens, mask };
}
