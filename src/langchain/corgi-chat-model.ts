/**
 * `CorgiChatModel`: our policy as a LangChain chat model, so it drops into any LangChain app:
 * `.invoke`, `.stream`, `.batch`, LCEL pipes, callbacks and tracing all come from `BaseChatModel`;
 * this class only turns messages into a `ChatPolicy.generate` call and its chunks back into
 * message chunks.
 *
 * What each response carries besides the text:
 * - `usage_metadata` — prompt tokens (the chat template the policy really decodes from; absent for
 *   a policy that cannot count them, such as a remote one), generated tokens and their total;
 * - `response_metadata.policy_version` — the version that produced the answer (it can change
 *   between calls when the source is hot-swapped), `finish_reason` ("stop" | "length" | "cancelled"),
 *   and `corgi: {token_ids, token_logprobs}` — every sampled token's id and behaviour log-prob,
 *   merged across chunks by LangChain's chunk concatenation, what a trainer needs.
 *
 * `.batch` needs nothing special: concurrent calls reach a local policy together and llama.cpp
 * decodes them as one batch (one sequence each, see src/policy/llama-cpp-policy.ts).
 */
import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import {
  BaseChatModel,
  type BaseChatModelCallOptions,
  type BaseChatModelParams,
  type LangSmithParams,
} from '@langchain/core/language_models/chat_models';
import { AIMessage, AIMessageChunk, type BaseMessage } from '@langchain/core/messages';
import { ChatGenerationChunk, type ChatResult } from '@langchain/core/outputs';
import { loadPolicyFromSpec } from '../policy/remote-policy.ts';
import type { ChatMessage, ChatPolicy, PolicySource, SamplingOptions } from '../policy/types.ts';

/** Where the policy comes from when none is given. */
export const DEFAULT_POLICY_SPEC = 'models/base';

export interface CorgiChatModelCallOptions extends BaseChatModelCallOptions {
  /** Softmax temperature; 0 is greedy. Overrides the model's field for this call. */
  temperature?: number;
  topK?: number;
  topP?: number;
  maxTokens?: number;
  /** A seed makes sampling reproducible. */
  seed?: number;
}

export interface CorgiChatModelFields extends BaseChatModelParams, Omit<SamplingOptions, 'stop'> {
  /**
   * The policy: a `ChatPolicy` (a `LlamaCppPolicy`, a remote one), a `PolicySource` (a hot-swapped
   * `PolicyRegistry`, asked at every call), or a spec loaded at first use — a checkpoint directory,
   * `openai:<baseURL>#<model>` or `vllm:<baseURL>#<model>`.
   * @default process.env.CORGI_POLICY ?? "models/base"
   */
  policy?: ChatPolicy | PolicySource | string;
  /** Stop strings for every call (a call's own `stop` replaces them). */
  stop?: string[];
}

function isPolicySource(value: ChatPolicy | PolicySource): value is PolicySource {
  return typeof (value as PolicySource).current === 'function';
}

/** LangChain's message types → our three roles; anything else (tools, functions) is refused. */
export function toChatMessages(messages: readonly BaseMessage[]): ChatMessage[] {
  return messages.map((message, i) => {
    const type = message.getType();
    const content = typeof message.content === 'string' ? message.content : message.text;
    if (type === 'human') return { role: 'user', content };
    if (type === 'ai') return { role: 'assistant', content };
    if (type === 'system') return { role: 'system', content };
    if (type === 'generic') {
      const role = (message as BaseMessage & { role?: string }).role;
      if (role === 'user' || role === 'assistant' || role === 'system') return { role, content };
    }
    throw new Error(
      `messages[${i}]: a ${type} message; CorgiChatModel takes system, human (user) and ai (assistant) messages`,
    );
  });
}

export class CorgiChatModel extends BaseChatModel<CorgiChatModelCallOptions, AIMessageChunk> {
  static override lc_name(): string {
    return 'CorgiChatModel';
  }

  temperature?: number;
  topK?: number;
  topP?: number;
  maxTokens?: number;
  seed?: number;
  stop?: string[];

  private source?: PolicySource;
  private loading?: Promise<PolicySource>;
  /** A policy this model loaded from a spec is this model's to dispose. */
  private owned?: ChatPolicy & { dispose?(): void | Promise<void> };
  private readonly spec?: string;

  constructor(fields: CorgiChatModelFields = {}) {
    // The policy stays out of LangChain's kwargs (it holds the model's tensors).
    const { policy, temperature, topK, topP, maxTokens, seed, stop, ...params } = fields;
    super(params);
    Object.assign(this, { temperature, topK, topP, maxTokens, seed, stop });
    const chosen = policy ?? process.env.CORGI_POLICY ?? DEFAULT_POLICY_SPEC;
    if (typeof chosen === 'string') this.spec = chosen;
    else this.source = isPolicySource(chosen) ? chosen : { current: () => chosen };
  }

  /** Loads the policy named by `spec` (default `CORGI_POLICY`, then models/base) right away. */
  static async load(
    spec?: string,
    fields: Omit<CorgiChatModelFields, 'policy'> = {},
  ): Promise<CorgiChatModel> {
    const model = new CorgiChatModel({
      ...fields,
      policy: spec ?? process.env.CORGI_POLICY ?? DEFAULT_POLICY_SPEC,
    });
    await model.ready();
    return model;
  }

