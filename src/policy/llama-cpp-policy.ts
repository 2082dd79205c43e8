/**
 * `LlamaCppPolicy`: a GGUF model served by llama.cpp (node-llama-cpp) behind the `ChatPolicy`
 * interface, for serving, evaluation and rollouts.
 *
 * - Batching: one llama.cpp context with N sequences. Each `generate` takes a free sequence (or
 *   waits for one, first come first served), and node-llama-cpp decodes every sequence that is
 *   generating in one batch per step (`guardLogitsReorder` keeps each sequence's sampling on its
 *   own logits when llama.cpp hands a batch's outputs back permuted).
 * - Tokens: the prompt is rendered and tokenized by our TypeScript `Tokenizer` (the same ids the
 *   trainer scores) and fed to llama.cpp as ids; the GGUF's own tokenizer only checks the vocabulary
 *   size. Without a tokenizer.json beside the file, the tokenizer is rebuilt from the GGUF's metadata
 *   (`tokenizerJsonFromGguf`).
 * - Sampling: llama.cpp's sampler chain is top-k → top-p → temperature → draw, so top-k and top-p
 *   pick the candidates from the untempered distribution, and the draw is from the tempered
 *   distribution over those candidates (Hugging Face's warpers temper first; with topP 1 the two
 *   agree). Every option is passed explicitly: node-llama-cpp's own defaults are top-k 40 / top-p 0.95.
 *   A seed fixes the draw.
 * - Log-probabilities: `logprobs[i]` is log q(tokenIds[i]) for q the distribution the token was
 *   drawn from (llama.cpp's `confidence`: the selected candidate's probability after the chain);
 *   greedy decoding is a point mass, so 0. With temperature 1, top-k 0 and top-p 1, q is the
 *   model's own distribution, which sequence-logprobs.ts recomputes in TensorFlow.js.
 * - Output: `tokenIds`/`logprobs` include a final stop token (so a trainer can credit the decision
 *   to stop) and the tokens that spelled a stop string; `text` leaves out special tokens, the stop
 *   string and what follows, and never ends in a broken UTF-8 character; the chunks' texts
 *   concatenate to the final text. `promptTokens` counts the fitted prompt decoded from. Aborting
 *   ends the stream at once with "cancelled".
 * - Spare context (`spareContext`, on in `corgi serve`): a second context of the same shape is made
 *   in the background while one policy uses the base, and the next policy on that base (a promoted
 *   adapter) starts on it, its adapters applied in milliseconds, instead of allocating a KV cache
 *   (sequences × context × 23 KB for SmolLM2: seconds on a busy machine). See docs/engine.md.
 */

import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
  TokenBias,
} from 'node-llama-cpp';
import { randomSeed } from '../common/random.ts';
import { CheckpointError } from '../model/checkpoint.ts';
import { tokenizerJsonFromGguf } from '../model/gguf-tokenizer.ts';
import { Tokenizer } from '../model/tokenizer.ts';
import { fitConversation } from './fit-conversation.ts';
import { checkGgufFile } from './gguf-file.ts';
import { guardLogitsReorder } from './llama-logits-guard.ts';
import { acquireModel, defaultThreads, type ModelLease } from './llama-runtime.ts';
import { resolveSampling, SAMPLING_DEFAULTS } from './sampling.ts';
import { SequencePool, SlotWaitAborted } from './sequence-pool.ts';
import { TextStream } from './text-stream.ts';
import type {
  ChatMessage,
  ChatPolicy,
  FinishReason,
  GenerateOptions,
  Generation,
  GenerationChunk,
  SamplingOptions,
} from './types.ts';

/** A LoRA adapter GGUF and the scale its delta is added with. */
export interface LlamaCppAdapter {
  path: string;
  /** @default 1 */
  scale?: number;
}

