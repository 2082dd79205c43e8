/**
 * `LocalPolicy`: the TensorFlow.js model behind the `ChatPolicy` interface. Messages go through the
 * tokenizer's chat template, tokens through one `GenerationScheduler` shared by every caller (so
 * concurrent sessions are decoded as one batch, see generate.ts), and text back through the
 * tokenizer's stream decoder, so no broken UTF-8 character ever reaches a client.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { CheckpointError, loadCheckpoint } from './checkpoint.ts';
import { GenerationScheduler, type SchedulerOptions } from './generate.ts';
import { hasLoraAdapter, loadLoraAdapter, mergeLora } from './lora.ts';
import type { LlamaModel } from './model.ts';
import { Tokenizer } from './tokenizer.ts';
import type { ChatMessage, ChatPolicy, GenerateOptions, Generation, GenerationChunk } from './types.ts';

export interface LocalPolicyOptions extends SchedulerOptions {
  /** Recorded with every attempt. @default the checkpoint directory's name (`load`), else "local" */
  version?: string;
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
  private disposed = false;

  /** Takes ownership of `model` (disposed with the policy). */
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
    this.scheduler = new GenerationScheduler(model, options);
  }

  /**
   * Loads a checkpoint directory in Hugging Face layout (`config.json`, `model.safetensors`,
   * `tokenizer.json`, optional `tokenizer_config.json` and PEFT adapter files).
   * @throws CheckpointError when something is missing or corrupt
   */
  static async load(dir: string, options: LoadLocalPolicyOptions = {}): Promise<LocalPolicy> {
    if (!existsSync(join(dir, 'tokenizer.json'))) throw new CheckpointError(dir, 'no tokenizer.json');
    const tokenizer = Tokenizer.fromFile(dir);
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
    const { ids } = this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
    return yield* this.scheduler.generate(ids, {
      ...options,
      stopIds: this.tokenizer.stopIds,
      // Special tokens (a stray role marker) never reach the text, which goes back into prompts.
      decoder: this.tokenizer.createStreamDecoder({ skipSpecialTokens: true }),
      vocabLimit: this.tokenizer.vocabSize,
    });
  }

  /** Stops generation (running attempts fail) and frees the model's tensors. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.scheduler.close();
    this.model.dispose();
  }
}