  _llmType(): string {
    return 'corgi';
  }

  /** Resolves the policy (loading it from the spec on first use). */
  async ready(): Promise<PolicySource> {
    if (this.source) return this.source;
    this.loading ??= loadPolicyFromSpec(this.spec!).then((policy) => {
      this.owned = policy;
      this.source = { current: () => policy };
      return this.source;
    });
    try {
      return await this.loading;
    } catch (error) {
      this.loading = undefined; // a later call may retry (the checkpoint may appear)
      throw error;
    }
  }

  /** The version the next call would use; undefined until a spec'd policy has loaded. */
  get policyVersion(): string | undefined {
    return this.source?.current().version;
  }

  override getLsParams(options: this['ParsedCallOptions']): LangSmithParams {
    return {
      ls_provider: 'corgi',
      ls_model_name: this.policyVersion ?? this.spec ?? 'corgi',
      ls_model_type: 'chat',
      ls_temperature: options.temperature ?? this.temperature,
      ls_max_tokens: options.maxTokens ?? this.maxTokens,
      ls_stop: options.stop ?? this.stop,
    };
  }

  override invocationParams(options?: this['ParsedCallOptions']): SamplingOptions {
    const pick = <K extends keyof SamplingOptions>(key: K) => options?.[key] ?? this[key];
    const params: SamplingOptions = {
      temperature: pick('temperature'),
      topK: pick('topK'),
      topP: pick('topP'),
      maxTokens: pick('maxTokens'),
      seed: pick('seed'),
      stop: pick('stop'),
    };
    // Unset fields fall through to the policy's defaults (SamplingOptions documents them).
    return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
  }

  override async *_streamResponseChunks(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): AsyncGenerator<ChatGenerationChunk> {
    const chat = toChatMessages(messages);
    const sampling = this.invocationParams(options);
    // One policy for the whole call: a swap lands between calls, never inside one.
    const policy = (await this.ready()).current();
    const stream = policy.generate(chat, { ...sampling, signal: options.signal });
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        const generation = next.value;
        // Exact when the policy reports the fitted prompt it decoded from; else its own count (a
        // hot-swap registry forwards it), and no usage at all from a policy without a tokenizer.
        const promptTokens = generation.promptTokens ?? policy.measurePrompt?.(chat, sampling).tokens;
        // The closing chunk carries what is known once: the version, why it stopped, the usage.
        yield new ChatGenerationChunk({
          text: '',
          message: new AIMessageChunk({
            content: '',
            response_metadata: {
              model_provider: 'corgi',
              model_name: policy.version,
              policy_version: policy.version,
              finish_reason: generation.finishReason,
            },
            usage_metadata:
              promptTokens === undefined
                ? undefined
                : {
                    input_tokens: promptTokens,
                    output_tokens: generation.tokenIds.length,
                    total_tokens: promptTokens + generation.tokenIds.length,
                  },
          }),
          generationInfo: { finish_reason: generation.finishReason },
        });
        return;
      }
      const { text, tokenIds, logprobs } = next.value;
      const chunk = new ChatGenerationChunk({
        text,
        message: new AIMessageChunk({
          content: text,
          response_metadata: { corgi: { token_ids: tokenIds, token_logprobs: logprobs } },
        }),
      });
      yield chunk;
      await runManager?.handleLLMNewToken(text, undefined, undefined, undefined, undefined, { chunk });
    }
  }

  async _generate(
    messages: BaseMessage[],
    options: this['ParsedCallOptions'],
    runManager?: CallbackManagerForLLMRun,
  ): Promise<ChatResult> {
    let whole: ChatGenerationChunk | undefined;
    for await (const chunk of this._streamResponseChunks(messages, options, runManager)) {
      whole = whole ? whole.concat(chunk) : chunk;
    }
    // As the stream path and other chat models do: an aborted call fails, it does not return a stub.
    options.signal?.throwIfAborted();
    const merged = whole!.message as AIMessageChunk;
    const usage = merged.usage_metadata;
    const message = new AIMessage({
      content: merged.text,
      response_metadata: merged.response_metadata,
      // Only the counts: chunk concatenation adds empty token-detail objects we never filled.
      usage_metadata: usage && {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        total_tokens: usage.total_tokens,
      },
    });
    const corgi = merged.response_metadata.corgi as { token_ids?: number[] } | undefined;
    const completionTokens = corgi?.token_ids?.length ?? 0;
    return {
      generations: [{ text: merged.text, message, generationInfo: whole!.generationInfo }],
      llmOutput: {
        tokenUsage: {
          promptTokens: usage?.input_tokens,
          completionTokens,
          totalTokens: usage?.total_tokens,
        },
      },
    };
  }

  /** Frees a policy this model loaded itself (a given policy stays its owner's). */
  async close(): Promise<void> {
    if (!this.owned) return;
    await this.owned.dispose?.();
    this.owned = undefined;
    this.source = undefined;
    this.loading = undefined;
  }
}