export interface LlamaCppPolicySpec {
  /** The base model's GGUF file. */
  modelPath: string;
  /** LoRA adapters (llama.cpp's adapter GGUF) applied in this policy's context. @default [] */
  adapters?: readonly LlamaCppAdapter[];
  /** Recorded with every attempt. */
  version: string;
  /** Sessions generating at once; more wait for a free sequence. @default 8 */
  sequences?: number;
  /** Tokens each sequence holds, prompt and answer. @default min(2048, the model's training context) */
  contextSize?: number;
  /** CPU threads for decoding. @default `defaultThreads()`: `configureRuntime`'s llamaThreads, else available parallelism */
  threads?: number;
  /** Our tokenizer for the model. @default tokenizer.json beside the GGUF, else rebuilt from its metadata */
  tokenizer?: Tokenizer;
  /**
   * Keep a second context of this shape ready on the base (see the file comment): a hot swap to an
   * adapter then skips the context's allocation, for one more KV cache of memory. @default false
   */
  spareContext?: boolean;
}

/** @default sequences when unset */
export const DEFAULT_SEQUENCES = 8;
const DEFAULT_CONTEXT = 2048;

const ABORTED = Symbol('aborted');

/** Resolves after `signal` aborts (never without one); `stop` removes the listener. */
function whenAborted(signal: AbortSignal | undefined): { promise: Promise<typeof ABORTED>; stop(): void } {
  if (!signal) return { promise: new Promise(() => {}), stop: () => {} };
  if (signal.aborted) return { promise: Promise.resolve(ABORTED), stop: () => {} };
  let listener = () => {};
  const promise = new Promise<typeof ABORTED>((resolve) => {
    listener = () => resolve(ABORTED);
    signal.addEventListener('abort', listener, { once: true });
  });
  return { promise, stop: () => signal.removeEventListener('abort', listener) };
}

export class LlamaCppPolicy implements ChatPolicy {
  readonly version: string;
  /** Tokens each sequence holds (prompt and answer). */
  readonly contextSize: number;
  /** The base model's GGUF (absolute path) and the adapters applied in this policy's context. */
  readonly modelPath: string;
  readonly adapters: readonly { path: string; scale: number }[];
  private readonly sequences: readonly LlamaContextSequence[];
  private readonly pool: SequencePool<LlamaContextSequence>;
  private readonly stopIds: ReadonlySet<number>;
  /** Forbids the GGUF's ids past our tokenizer's (embedding rows padded beyond the vocabulary). */
  private readonly padBias: TokenBias | undefined;
  private active = 0;
  private disposed = false;

  private constructor(
    readonly tokenizer: Tokenizer,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly lease: ModelLease,
    version: string,
    modelPath: string,
    adapters: readonly { filePath: string; scale: number }[],
    vocabulary: number,
    /** Whether the context was the base's spare (made ahead), rather than created for this policy. */
    readonly contextFromSpare: boolean,
    /** The spare slot this policy keeps filled, when `spareContext` is on. */
    private readonly spareKey: string | null,
  ) {
    this.version = version;
    this.modelPath = modelPath;
    this.adapters = adapters.map(({ filePath, scale }) => ({ path: filePath, scale }));
    this.contextSize = context.contextSize;
    this.sequences = Array.from({ length: context.totalSequences }, () => context.getSequence());
    this.pool = new SequencePool(this.sequences);
    this.stopIds = new Set(tokenizer.stopIds);
    if (vocabulary > tokenizer.vocabSize) {
      const padding = Array.from(
        { length: vocabulary - tokenizer.vocabSize },
        (_, i) => tokenizer.vocabSize + i,
      );
      this.padBias = TokenBias.for(model).set(padding as Token[], 'never');
    }
  }

