/**
 * `LocalPolicy`: the TensorFlow.js model behind the `ChatPolicy` interface. Messages go through the
 * tokenizer's chat template, tokens through one `GenerationScheduler` shared by every caller (so
 * concurrent sessions are decoded as one batch, see generate.ts), and text back through the
 * tokenizer's stream decoder, so no broken UTF-8 character ever reaches a client.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { CheckpointError, loadCheckpoint } from './checkpoint.ts';
import { fitConversation } from './fit-conversation.ts';
import { GenerationScheduler, type SchedulerOptions } from './generate.ts';
import { hasLoraAdapter, loadLoraAdapter, mergeLora } from './lora.ts';
import type { LlamaModel } from './model.ts';
import { Tokenizer } from './tokenizer.ts';
import type {
  ChatMessage,
  ChatPolicy,
  GenerateOptions,
  Generation,
  GenerationChunk,
  SamplingOptions,
} from './types.ts';

/**
 * How a serving process schedules generation: each step aimed at about 50 ms (`CORGI_STEP_MS`
 * overrides it), the prompt chunk sized to fill what the decode forward leaves (see
 * `SchedulerOptions.stepMilliseconds`). Measured with `npm run bench:serve -- --db postgres
 * --rounds 1` (64 clients, shipped model, quiet 2-core machine): 30 ms gave 6.7 sessions/s, p99
 * token gap 55 ms, time to first token p50 1.2 s; 50 ms 6.3/s, 98 ms, 0.8 s; 100 ms 4.9/s, 273 ms,
 * 0.9 s — larger chunks cost more per prompt token. The trainer and `corgi eval` keep fixed chunks.
 */
export const SERVING_SCHEDULER: Readonly<SchedulerOptions> = { stepMilliseconds: servingStepMilliseconds() };

function servingStepMilliseconds(): number {
  const raw = process.env.CORGI_STEP_MS;
  if (raw === undefined || raw === '') return 50;
  const value = Number(raw);
  if (!(value > 0 && Number.isFinite(value)))
    throw new RangeError(`CORGI_STEP_MS must be a positive number of milliseconds, got "${raw}"`);
  return value;
}

/** `SamplingOptions.maxTokens`' default (generate.ts applies the same). */
const DEFAULT_MAX_TOKENS = 128;

export { fitConversation } from './fit-conversation.ts';

export interface LocalPolicyOptions extends SchedulerOptions {
  /** Recorded with every attempt. @default the checkpoint directory's name (`load`), else "local" */
  version?: string;
  /**
   * Dispose the model with the policy. False when the caller keeps training the model and only
   * borrows this policy to sample from it (the trainer's rollouts). @default true
   */
  ownsModel?: boolean;
}

export interface LoadLocalPolicyOptions extends LocalPolicyOptions {
  /**
   * Fold an adapter found in the directory into the base weights (generation then costs what the
   * base costs); false keeps it as a separate low-rank path. @default true
   */
  mergeAdapter?: boolean;
}

export class LocalPolicy implements ChatPolicy {
  readonly version: string;
  private readonly scheduler: GenerationScheduler;
  private readonly ownsModel: boolean;
  private disposed = false;

  /** Takes ownership of `model` (disposed with the policy) unless `ownsModel` is false. */
  constructor(
    readonly model: LlamaModel,
    readonly tokenizer: Tokenizer,
    options: LocalPolicyOptions = {},
  ) {
    if (tokenizer.vocabSize > model.config.vocab_size) {
      throw new Error(
        `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocab_size is ${model.config.vocab_size}`,
      );
    }
    this.version = options.version ?? 'local';
    this.ownsModel = options.ownsModel ?? true;
    this.scheduler = new GenerationScheduler(model, options);
  }

  /**
   * Loads a checkpoint directory in Hugging Face layout (`config.json`, `model.safetensors`,
   * `tokenizer.json`, optional `tokenizer_config.json` and PEFT adapter files), or a Llama `.gguf` file.
   * @throws CheckpointError when something is missing or corrupt
   */
  static async load(dir: string, options: LoadLocalPolicyOptions = {}): Promise<LocalPolicy> {
    const gguf = dir.endsWith('.gguf');
    if (!gguf && !existsSync(join(dir, 'tokenizer.json')))
      throw new CheckpointError(dir, 'no tokenizer.json');
    // A GGUF file carries its tokenizer in its metadata.
    const tokenizer = gguf
      ? await (await import('../model/gguf/gguf-tokenizer.ts')).loadGgufTokenizer(dir)
      : Tokenizer.fromFile(dir);
    const model = await loadCheckpoint(dir);
    try {
      if (hasLoraAdapter(dir)) {
        await loadLoraAdapter(model, dir);
        if (options.mergeAdapter ?? true) mergeLora(model);
      }
      return new LocalPolicy(model, tokenizer, {
        ...options,
        version: options.version ?? basename(resolve(dir)),
      });
    } catch (error) {
      model.dispose();
      throw error;
    }
  }

  /** Sequences decoding now and waiting to join the batch. */
  get load(): { active: number; waiting: number } {
    return this.scheduler.load;
  }

  /**
   * Streams the assistant's reply to `messages`, one chunk per sampled token (see generate.ts for
   * the log-probabilities, stop handling and what the text contains).
   */
  async *generate(
    messages: readonly ChatMessage[],
    options: GenerateOptions = {},
  ): AsyncGenerator<GenerationChunk, Generation> {
    if (this.disposed) throw new Error(`policy ${this.version} has been disposed`);
    const ids = this.encodePrompt(messages, options);
    const generation = yield* this.scheduler.generate(ids, {
      ...options,
      stopIds: this.tokenizer.stopIds,
      // Special tokens (a stray role marker) never reach the text, which goes back into prompts.
      decoder: this.tokenizer.createStreamDecoder({ skipSpecialTokens: true }),
      vocabLimit: this.tokenizer.vocabSize,
    });
    return { ...generation, promptTokens: ids.length };
  }

  /**
   * The prompt ids `generate` decodes from: the chat template over `messages`, fitted to the
   * context window by `fitConversation` so that at least `min(maxTokens, context / 4)` positions
   * stay free to generate. The trainer scores attempts on exactly these ids.
   */
  encodePrompt(
    messages: readonly ChatMessage[],
    { maxTokens = DEFAULT_MAX_TOKENS }: SamplingOptions = {},
  ): number[] {
    const context = this.model.config.max_position_embeddings;
    const reserve = Math.max(1, Math.min(maxTokens, Math.floor(context / 4)));
    const encode = (kept: readonly ChatMessage[]) =>
      this.tokenizer.applyChatTemplate(kept, { addGenerationPrompt: true }).ids;
    return fitConversation(messages, encode, context - reserve);
  }

  /** The prompt's tokens, and `encodePrompt`'s budget: the window less room for the answer. */
  measurePrompt(
    messages: readonly ChatMessage[],
    { maxTokens = DEFAULT_MAX_TOKENS }: SamplingOptions = {},
  ): { tokens: number; limit: number } {
    const context = this.model.config.max_position_embeddings;
    const reserve = Math.max(1, Math.min(maxTokens, Math.floor(context / 4)));
    const tokens = this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true }).ids.length;
    return { tokens, limit: context - reserve };
  }

  /** Stops generation (running attempts fail) and frees the model's tensors. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.scheduler.close();
    if (this.ownsModel) this.model.dispose();
  }
}
