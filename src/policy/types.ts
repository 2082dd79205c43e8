/**
 * What every policy offers the rest of the product: the local TensorFlow.js model, a remote
 * OpenAI-compatible endpoint, a LangChain chat model, or a scripted mock in tests. The session
 * runner, the trainer's rollouts and `corgi eval` only see this interface.
 */

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** Sampling options; every field has a default so `{}` is valid. */
export interface SamplingOptions {
  /** Softmax temperature; 0 means greedy decoding. @default 0.7 */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 disables. @default 0 */
  topK?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability reaches p. @default 1 */
  topP?: number;
  /** Upper bound on generated tokens per attempt. @default 128 */
  maxTokens?: number;
  /** Generation stops when the text ends with any of these (they are not included). @default [] */
  stop?: string[];
  /** Seed for reproducible sampling; unset draws a random one. */
  seed?: number;
}

/** A piece of streamed output: the new text and the tokens that produced it. */
export interface GenerationChunk {
  text: string;
  tokenIds: number[];
  /** Log-probability of each sampled token under the behaviour policy (same length as tokenIds). */
  logprobs: number[];
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

/** The whole attempt, returned when the stream ends. */
export interface Generation {
  text: string;
  tokenIds: number[];
  logprobs: number[];
  finishReason: FinishReason;
  /** Tokens of the prompt the policy actually decoded from (after fitting it to the window), when it knows. */
  promptTokens?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** Aborting stops generation at the next token; the result then has finishReason "cancelled". */
  signal?: AbortSignal;
}

export interface ChatPolicy {
  /** The version recorded with every attempt this policy produces. */
  readonly version: string;
  /**
   * Streams the assistant's reply to `messages` chunk by chunk; the generator's return value is
   * the whole generation.
   */
  generate(
    messages: readonly ChatMessage[],
    options?: GenerateOptions,
  ): AsyncGenerator<GenerationChunk, Generation>;
  /**
   * The tokens the prompt for `messages` takes, and the most this policy accepts while leaving room
   * for `maxTokens` of answer. Servers refuse an over-long prompt with a 400 before a session starts
   * instead of failing it mid-way. Optional: a remote policy may not know its tokenizer.
   */
  measurePrompt?(
    messages: readonly ChatMessage[],
    options?: SamplingOptions,
  ): { tokens: number; limit: number };
}

/**
 * Where the runner gets its policy: asked again at every attempt boundary, so a hot swap takes
 * effect between attempts and never inside one.
 */
export interface PolicySource {
  current(): ChatPolicy;
}

/** A source that always returns the same policy. */
export function fixedPolicy(policy: ChatPolicy): PolicySource {
  return { current: () => policy };
}