  /**
   * Loads (or reuses) the base model and makes a context for this policy: a LoRA adapter means a
   * new context on the already loaded base.
   * @throws CheckpointError for a missing, corrupt or truncated GGUF, or a tokenizer that does not fit
   */
  static async load(spec: LlamaCppPolicySpec): Promise<LlamaCppPolicy> {
    const modelPath = resolve(spec.modelPath);
    const sequences = spec.sequences ?? DEFAULT_SEQUENCES;
    if (!Number.isInteger(sequences) || sequences < 1)
      throw new RangeError(`sequences must be a positive integer, got ${sequences}`);
    if (spec.contextSize !== undefined && !(Number.isInteger(spec.contextSize) && spec.contextSize >= 16))
      throw new RangeError(`contextSize must be an integer ≥ 16, got ${spec.contextSize}`);
    if (spec.threads !== undefined && !(Number.isInteger(spec.threads) && spec.threads >= 1))
      throw new RangeError(`threads must be a positive integer, got ${spec.threads}`);
    const base = await inspectBaseModel(modelPath, spec.tokenizer);
    const adapters = [];
    for (const adapter of spec.adapters ?? []) {
      const path = resolve(adapter.path);
      const { metadata } = await checkGgufFile(path);
      if (metadata['general.type'] !== 'adapter' || metadata['adapter.type'] !== 'lora') {
        throw new CheckpointError(
          path,
          `is not a LoRA adapter GGUF (general.type ${JSON.stringify(metadata['general.type'])}, adapter.type ${JSON.stringify(metadata['adapter.type'])})`,
        );
      }
      const scale = adapter.scale ?? 1;
      if (!Number.isFinite(scale))
        throw new RangeError(`adapter ${path}: scale must be a finite number, got ${scale}`);
      adapters.push({ filePath: path, scale });
    }
    const { tokenizer, vocabulary } = base;

    const lease = await acquireModel(modelPath);
    try {
      const shape: ContextShape = {
        sequences,
        contextSize: spec.contextSize ?? Math.min(DEFAULT_CONTEXT, lease.model.trainContextSize),
        threads: spec.threads ?? defaultThreads(),
      };
      const key = spec.spareContext ? spareKey(modelPath, shape) : null;
      const spare = key ? await takeSpare(key, adapters) : null;
      const context = spare ?? (await createContext(lease.model, shape, adapters));
      const policy = new LlamaCppPolicy(
        tokenizer,
        lease.model,
        context,
        lease,
        spec.version,
        modelPath,
        adapters,
        vocabulary,
        spare !== null,
        key,
      );
      if (key) joinSpareSlot(key, modelPath, shape, policy);
      return policy;
    } catch (error) {
      await lease.release();
      throw error;
    }
  }

  /** Sequences generating now, callers waiting for one, and free sequences. */
  get load(): { busy: number; waiting: number; free: number } {
    return this.pool.load;
  }

  /**
   * Streams the assistant's reply to `messages`, one chunk per sampled token (see the file comment
   * for the log-probabilities, stop handling and what the text contains).
   */
  async *generate(
    messages: readonly ChatMessage[],
    options: GenerateOptions = {},
  ): AsyncGenerator<GenerationChunk, Generation> {
    if (this.disposed) throw new Error(`policy ${this.version} has been disposed`);
    const prompt = this.encodePrompt(messages, resolveSampling(options));
    const generation = yield* this.generateFromIds(prompt, options);
    return { ...generation, promptTokens: prompt.length };
  }

