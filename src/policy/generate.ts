/**
 * Generation for the local model: token sampling, stop conditions, streamed text, and the
 * continuous-batching scheduler that lets many sessions share one batched forward per step.
 *
 * How a step works (`GenerationScheduler`, after vLLM and text-generation-inference):
 * 1) rows whose consumer left (abort, `return()`) or that finished are dropped from the batch and
 *    its KV cache (`KVCache.keepRows`);
 * 2) decode: every active row feeds its last sampled token, one forward [B, 1] for all of them,
 *    and each row samples its next token from its own logits with its own seeded PRNG (so every
 *    active sequence advances exactly one token per step: fair by construction);
 * 3) prefill: waiting requests are left-padded into a joining group and prefilled in chunks, one
 *    chunk per step, so a long prompt never stalls the others' streams; when the last chunk is done
 *    each samples its first token and the group's cache is appended to the batch's
 *    (`KVCache.append`). A group starts with the oldest waiting request (nobody starves) and takes
 *    the others of similar length (padding is compute spent on nothing), up to a few steps' worth
 *    of tokens (a huge group would hold every member's first token until the last chunk).
 *    The chunk is `prefillTokens` tokens, or with `stepMilliseconds` whatever the measured costs
 *    say fits beside the decode forward: under load most of a session's tokens are prompt tokens
 *    (each retry re-reads the conversation), and a fixed small chunk let the queue grow while the
 *    decode batch sat nearly empty;
 * 4) the loop yields to the event loop (`setImmediate`) before the next step.
 *
 * A row's output depends only on its own prompt, options and seed: its companions in the batch
 * change nothing but float summation order in the matmuls (a sampled token could flip only if
 * the uniform draw fell within ~1e-7 of a cumulative-probability boundary).
 *
 * Log-probabilities. Each chunk's `logprobs[i]` is log q(tokenIds[i]), where q is exactly the
 * distribution the token was drawn from: softmax(logits / temperature), restricted to the top-k
 * and then the top-p (nucleus) set, renormalized; computed in float64 from the float32 logits.
 * That is the behaviour policy an importance ratio π_θ(a)/q(a) needs. With temperature 1, topK 0,
 * topP 1 (the setting for on-policy RL rollouts) q is the model's own distribution, and
 * `sequence-logprobs.ts` recomputes the same numbers (up to float rounding). With temperature 0
 * (greedy) q is a point mass on the argmax, so every logprob is 0.
 *
 * Output. `tokenIds`/`logprobs` hold every sampled token, including a final stop token (so a
 * trainer can credit the decision to stop) and the tokens that spelled a stop string. `text` is
 * their decoding (special tokens skipped) with the stop token, the stop string and anything after
 * it removed; the chunks' texts concatenate to the final text, their ids to the final ids. A
 * chunk's text may be '' while the decoder holds an incomplete UTF-8 character or a possible
 * start of a stop string.
 */
import { randomBytes } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { KVCache, type LlamaModel } from './model.ts';
import { TextStream } from './text-stream.ts';
import type { StreamDecoder } from './tokenizer.ts';
import type { FinishReason, GenerateOptions, Generation, GenerationChunk } from './types.ts';

// ---------------------------------------------------------------------------------------------
// Seeded randomness.

/**
 * A uniform [0, 1) generator (sfc32, seeded through splitmix32) with 53-bit doubles: the same
 * seed gives the same stream on every platform. Seeds are integers (the low 53 bits count).
 */
