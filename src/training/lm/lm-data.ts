/**
 * Training rows for the language-model phases, as fixed-length token windows:
 *
 * - pretraining: documents as `<|begin_of_text|> text <|end_of_text|>`, concatenated in a seeded
 *   order per epoch and cut into windows of T+1 tokens (x = w[0:T], y = w[1:T+1]; consecutive windows
 *   share one token, as nanoGPT's `get_batch`), then the windows shuffled, so a small batch mixes
 *   documents and genres;
 * - SFT: chat-template encodings packed whole into rows of T+1 tokens (next-fit in a seeded order,
 *   padded with `<|pad|>`), with a mask of the tokens that are training targets (assistant content
 *   and its `<|end|>`). As TRL's `packing=True`, attention is not blocked between the examples of
 *   one row; each starts with its own BOS.
 *
 * Every order comes from `createRng(seed, name, epoch)`, so a position in the data is just
 * `{epoch, row}` (a `DataCursor`): resuming needs nothing else.
 */
import { createRng } from '../../common/random.ts';

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
}

/** Pretraining rows: a seeded document order and a seeded window order per epoch. */
export function pretrainRowSource({
  documents,
  contextLength,
  bos,
  eos,
  seed,
}: PretrainRowsOptions): RowSource {
  const indices = documents.map((_, i) => i);
  return new RowSource((epoch) => {
    const docOrder = createRng(seed, 'pretrain/documents', epoch).shuffle(indices);
    const stream = concatenateDocuments(documents, docOrder, bos, eos);
    const count = Math.max(0, Math.floor((stream.length - 1) / contextLength));
    const windowOrder = createRng(seed, 'pretrain/windows', epoch).shuffle(
      Array.from({ length: count }, (_, k) => k),
    );
    return cutWindows(stream, contextLength, windowOrder);
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