  /**
   * `generate` from prompt ids already rendered (`encodePrompt`'s output, or a benchmark's): the
   * same stream, stops, log-probabilities and cancellation.
   */
  async *generateFromIds(
    prompt: readonly number[],
    options: GenerateOptions = {},
  ): AsyncGenerator<GenerationChunk, Generation> {
    if (this.disposed) throw new Error(`policy ${this.version} has been disposed`);
    const sampling = resolveSampling(options);
    if (prompt.length === 0) throw new Error('cannot generate from an empty prompt');
    if (prompt.length >= this.contextSize - 1) {
      throw new Error(
        `prompt of ${prompt.length} tokens leaves no room to generate: each sequence holds ${this.contextSize} tokens`,
      );
    }
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize)
        throw new RangeError(
          `prompt token ${id} is outside the vocabulary (size ${this.tokenizer.vocabSize})`,
        );
    }
    const { signal } = options;
    const empty = (finishReason: FinishReason): Generation => ({
      text: '',
      tokenIds: [],
      logprobs: [],
      finishReason,
    });
    if (signal?.aborted) return empty('cancelled');
    if (sampling.maxTokens === 0) return empty('length');

    let sequence: LlamaContextSequence;
    try {
      sequence = await this.pool.acquire(signal);
    } catch (error) {
      if (SlotWaitAborted.isInstance(error) && signal?.aborted) return empty('cancelled');
      throw error;
    }
    this.active++;
    try {
      return yield* this.decode(sequence, [...prompt], sampling, signal);
    } finally {
      this.active--;
      this.pool.release(sequence);
    }
  }

  /** One attempt on a sequence of its own: prompt in, tokens out until a stop, the limit or abort. */
  private async *decode(
    sequence: LlamaContextSequence,
    prompt: number[],
    sampling: ReturnType<typeof resolveSampling>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<GenerationChunk, Generation> {
    const input = await this.reuseCachedPrefix(sequence, prompt);
    const greedy = sampling.temperature <= 0;
    const tokens = sequence.evaluateWithMetadata(
      input as Token[],
      { confidence: !greedy },
      {
        temperature: sampling.temperature,
        topK: sampling.topK,
        topP: sampling.topP,
        minP: 0,
        seed: sampling.seed ?? randomSeed(),
        yieldEogToken: true,
        ...(this.padBias ? { tokenBias: this.padBias } : {}),
      },
    );
    const text = new TextStream(
      this.tokenizer.createStreamDecoder({ skipSpecialTokens: true }),
      sampling.stop,
    );
    const tokenIds: number[] = [];
    const logprobs: number[] = [];
    const stopped = whenAborted(signal);
    type Step = IteratorResult<{ token: Token; confidence?: number }, void>;
    let pending: Promise<Step> | null = null;
    let finishReason: FinishReason;
    try {
      for (;;) {
        const step: Promise<Step> = tokens.next();
        pending = step;
        const next = await Promise.race([step, stopped.promise]);
        if (next === ABORTED) {
          finishReason = 'cancelled';
          break;
        }
        pending = null;
        if (next.done) {
          finishReason = 'stop'; // node-llama-cpp ended the evaluation itself
          break;
        }
        const token = next.value.token as number;
        const { confidence } = next.value;
        const logprob = greedy ? 0 : Math.log(confidence!);
        tokenIds.push(token);
        logprobs.push(logprob);
        let piece = '';
        let reason: FinishReason | null = null;
        if (this.stopIds.has(token) || this.model.isEogToken(token as Token)) {
          reason = 'stop';
        } else {
          const pushed = text.push(token);
          piece = pushed.text;
          if (pushed.stop) reason = 'stop';
        }
        // The sequence must keep a free cell for the token a next step would evaluate.
        const contextFull = prompt.length + tokenIds.length >= this.contextSize - 1;
        if (!reason && (tokenIds.length >= sampling.maxTokens || contextFull)) reason = 'length';
        if (reason) {
          const rest = text.finish();
          piece += rest.text;
          if (rest.stop) reason = 'stop';
        }
        yield { text: piece, tokenIds: [token], logprobs: [logprob] };
        if (reason) {
          finishReason = reason;
          break;
        }
      }
    } finally {
      stopped.stop();
      // A step still running (abort, or the consumer left) must end before the sequence is reused.
      await (pending as Promise<Step> | null)?.catch(() => undefined);
      await tokens.return(undefined);
    }
    // Cancelled: the text is what was streamed; held-back bytes and stop-string prefixes stay out.
    return { text: text.emitted, tokenIds, logprobs, finishReason };
  }

  /**
   * Keeps the part of the sequence's cached state that equals the prompt's start (a retry re-reads
   * the conversation, and every prompt starts with the same system turn) and returns the ids left
   * to evaluate — at least one, whose logits give the first token.
   */
  private async reuseCachedPrefix(sequence: LlamaContextSequence, prompt: number[]): Promise<number[]> {
    const { firstDifferentIndex } = sequence.compareContextTokens(prompt as Token[]);
    const keep = Math.min(firstDifferentIndex, prompt.length - 1);
    if (keep === 0) await sequence.clearHistory();
    else if (sequence.nextTokenIndex > keep)
      await sequence.eraseContextTokenRanges([{ start: keep, end: sequence.nextTokenIndex }]);
    return prompt.slice(keep);
  }

  /**
   * The prompt ids `generate` decodes from: the chat template over `messages`, fitted to a
   * sequence's window by `fitConversation` so that at least `min(maxTokens, context / 4)` positions
   * stay free to generate. The trainer scores attempts on exactly these ids.
   */
  encodePrompt(
    messages: readonly ChatMessage[],
    { maxTokens = SAMPLING_DEFAULTS.maxTokens }: SamplingOptions = {},
  ): number[] {
    const encode = (kept: readonly ChatMessage[]) =>
      this.tokenizer.applyChatTemplate(kept, { addGenerationPrompt: true }).ids;
    return fitConversation(messages, encode, this.promptLimit(maxTokens));
  }

  /** The prompt's tokens, and `encodePrompt`'s budget: the window less room for the answer. */
  measurePrompt(
    messages: readonly ChatMessage[],
    { maxTokens = SAMPLING_DEFAULTS.maxTokens }: SamplingOptions = {},
  ): { tokens: number; limit: number } {
    const tokens = this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }).ids.length;
    return { tokens, limit: this.promptLimit(maxTokens) };
  }

  private promptLimit(maxTokens: number): number {
    const reserve = Math.max(1, Math.min(maxTokens, Math.floor(this.contextSize / 4)));
    return this.contextSize - 1 - reserve;
  }

  /**
   * Frees the context (attempts still generating on it fail; `PolicyRegistry` disposes only once
   * none is left) and lets go of the model, which is unloaded when no other policy uses it. With
   * `spareContext`, a context no attempt is generating on becomes the base's spare instead when the
   * base has none and another policy still uses it (a swap's old context, drained).
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.pool.close();
    const own = { context: this.context, lease: this.lease };
    if (this.spareKey && this.active === 0 && recycleAsSpare(this.spareKey, this, own, this.sequences))
      return;
    await this.context.dispose();
    if (this.spareKey) await leaveSpareSlot(this.spareKey, this);
    await this.lease.release();
  }

  /** Attempts generating now (for tests and metrics). */
  get generating(): number {
    return this.active;
  }
}