export function createRng(seed: number): () => number {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  let s = Math.trunc(seed) >>> 0;
  const high = Math.floor(Math.trunc(Math.abs(seed)) / 2 ** 32) >>> 0;
  const splitmix = () => {
    s = (s + 0x9e3779b9) | 0;
    let z = s ^ Math.imul(high, 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const next = () => {
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next(); // sfc32's recommended warm-up
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

/** A random seed for requests that set none. */
export function randomSeed(): number {
  return randomBytes(4).readUInt32LE(0);
}

// ---------------------------------------------------------------------------------------------
// Sampling one token.

export interface TokenSampling {
  /** 0 means greedy. */
  temperature: number;
  /** 0 disables. */
  topK: number;
  /** 1 disables. */
  topP: number;
}

export interface SampledToken {
  token: number;
  /** log q(token) under the distribution it was drawn from (see the file comment). */
  logprob: number;
}

/**
 * Two reusable float64 buffers (sampling is synchronous, so one pair serves every row): allocating
 * two vocabulary-sized arrays per row and step showed up in the batch-32 timings.
 */
const scratchBuffers = [new Float64Array(0), new Float64Array(0)];
function scratch(which: 0 | 1, length: number): Float64Array {
  if (scratchBuffers[which]!.length < length) scratchBuffers[which] = new Float64Array(length);
  return scratchBuffers[which]!.subarray(0, length);
}

/**
 * Draws a token from one row of logits: temperature, then top-k, then top-p on the renormalized
 * top-k set (the order of Hugging Face's logits warpers and vLLM). Uses one `random()` draw unless
 * greedy. Ties (equal logits) are broken by the lower id.
 */
export function sampleToken(
  logits: ArrayLike<number>,
  { temperature, topK, topP }: TokenSampling,
  random: () => number,
): SampledToken {
  const V = logits.length;
  let best = 0;
  for (let i = 1; i < V; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature <= 0) return { token: best, logprob: 0 };

  // Unnormalized probabilities w = exp((x − max) / T) in float64: the largest is exactly 1.
  const max = logits[best]!;
  const w = scratch(0, V);
  for (let i = 0; i < V; i++) w[i] = Math.exp((logits[i]! - max) / temperature);

  const kept = truncatedSupport(w, topK, topP); // null: every id
  let total = 0;
  if (kept) for (const id of kept) total += w[id]!;
  else for (let i = 0; i < V; i++) total += w[i]!;
  // Inverse CDF in id order (any fixed order samples the same distribution).
  const u = random() * total;
  let token = kept ? kept[kept.length - 1]! : V - 1; // fallback for rounding at the very end
  let cumulative = 0;
  const count = kept ? kept.length : V;
  for (let n = 0; n < count; n++) {
    const id = kept ? kept[n]! : n;
    cumulative += w[id]!;
    if (cumulative > u) {
      token = id;
      break;
    }
  }
  // log w directly, not Math.log(w[token]), which underflows to −∞ for very unlikely tokens.
  return { token, logprob: (logits[token]! - max) / temperature - Math.log(total) };
}

/**
 * The ids that top-k and then top-p keep (ascending), or null when neither truncates. `w` are
 * the unnormalized tempered probabilities. Ties at the cut go to the lower ids.
 *
 * Top-k keeps the k largest; top-p then keeps the smallest most-probable prefix of those whose mass
 * reaches p of theirs. Both cuts are found by `descendingCut` in expected O(V): sorting the
 * vocabulary for every row (even natively) cost as much as the batch-32 forward.
 */
function truncatedSupport(w: Float64Array, topK: number, topP: number): Int32Array | null {
  const V = w.length;
  const k = topK > 0 && topK < V ? topK : V;
  if (k === V && topP >= 1) return null;
  const values = scratch(1, V);
  values.set(w);
  let cut = k < V ? descendingCut(values, k, Number.POSITIVE_INFINITY) : { threshold: 0, count: V };
  if (topP < 1) {
    // The values top-k took are now values[0, count) (see descendingCut).
    const candidates = values.subarray(0, cut.count);
    let total = 0;
    for (let i = 0; i < candidates.length; i++) total += candidates[i]!;
    cut = descendingCut(candidates, cut.count, topP * total);
  }
  const { threshold, count } = cut;
  let above = 0; // ids strictly above the threshold are all kept
  for (let i = 0; i < V; i++) if (w[i]! > threshold) above++;
  let ties = count - above; // then ids equal to it, lowest first
  const ids = new Int32Array(count);
  let n = 0;
  for (let i = 0; i < V; i++) {
    if (w[i]! > threshold || (w[i] === threshold && ties-- > 0)) ids[n++] = i;
  }
  return ids;
}

/**
 * Where a walk over `values` from the largest down stops: after `maxCount` values, or as soon as
 * the mass walked reaches `targetMass`. → the last value taken and how many were taken.
 *
 * Quickselect with a three-way partition (values > pivot | = pivot | < pivot), recursing only into
 * the part where the walk stops, so expected O(n). Reorders `values` such that the values taken
 * end up in values[0, count).
 */
function descendingCut(
  values: Float64Array,
  maxCount: number,
  targetMass: number,
): { threshold: number; count: number } {
  let lo = 0;
  let hi = values.length;
  let taken = 0;
  let mass = 0;
  for (;;) {
    const a = values[lo]!;
    const b = values[(lo + hi) >> 1]!;
    const c = values[hi - 1]!;
    const pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c)); // median of three
    // Partition [lo, hi): [lo, lt) > pivot, [lt, gt) = pivot, [gt, hi) < pivot.
    let lt = lo;
    let gt = hi;
    let i = lo;
    let massGreater = 0;
    while (i < gt) {
      const v = values[i]!;
      if (v > pivot) {
        values[i] = values[lt]!;
        values[lt++] = v;
        i++;
        massGreater += v;
      } else if (v < pivot) {
        values[i] = values[--gt]!;
        values[gt] = v;
      } else {
        i++;
      }
    }
    if (taken + (lt - lo) >= maxCount || mass + massGreater >= targetMass) {
      hi = lt; // the walk stops among the larger values
      continue;
    }
    taken += lt - lo;
    mass += massGreater;
    for (let j = lt; j < gt; j++) {
      taken++;
      mass += pivot;
      if (taken >= maxCount || mass >= targetMass) return { threshold: pivot, count: taken };
    }
    if (gt === hi) return { threshold: pivot, count: taken }; // nothing smaller is left: all taken
    lo = gt;
  }
}

/**
 * The ids `sampleToken` may draw for these logits and settings, ascending (every id when nothing
 * truncates; only the argmax when greedy). For tests and inspection.
 */
export function samplingSupport(
  logits: ArrayLike<number>,
  { temperature, topK, topP }: TokenSampling,
): number[] {
  const V = logits.length;
  let best = 0;
  for (let i = 1; i < V; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature <= 0) return [best];
  const w = Float64Array.from({ length: V }, (_, i) => Math.exp((logits[i]! - logits[best]!) / temperature));
  const kept = truncatedSupport(w, topK, topP);
  return kept ? Array.from(kept) : Array.from({ length: V }, (_, i) => i);
}

// Text as tokens arrive: text-stream.ts (shared with the llama.cpp engine).
export { TextStream } from './text-stream.ts';

// ---------------------------------------------------------------------------------------------
// The scheduler.

export interface SchedulerOptions {
  /** Sequences decoded together at most; later requests wait for a free row. @default 64 */
  maxBatch?: number;
  /**
   * Prompt tokens per prefill forward, summed over the rows joining together (pads included);
   * longer prompts are prefilled in chunks, one per step, between decode steps. With
   * `stepMilliseconds` this is the chunk before any step has been timed. @default 256
   */
  prefillTokens?: number;
  /**
   * Aim each step (decode forward + prefill chunk) at this many milliseconds: the chunk is sized
   * from the measured decode time and cost per prefill token, so a nearly idle decode batch lets
   * prompts in fast and a full one keeps its token gap. Serving sets it. Unset, chunks are a fixed
   * `prefillTokens`, so a seeded run (the trainer, `corgi eval`) does the same arithmetic every time.
   */
  stepMilliseconds?: number;
}

/** Joining-group and chunk bounds (tokens) when chunks are sized by time. */
const MIN_TIMED_CHUNK = 32;
const MAX_TIMED_CHUNK = 4096;
/** A joining group holds at most this many chunks' worth of padded prompt tokens. */
const GROUP_CHUNKS = 4;
/**
 * Rows join one group only if the longest prompt exceeds the shortest by at most this fraction of
 * it, or by at most GROUP_PAD_SLACK tokens (a few pads on short prompts cost next to nothing).
 */
const GROUP_LENGTH_RATIO = 1.25;
const GROUP_PAD_SLACK = 16;

/**
 * A running mean that forgets (exponential, weight `alpha` on the newest sample): step costs drift
 * with the batch's context length and with whatever else the machine runs.
 */
class RecentMean {
  value: number | null = null;
  constructor(private readonly alpha = 0.3) {}
  add(sample: number): void {
    this.value = this.value === null ? sample : this.value + this.alpha * (sample - this.value);
  }
}

export interface SequenceOptions extends GenerateOptions {
  /** Token ids that end the generation (kept in `tokenIds`, not in the text). @default [] */
  stopIds?: readonly number[];
  /**
   * Turns tokens into text (one per sequence: it holds state). Without it every text is '' and
   * `stop` strings cannot be used.
   */
  decoder?: StreamDecoder;
  /** Sample only ids below this (a tokenizer smaller than the model's vocabulary). @default vocab_size */
  vocabLimit?: number;
}

type RowEvent =
  | { type: 'chunk'; chunk: GenerationChunk }
  | { type: 'end'; generation: Generation }
  | { type: 'error'; error: unknown };

/** One sequence in the scheduler. */
interface Row {
  prompt: number[];
  sampling: TokenSampling;
  maxTokens: number;
  stopIds: Set<number>;
  vocabLimit: number;
  random: () => number;
  text: TextStream | null;
  tokenIds: number[];
  logprobs: number[];
  /** The engine is done with it (finished, failed). */
  finished: boolean;
  /** The consumer is gone (abort or `return()`): drop at the next step boundary. */
  left: boolean;
  events: RowEvent[];
  wake: (() => void) | null;
}

/** Requests prefilled together, in chunks, before they join the batch. */
interface JoiningGroup {
  rows: Row[];
  ids: number[][]; // left-padded to a common length
  padding: number[];
  cache: KVCache;
  done: number; // columns prefilled so far
}

const DEFAULTS = { temperature: 0.7, topK: 0, topP: 1, maxTokens: 128 } as const;

/**
 * Runs every sequence submitted to it in one batch (see the file comment). One scheduler per
 * model; `generate` may be called from any number of concurrent sessions.
 */
export class GenerationScheduler {
  private readonly maxBatch: number;
  private readonly prefillTokens: number;
  private readonly stepMilliseconds: number | null;
  /** Milliseconds of the last decode forwards, and per padded prompt token of prefill chunks. */
  private readonly decodeMs = new RecentMean();
  private readonly prefillMsPerToken = new RecentMean();
  private waiting: Row[] = [];
  private active: Row[] = [];
  private readonly cache = new KVCache();
  private joining: JoiningGroup | null = null;
  private running = false;
  private closed = false;

  constructor(
    readonly model: LlamaModel,
    { maxBatch = 64, prefillTokens = 256, stepMilliseconds }: SchedulerOptions = {},
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1)
      throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
    if (!Number.isInteger(prefillTokens) || prefillTokens < 1)
      throw new RangeError(`prefillTokens must be a positive integer, got ${prefillTokens}`);
    if (stepMilliseconds !== undefined && !(stepMilliseconds > 0 && Number.isFinite(stepMilliseconds)))
      throw new RangeError(`stepMilliseconds must be a positive number, got ${stepMilliseconds}`);
    this.maxBatch = maxBatch;
    this.prefillTokens = prefillTokens;
    this.stepMilliseconds = stepMilliseconds ?? null;
  }

  /**
   * Prompt tokens (pads included) to prefill this step: fixed, or what the time target leaves
   * after the decode forward at the measured cost per token.
   */
  private chunkTokens(): number {
    const perToken = this.prefillMsPerToken.value;
    if (this.stepMilliseconds === null || perToken === null) return this.prefillTokens;
    const decode = this.active.length > 0 ? (this.decodeMs.value ?? 0) : 0;
    const fits = Math.floor((this.stepMilliseconds - decode) / perToken);
    return Math.min(MAX_TIMED_CHUNK, Math.max(MIN_TIMED_CHUNK, fits));
  }

  /**
   * Takes the next joining group off `waiting`: the oldest request, then (in arrival order) those
   * whose prompt length is similar to every member's (GROUP_LENGTH_RATIO), while the group's padded
   * tokens stay within GROUP_CHUNKS chunks and the batch has rows free.
   */
  private takeGroup(chunk: number): Row[] {
    const free = this.maxBatch - this.active.length;
    const first = this.waiting[0]!;
    const group = [first];
    let shortest = first.prompt.length;
    let longest = first.prompt.length;
    const tokenCap = Math.max(GROUP_CHUNKS * chunk, longest);
    for (const row of this.waiting.slice(1)) {
      if (group.length >= free) break;
      const low = Math.min(shortest, row.prompt.length);
      const high = Math.max(longest, row.prompt.length);
      const similar = high <= GROUP_LENGTH_RATIO * low || high - low <= GROUP_PAD_SLACK;
      if (!similar || high * (group.length + 1) > tokenCap) continue;
      group.push(row);
      shortest = low;
      longest = high;
    }
    const taken = new Set(group);
    this.waiting = this.waiting.filter((row) => !taken.has(row));
    return group;
  }

  /** Sequences decoding now, and waiting or prefilling to join. */
  get load(): { active: number; waiting: number } {
    return {
      active: this.active.length,
      waiting: this.waiting.length + (this.joining?.rows.length ?? 0),
    };
  }

  /**
   * Streams the continuation of `promptIds` chunk by chunk (one chunk per token); the return
   * value is the whole generation. Aborting `signal` ends the stream at once with finishReason
   * "cancelled" and what was streamed so far.
   */
  async *generate(
    promptIds: readonly number[],
    options: SequenceOptions = {},
  ): AsyncGenerator<GenerationChunk, Generation> {
    if (this.closed) throw new Error('GenerationScheduler: closed');
    const row = this.makeRow(promptIds, options);
    const { signal } = options;
    if (signal?.aborted || row.maxTokens === 0) {
      return { text: '', tokenIds: [], logprobs: [], finishReason: signal?.aborted ? 'cancelled' : 'length' };
    }
    const onAbort = () => {
      if (row.finished || row.left) return;
      row.left = true;
      this.deliver(row, { type: 'end', generation: this.result(row, 'cancelled') });
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    this.waiting.push(row);
    this.kick();
    try {
      for (;;) {
        while (row.events.length === 0) {
          await new Promise<void>((resolve) => {
            row.wake = resolve;
          });
        }
        const event = row.events.shift()!;
        if (event.type === 'chunk') yield event.chunk;
        else if (event.type === 'end') return event.generation;
        else throw event.error;
      }
    } finally {
      row.left = true; // the engine drops the row at its next step boundary
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Stops the scheduler: running sequences fail, caches are freed. The model is not disposed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.fail(
      [...this.active, ...(this.joining?.rows ?? []), ...this.waiting],
      new Error('GenerationScheduler: closed'),
    );
    this.waiting = [];
  }

  private makeRow(promptIds: readonly number[], options: SequenceOptions): Row {
    const c = this.model.config;
    const temperature = options.temperature ?? DEFAULTS.temperature;
    const topK = options.topK ?? DEFAULTS.topK;
    const topP = options.topP ?? DEFAULTS.topP;
    const maxTokens = options.maxTokens ?? DEFAULTS.maxTokens;
    const stop = options.stop ?? [];
    const vocabLimit = options.vocabLimit ?? c.vocab_size;
    if (!(temperature >= 0)) throw new RangeError(`temperature must be ≥ 0, got ${temperature}`);
    if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`topK must be an integer ≥ 0, got ${topK}`);
    if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
    if (!Number.isInteger(maxTokens) || maxTokens < 0)
      throw new RangeError(`maxTokens must be an integer ≥ 0, got ${maxTokens}`);
    if (stop.length > 0 && !options.decoder)
      throw new Error('stop strings need a decoder (SequenceOptions.decoder) to see the text');
    if (!Number.isInteger(vocabLimit) || vocabLimit < 1 || vocabLimit > c.vocab_size)
      throw new RangeError(`vocabLimit must be in 1..${c.vocab_size}, got ${vocabLimit}`);
    if (promptIds.length === 0) throw new Error('cannot generate from an empty prompt');
    if (promptIds.length >= c.max_position_embeddings) {
      throw new Error(
        `prompt of ${promptIds.length} tokens leaves no room to generate: max_position_embeddings is ${c.max_position_embeddings}`,
      );
    }
    for (const id of promptIds) {
      if (!Number.isInteger(id) || id < 0 || id >= c.vocab_size)
        throw new RangeError(`prompt token ${id} is outside the vocabulary (size ${c.vocab_size})`);
    }
    return {
      prompt: [...promptIds],
      sampling: { temperature, topK, topP },
      maxTokens,
      stopIds: new Set(options.stopIds ?? []),
      vocabLimit,
      random: createRng(options.seed ?? randomSeed()),
      text: options.decoder ? new TextStream(options.decoder, stop) : null,
      tokenIds: [],
      logprobs: [],
      finished: false,
      left: false,
      events: [],
      wake: null,
    };
  }

  private result(row: Row, finishReason: FinishReason): Generation {
    return {
      text: row.text?.emitted ?? '',
      tokenIds: [...row.tokenIds],
      logprobs: [...row.logprobs],
      finishReason,
    };
  }

  private deliver(row: Row, event: RowEvent): void {
    row.events.push(event);
    const wake = row.wake;
    row.wake = null;
    wake?.();
  }

  /**
   * Starts the loop on the next turn of the event loop, so requests arriving in the same turn
   * (a static batch, sessions started together) are prefilled together.
   */
  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (!this.closed && this.hasWork()) {
        this.step();
        await new Promise<void>((resolve) => setImmediate(resolve)); // let I/O and consumers run
      }
    } finally {
      this.running = false;
    }
    // A request that arrived after the last check but before `running` was cleared.
    if (!this.closed && this.hasWork()) this.kick();
  }

  private hasWork(): boolean {
    return this.active.length > 0 || this.joining !== null || this.waiting.some((row) => !row.left);
  }

  /** One step: drop, decode, prefill (see the file comment). Errors fail the rows involved. */
  private step(): void {
    // 1) Rows that finished or whose consumer left give up their place in the batch.
    const keep: number[] = [];
    this.active.forEach((row, i) => {
      if (!row.finished && !row.left) keep.push(i);
    });
    if (keep.length < this.active.length) {
      this.active = keep.map((i) => this.active[i]!);
      this.cache.keepRows(keep);
    }
    this.waiting = this.waiting.filter((row) => !row.left);

    // 2) Decode: every active row advances one token.
    if (this.active.length > 0) {
      const rows = this.active;
      try {
        const last = rows.map((row) => [row.tokenIds[row.tokenIds.length - 1]!]);
        const started = performance.now();
        const logits = this.forward(last, this.cache, true, undefined);
        this.decodeMs.add(performance.now() - started);
        rows.forEach((row, b) => this.accept(row, logits, b));
      } catch (error) {
        this.fail(rows, error);
        this.active = [];
        this.cache.dispose();
      }
    }

    // 3) Prefill: waiting requests join as left-padded groups, a chunk per step.
    const chunkTokens = this.chunkTokens();
    if (!this.joining && this.waiting.length > 0 && this.active.length < this.maxBatch) {
      const rows = this.takeGroup(chunkTokens);
      const length = Math.max(...rows.map((row) => row.prompt.length));
      const padding = rows.map((row) => length - row.prompt.length);
      // Pad id 0: any id works, pad columns are masked.
      const ids = rows.map((row, b) => [...new Array<number>(padding[b]!).fill(0), ...row.prompt]);
      this.joining = { rows, ids, padding, cache: new KVCache(), done: 0 };
    }
    const group = this.joining;
    if (group) {
      try {
        const length = group.ids[0]!.length;
        const columns = Math.min(
          length - group.done,
          Math.max(1, Math.floor(chunkTokens / group.rows.length)),
        );
        const chunk = group.ids.map((ids) => ids.slice(group.done, group.done + columns));
        group.done += columns;
        const complete = group.done === length;
        const started = performance.now();
        const logits = this.forward(chunk, group.cache, complete, group.padding);
        this.prefillMsPerToken.add((performance.now() - started) / (columns * group.rows.length));
        if (complete) {
          group.rows.forEach((row, b) => this.accept(row, logits, b));
          this.cache.append(group.cache);
          this.active.push(...group.rows);
          this.joining = null;
        }
      } catch (error) {
        this.fail(group.rows, error);
        group.cache.dispose();
        this.joining = null;
      }
    }
  }

  /** One forward over `ids` [B, t] continuing `cache`; the last position's logits when wanted. */
  private forward(
    ids: number[][],
    cache: KVCache,
    wantLogits: boolean,
    padding: readonly number[] | undefined,
  ): Float32Array | null {
    const input = tf.tensor2d(ids, [ids.length, ids[0]!.length], 'int32');
    try {
      const logits = this.model.forwardWithCache(input, cache, { lastOnly: true, padding });
      // Read outside any tidy: returning a large TypedArray from tf.tidy walks every element.
      const data = wantLogits ? (logits.dataSync() as Float32Array) : null;
      logits.dispose();
      return data;
    } finally {
      input.dispose();
    }
  }

  /** Samples row b's next token from `logits` [B, V] and streams it; decides whether the row ends. */
  private accept(row: Row, logits: Float32Array | null, b: number): void {
    if (row.finished || row.left || !logits) return;
    const V = this.model.config.vocab_size;
    const { token, logprob } = sampleToken(
      logits.subarray(b * V, b * V + row.vocabLimit),
      row.sampling,
      row.random,
    );
    row.tokenIds.push(token);
    row.logprobs.push(logprob);
    let text = '';
    let reason: FinishReason | null = null;
    if (row.stopIds.has(token)) {
      reason = 'stop';
    } else if (row.text) {
      const piece = row.text.push(token);
      text = piece.text;
      if (piece.stop) reason = 'stop';
    }
    const contextFull = row.prompt.length + row.tokenIds.length >= this.model.config.max_position_embeddings;
    if (!reason && (row.tokenIds.length >= row.maxTokens || contextFull)) reason = 'length';
    if (reason && row.text) {
      // Release what the stream still holds (a stop-string prefix that never completed, bytes).
      const rest = row.text.finish();
      text += rest.text;
      if (rest.stop) reason = 'stop';
    }
    this.deliver(row, { type: 'chunk', chunk: { text, tokenIds: [token], logprobs: [logprob] } });
    if (reason) {
      row.finished = true;
      this.deliver(row, { type: 'end', generation: this.result(row, reason) });
    }
  }

  private fail(rows: readonly Row[], error: unknown): void {
    for (const row of rows) {
      if (row.finished) continue;
      row.finished = true;
      if (!row.left) this.deliver(row, { type: 'error', error });
    }
    if (this.closed) {
      this.cache.dispose();
      this.joining?.cache.dispose();
      this.joining = null;
      this.active = [];
    }
  }
}

/**
 * Generates continuations of several prompts as one batch (prompts of any lengths: they are
 * left-padded and prefilled together) and returns each whole generation. `options` applies to
 * every prompt, or give one per prompt (a shared seed gives every prompt the same random stream).
 */
export async function generateBatch(
  model: LlamaModel,
  prompts: readonly (readonly number[])[],
  options: SequenceOptions | readonly SequenceOptions[] = {},
  schedulerOptions: SchedulerOptions = {},
): Promise<Generation[]> {
  const perPrompt = Array.isArray(options) ? options : prompts.map(() => options as SequenceOptions);
  if (perPrompt.length !== prompts.length)
    throw new Error(`${perPrompt.length} option sets for ${prompts.length} prompts`);
  const scheduler = new GenerationScheduler(model, {
    maxBatch: Math.max(1, prompts.length),
    ...schedulerOptions,
  });
  try {
    return await Promise.all(
      prompts.map(async (prompt, i) => {
        const stream = scheduler.generate(prompt, perPrompt[i]);
        for (;;) {
          const next = await stream.next();
          if (next.done) return next.value;
        }
      }),
    );
  } finally {
    scheduler.close();
  }
}