/** What a spare must match to serve a policy: the context's options besides its adapters. */
interface ContextShape {
  sequences: number;
  contextSize: number;
  threads: number;
}

/** Every context this engine decodes on, serving or spare, samples each sequence from its own logits. */
async function createContext(
  model: LlamaModel,
  shape: ContextShape,
  adapters: readonly { filePath: string; scale: number }[],
): Promise<LlamaContext> {
  const context = await model.createContext({
    ...shape,
    ...(adapters.length > 0 ? { lora: { adapters: [...adapters] } } : {}),
    failedCreationRemedy: false,
  });
  guardLogitsReorder(context);
  return context;
}

/** A context made ahead of a swap, and the lease that keeps its model loaded until it is taken. */
interface Spare {
  context: LlamaContext;
  lease: ModelLease;
}

/**
 * The policies with `spareContext` on one base and shape, and the spare for the next one: made
 * (in the background) only while exactly one of them is in use, so a spare is always a context no
 * attempt has run on, and a promotion that lands while an old context still drains creates its
 * own context instead of adding a third KV cache.
 */
interface SpareSlot {
  modelPath: string;
  shape: ContextShape;
  users: Set<LlamaCppPolicy>;
  /** Resolves to null when making it failed (memory): the next load creates its context. */
  spare: Promise<Spare | null> | null;
}
const spareSlots = new Map<string, SpareSlot>();

function spareKey(modelPath: string, { sequences, contextSize, threads }: ContextShape): string {
  return JSON.stringify([modelPath, sequences, contextSize, threads]);
}

type LoraSetter = (adapters: readonly { filePath: string; scale: number }[]) => Promise<void>;

/**
 * node-llama-cpp's internal `LlamaContext._setLoras` (3.21: what `createContext({lora})` calls on a
 * new context), or null where a version lacks it: a spare then serves only adapter-free loads.
 */
function loraSetter(context: LlamaContext): LoraSetter | null {
  const method = (context as unknown as { _setLoras?: unknown })._setLoras;
  return typeof method === 'function' ? (method.bind(context) as LoraSetter) : null;
}

/** For test use only: a test swaps `loraSetter` to act as a node-llama-cpp without `_setLoras`. */
export const _internal = { loraSetter };

/** The slot's spare with `adapters` applied, or null (none, it failed, or adapters cannot be applied). */
async function takeSpare(
  key: string,
  adapters: readonly { filePath: string; scale: number }[],
): Promise<LlamaContext | null> {
  const slot = spareSlots.get(key);
  if (!slot?.spare) return null;
  const pending = slot.spare;
  slot.spare = null;
  const spare = await pending;
  if (!spare) return null;
  const setLoras = _internal.loraSetter(spare.context);
  if (adapters.length > 0 && !setLoras) {
    if (spareSlots.get(key) === slot && !slot.spare) slot.spare = Promise.resolve(spare);
    else await disposeSpare(spare);
    return null;
  }
  try {
    // Replaces the adapters a recycled context carries (none on a new one).
    await setLoras?.(adapters);
  } catch {
    // A fresh context with the same adapters reports what is wrong with them.
    await disposeSpare(spare);
    return null;
  }
  await spare.lease.release(); // the taking policy holds the model
  return spare.context;
}

async function disposeSpare(spare: Spare): Promise<void> {
  await spare.context.dispose();
  await spare.lease.release();
}

function joinSpareSlot(key: string, modelPath: string, shape: ContextShape, policy: LlamaCppPolicy): void {
  let slot = spareSlots.get(key);
  if (!slot) {
    slot = { modelPath, shape, users: new Set(), spare: null };
    spareSlots.set(key, slot);
  }
  slot.users.add(policy);
  fillSpareSlot(slot);
}

/** Starts making a spare when the slot has none and exactly one policy uses its shape. */
function fillSpareSlot(slot: SpareSlot): void {
  if (slot.spare || slot.users.size !== 1) return;
  slot.spare = (async () => {
    let lease: ModelLease | undefined;
    try {
      lease = await acquireModel(slot.modelPath);
      return { context: await createContext(lease.model, slot.shape, []), lease };
    } catch {
      await lease?.release();
      return null;
    }
  })();
}

/**
 * Makes a drained policy's context the slot's spare (its sequences, and so their KV cells, cleared;
 * its adapters replaced when it is taken) when the slot has none and another policy still uses the
 * base: a swap's old context then serves the next swap, with no context to create. Not where
 * adapters cannot be replaced (`loraSetter`).
 */
function recycleAsSpare(
  key: string,
  policy: LlamaCppPolicy,
  spare: Spare,
  sequences: readonly LlamaContextSequence[],
): boolean {
  const slot = spareSlots.get(key);
  if (!slot?.users.has(policy) || slot.users.size < 2 || slot.spare || !_internal.loraSetter(spare.context))
    return false;
  slot.users.delete(policy);
  slot.spare = Promise.all(sequences.map((sequence) => sequence.dispose())).then(
    () => spare,
    async () => {
      await disposeSpare(spare);
      return null;
    },
  );
  return true;
}

/** A policy's context is gone: refill the slot for the one left, or free the spare when none is. */
async function leaveSpareSlot(key: string, policy: LlamaCppPolicy): Promise<void> {
  const slot = spareSlots.get(key);
  if (!slot?.users.delete(policy)) return;
  if (slot.users.size > 0) {
    fillSpareSlot(slot);
    return;
  }
  spareSlots.delete(key);
  const spare = await slot.spare;
  if (spare) await disposeSpare(spare);
}

/** A checked base model file and its tokenizer, reused while the file is unchanged. */
interface InspectedBase {
  stamp: string;
  tokenizer: Tokenizer;
  /** Token ids the model can emit (the GGUF's vocabulary, at least the tokenizer's). */
  vocabulary: number;
}
const inspectedBases = new Map<string, InspectedBase>();

/**
 * Checks the base GGUF and builds its tokenizer, or reuses both while the file's size and mtime
 * are unchanged: a hot swap to an adapter on the same base then costs the adapter's check and a
 * new context (parsing SmolLM2's 3 MB header and rebuilding its 49k-token tokenizer took most of a
 * second on a busy machine).
 */
async function inspectBaseModel(modelPath: string, given: Tokenizer | undefined): Promise<InspectedBase> {
  const info = await stat(modelPath).catch((error) => {
    throw new CheckpointError(modelPath, `cannot open (${(error as Error).message})`, { cause: error });
  });
  const stamp = `${info.size}:${info.mtimeMs}`;
  const cached = inspectedBases.get(modelPath);
  if (!given && cached?.stamp === stamp) return cached;
  const { metadata } = await checkGgufFile(modelPath);
  const tokenizer = given ?? tokenizerForGguf(modelPath, metadata);
  const vocabulary = (metadata['tokenizer.ggml.tokens'] as unknown[] | undefined)?.length;
  if (vocabulary !== undefined && tokenizer.vocabSize > vocabulary) {
    throw new CheckpointError(
      modelPath,
      `the tokenizer has ${tokenizer.vocabSize} tokens but the GGUF's vocabulary has ${vocabulary}`,
    );
  }
  const inspected = { stamp, tokenizer, vocabulary: vocabulary ?? tokenizer.vocabSize };
  if (!given) inspectedBases.set(modelPath, inspected);
  return inspected;
}

/**
 * Our tokenizer for a GGUF: `tokenizer.json` (with `tokenizer_config.json`) beside the file when
 * present, else rebuilt from the file's tokenizer metadata.
 * @throws CheckpointError when neither works
 */
export function tokenizerForGguf(modelPath: string, metadata: Record<string, unknown>): Tokenizer {
  const beside = join(dirname(modelPath), 'tokenizer.json');
  try {
    if (existsSync(beside)) return Tokenizer.fromFile(beside);
    const { tokenizerJson, tokenizerConfig } = tokenizerJsonFromGguf(metadata);
    return new Tokenizer(tokenizerJson, tokenizerConfig);
  } catch (error) {
    throw new CheckpointError(modelPath, `no usable tokenizer: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Loads a GGUF model (with LoRA adapters) as a policy; see `LlamaCppPolicySpec`.
 * @example const policy = await loadLlamaCppPolicy({ modelPath: 'SmolLM2-135M-Instruct.Q4_1.gguf', version: 'smollm2' });
 */
export function loadLlamaCppPolicy(spec: LlamaCppPolicySpec): Promise<LlamaCppPolicy> {
  return LlamaCppPolicy.load({ ...spec, version: spec.version || basename(spec.modelPath) });
}

export interface LlamaCppLoaderOptions
  extends Omit<LlamaCppPolicySpec, 'modelPath' | 'adapters' | 'version'> {
  /** The base GGUF for a directory that holds only adapters. */
  baseModelPath?: string;
}

/**
 * A `PolicyLoader` (promotion.ts) for llama.cpp: a version's directory holds a model GGUF, or LoRA
 * adapter GGUFs on `baseModelPath` (or both: adapters on the directory's own model). Which is which
 * comes from each file's `general.type`, read by our GGUF reader.
 * @throws CheckpointError when the directory holds no model and no base is configured, or two models
 */
export function llamaCppPolicyLoader(
  options: LlamaCppLoaderOptions = {},
): (checkpointDir: string, version: string) => Promise<LlamaCppPolicy> {
  return async (checkpointDir, version) => {
    const dir = resolve(checkpointDir);
    const files = (await readdir(dir)).filter((name) => name.endsWith('.gguf')).sort();
    const models: string[] = [];
    const adapters: LlamaCppAdapter[] = [];
    for (const name of files) {
      const path = join(dir, name);
      const { metadata } = await checkGgufFile(path);
      if (metadata['general.type'] === 'adapter') adapters.push({ path });
      else models.push(path);
    }
    if (models.length > 1)
      throw new CheckpointError(
        dir,
        `holds ${models.length} model GGUFs (${models.map((m) => basename(m)).join(', ')}); keep one`,
      );
    const modelPath = models[0] ?? options.baseModelPath;
    if (!modelPath)
      throw new CheckpointError(dir, 'holds no model GGUF, and no base model is configured for its adapters');
    const { baseModelPath: _base, ...spec } = options;
    return LlamaCppPolicy.load({ ...spec, modelPath, adapters, version });
  };
}
