/**
 * Policies whose tokens come from somewhere other than our TensorFlow.js model:
 *
 * - `chatModelPolicy(model)`: any LangChain chat model behind the `ChatPolicy` interface, so the one
 *   session runner (and `withCheckerFeedback`) drives ChatOpenAI, Ollama, a fake model in tests or
 *   our own `CorgiChatModel` alike;
 * - `createRemotePolicy({baseURL, model})`: an OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp,
 *   OpenAI) through `@langchain/openai`'s ChatOpenAI — what `CORGI_POLICY=openai:<baseURL>#<model>`
 *   serves;
 * - `loadPolicyFromSpec(spec)`: the one parser of `--policy` / `CORGI_POLICY` values;
 * - `loadVllmLoraAdapter` / `unloadVllmLoraAdapter`: vLLM's runtime LoRA endpoints, so promoting a
 *   version can put its adapter on the inference server (protocol in docs/langchain.md, "Remote policies");
 * - `remotePromotionLoader(spec)`: what a server serving a remote spec does when a version is
 *   promoted (promotion.ts's `PolicyLoader`): on vLLM, load the version's adapter and serve it by
 *   name; on a plain OpenAI-compatible endpoint, refuse and say why.
 *
 * Token ids and behaviour log-probs. The trainer needs both per sampled token; a chat API returns
 * text. They are filled when the model reports them: `CorgiChatModel` puts them in each chunk's
 * `response_metadata.corgi`, and vLLM does when asked for `logprobs` with
 * `return_tokens_as_token_ids` (the `vllm:` spec), each token then reading `token_id:<id>`. Otherwise
 * both arrays stay empty — never one without the other, which the `Generation` contract forbids.
 */

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { AIMessage, type BaseMessage, HumanMessage, SystemMessage } from '@langchain/core/messages';
import type { RunnableConfig } from '@langchain/core/runnables';
import { ChatOpenAI } from '@langchain/openai';
import { CorgiError } from '../common/errors.ts';
import { modelVersionName } from './builtin-model.ts';
import {
  checkPolicySpec,
  isRemotePolicySpec,
  parseBaseURL,
  parsePolicySpec,
  type RemotePolicySpec,
} from './policy-spec.ts';
import { SAMPLING_DEFAULTS } from './sampling.ts';
import type { ChatMessage, ChatPolicy, FinishReason, GenerateOptions, SamplingOptions } from './types.ts';

// The spec parser lives in a module of its own (commands parse `--policy` without loading TensorFlow.js).
export {
  checkPolicySpec,
  isRemotePolicySpec,
  type PolicySpec,
  parsePolicySpec,
  type RemotePolicySpec,
} from './policy-spec.ts';

// ---------------------------------------------------------------------------------------------
// Any LangChain chat model as a ChatPolicy.

export interface ChatModelPolicyOptions {
  /**
   * The version recorded with every attempt; a function is asked at every attempt (a model whose
   * weights can change underneath, like a hot-swapped `CorgiChatModel`).
   * @default the model's LangSmith model name (`ls_model_name`), else its class name
   */
  version?: string | (() => string);
  /** Messages sent before the session's own (a system prompt, earlier history). @default [] */
  prefix?: readonly BaseMessage[];
  /** Callbacks, tags and metadata for the model calls (tracing, `streamEvents`). */
  config?: RunnableConfig;
  /**
   * Maps the runner's sampling options to the model's call options. The default passes
   * `temperature`, `topK`, `topP`, `maxTokens` and `seed` under those names (what `CorgiChatModel`
   * reads; ChatOpenAI reads `seed`; models that know none ignore them) and `stop` when non-empty.
   */
  callOptions?: (sampling: SamplingOptions) => Record<string, unknown>;
}

/** The default `callOptions`: our names, and no empty `stop` (some models treat [] as "stop now"). */
function defaultCallOptions({ stop, ...sampling }: SamplingOptions): Record<string, unknown> {
  const options: Record<string, unknown> = { ...sampling };
  if (stop && stop.length > 0) options.stop = stop;
  return options;
}

/** Our chat messages as LangChain messages. */
export function toLangChainMessages(messages: readonly ChatMessage[]): BaseMessage[] {
  return messages.map((message) => {
    switch (message.role) {
      case 'system':
        return new SystemMessage(message.content);
      case 'user':
        return new HumanMessage(message.content);
      case 'assistant':
        return new AIMessage(message.content);
    }
  });
}

/** A chat model's name for the logs: the model it calls if it says, else its class. */
export function chatModelName(model: BaseChatModel): string {
  const params = model.getLsParams({} as never);
  return params.ls_model_name || model.getName();
}

/**
 * Wraps a LangChain chat model as a `ChatPolicy`: `generate` streams the model's reply through
 * `model.stream` (so callbacks, retries and tracing behave as they do for the model anywhere else),
 * one chunk per streamed message chunk. Aborting `signal` ends the attempt as "cancelled" with the
 * text so far; a model error propagates (the session runner turns it into an `error` part).
 */
export function chatModelPolicy(model: BaseChatModel, options: ChatModelPolicyOptions = {}): ChatPolicy {
  // Asked at every attempt by default: a model's name can change under it (a hot-swapped policy).
  const version = options.version ?? (() => chatModelName(model));
  const prefix = options.prefix ?? [];
  const toCallOptions = options.callOptions ?? defaultCallOptions;
  return {
    get version() {
      return typeof version === 'function' ? version() : version;
    },
    async *generate(messages, generateOptions: GenerateOptions = {}) {
      const { signal, ...sampling } = generateOptions;
      const tokens = new TokenCollector();
      let text = '';
      let finishReason: FinishReason = 'stop';
      try {
        const stream = await model.stream([...prefix, ...toLangChainMessages(messages)], {
          ...options.config,
          ...toCallOptions(sampling),
          signal,
        });
        for await (const chunk of stream) {
          const piece = chunk.text;
          const { tokenIds, logprobs } = tokens.add(chunk.response_metadata);
          const reason = chunk.response_metadata?.finish_reason;
          if (reason === 'length' || reason === 'cancelled') finishReason = reason;
          if (piece === '' && tokenIds.length === 0) continue;
          text += piece;
          yield { text: piece, tokenIds, logprobs };
        }
      } catch (error) {
        // LangChain ends an aborted stream by throwing; for the runner a cancel is an outcome.
        if (!signal?.aborted) throw error;
        finishReason = 'cancelled';
      }
      if (signal?.aborted) finishReason = 'cancelled';
      return { text, ...tokens.result(), finishReason };
    },
  };
}

/**
 * Gathers token ids and log-probs from streamed `response_metadata`: ours
 * (`corgi: {token_ids, token_logprobs}`) or OpenAI's `logprobs.content` whose tokens are vLLM's
 * `token_id:<id>`. One chunk that carries text but no readable ids spoils the whole attempt's
 * (partial ids would misalign with the text), and then both arrays come back empty.
 */
class TokenCollector {
  private readonly ids: number[] = [];
  private readonly logprobs: number[] = [];
  private complete = true;

  add(metadata: Record<string, unknown> | undefined): { tokenIds: number[]; logprobs: number[] } {
    const ours = metadata?.corgi as { token_ids?: number[]; token_logprobs?: number[] } | undefined;
    if (ours?.token_ids && ours.token_logprobs && ours.token_ids.length === ours.token_logprobs.length) {
      return this.keep(ours.token_ids, ours.token_logprobs);
    }
    const content = (metadata?.logprobs as { content?: { token?: string; logprob?: number }[] } | undefined)
      ?.content;
    if (Array.isArray(content) && content.length > 0) {
      const ids: number[] = [];
      const logprobs: number[] = [];
      for (const entry of content) {
        const match = /^token_id:(\d+)$/.exec(entry.token ?? '');
        if (!match || typeof entry.logprob !== 'number') {
          this.complete = false;
          return { tokenIds: [], logprobs: [] };
        }
        ids.push(Number(match[1]));
        logprobs.push(entry.logprob);
      }
      return this.keep(ids, logprobs);
    }
    return { tokenIds: [], logprobs: [] };
  }

  private keep(ids: number[], logprobs: number[]): { tokenIds: number[]; logprobs: number[] } {
    this.ids.push(...ids);
    this.logprobs.push(...logprobs);
    return { tokenIds: ids, logprobs };
  }

  result(): { tokenIds: number[]; logprobs: number[] } {
    return this.complete ? { tokenIds: this.ids, logprobs: this.logprobs } : { tokenIds: [], logprobs: [] };
  }
}

// ---------------------------------------------------------------------------------------------
// An OpenAI-compatible endpoint.

export interface RemotePolicyOptions {
  /** The OpenAI-compatible base URL, with its `/v1` (`http://127.0.0.1:8000/v1`). */
  baseURL: string;
  /** The served model, or a LoRA adapter's name on vLLM. */
  model: string;
  /** @default CORGI_POLICY_API_KEY, then OPENAI_API_KEY, then "EMPTY" (vLLM and Ollama ignore it) */
  apiKey?: string;
  /** @default the model name (so a vLLM adapter named after a policy version logs as that version) */
  version?: string;
  /**
   * vLLM extensions: ask for each sampled token's id (`return_tokens_as_token_ids`) and log-prob,
   * and pass `topK` as `top_k`. Other servers may refuse the extra fields. @default false
   */
  vllm?: boolean;
  /** Retries of a failed request (the OpenAI SDK's backoff). @default 2 */
  maxRetries?: number;
}

/**
 * A policy served by an OpenAI-compatible chat-completions endpoint. Each attempt streams from
 * a ChatOpenAI configured with that attempt's sampling (temperature, top-p and the token budget are
 * constructor fields there, not call options); `seed` and `stop` go per request.
 */
export function createRemotePolicy(options: RemotePolicyOptions): ChatPolicy {
  const baseURL = parseBaseURL(options.baseURL, 'baseURL');
  if (!options.model) throw new Error('model: expected the served model name, got an empty string');
  const apiKey = options.apiKey ?? process.env.CORGI_POLICY_API_KEY ?? process.env.OPENAI_API_KEY ?? 'EMPTY';
  const version = options.version ?? options.model;
  return {
    version,
    generate(messages, generateOptions: GenerateOptions = {}) {
      // Ours, not the remote server's: its defaults differ.
      const { temperature, topP, maxTokens, topK } = { ...SAMPLING_DEFAULTS, ...generateOptions };
      const modelKwargs: Record<string, unknown> = {};
      if (options.vllm) {
        modelKwargs.return_tokens_as_token_ids = true;
        if (topK) modelKwargs.top_k = topK;
      }
      const chat = new ChatOpenAI({
        model: options.model,
        apiKey,
        configuration: { baseURL },
        temperature,
        topP,
        maxTokens,
        streaming: true,
        streamUsage: true,
        logprobs: options.vllm ? true : undefined,
        modelKwargs,
        maxRetries: options.maxRetries ?? 2,
      });
      return chatModelPolicy(chat, {
        version,
        callOptions: ({ seed, stop }) => ({
          ...(seed === undefined ? {} : { seed }),
          ...(stop && stop.length > 0 ? { stop } : {}),
        }),
      }).generate(messages, generateOptions);
    },
  };
}

/**
 * The policy a spec names: a checkpoint directory served by llama.cpp (`servingPolicyLoader`
 * converts it to GGUF once), or a remote policy for `openai:` / `vllm:`.
 * @throws when the directory holds no checkpoint, naming `field`
 */
export async function loadPolicyFromSpec(
  spec: string,
  { field = 'policy' }: { field?: string } = {},
): Promise<ChatPolicy & { dispose?(): void | Promise<void> }> {
  const parsed = checkPolicySpec(spec, field);
  if (parsed.kind === 'openai') {
    return createRemotePolicy({ baseURL: parsed.baseURL, model: parsed.model, vllm: parsed.vllm });
  }
  // Loaded on demand: node-llama-cpp is not needed to import the package.
  const { servingPolicyLoader } = await import('./serving-loader.ts');
  return servingPolicyLoader()(parsed.dir, modelVersionName(resolve(parsed.dir)));
}

// ---------------------------------------------------------------------------------------------
// vLLM runtime LoRA adapters.

export interface VllmAdapterRequest {
  /** The same base URL as the policy (`http://host:8000/v1`); the endpoints sit beside `/v1/models`. */
  baseURL: string;
  /** The adapter's name: what requests then pass as `model` (use the policy version). */
  loraName: string;
  /** @default CORGI_POLICY_API_KEY, then OPENAI_API_KEY (sent as a Bearer token when set) */
  apiKey?: string;
  signal?: AbortSignal;
}

export class VllmAdapterError extends CorgiError {
  constructor(
    message: string,
    /** The server's HTTP status; 0 when it could not be reached (or did not answer in time). */
    readonly status: number,
  ) {
    super('upstream_error', message);
  }
}

/**
 * Asks a vLLM server (started with `--enable-lora` and `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`) to
 * load a PEFT adapter directory — `adapter_config.json` + `adapter_model.safetensors`, as
 * `saveLoraAdapter` writes them — under `loraName`: `POST <baseURL>/load_lora_adapter
 * {"lora_name", "lora_path"}`. `loraPath` is a path on the vLLM server's machine. Loading a name that
 * is already loaded is not an error (a retried promotion), reported as `alreadyLoaded`.
 * @throws VllmAdapterError with the server's status and message
 */
export async function loadVllmLoraAdapter(
  request: VllmAdapterRequest & { loraPath: string },
): Promise<{ alreadyLoaded: boolean }> {
  if (!request.loraPath) throw new Error('loraPath: expected the adapter directory on the vLLM server');
  const { ok, status, message } = await postAdapterEndpoint(request, 'load_lora_adapter', {
    lora_name: request.loraName,
    lora_path: request.loraPath,
  });
  if (ok) return { alreadyLoaded: false };
  if (status === 400 && /already been loaded/i.test(message)) return { alreadyLoaded: true };
  throw new VllmAdapterError(
    `vLLM refused to load adapter "${request.loraName}" (${status}): ${message}`,
    status,
  );
}

/** `POST <baseURL>/unload_lora_adapter {"lora_name"}`: frees a retired version's adapter slot. */
export async function unloadVllmLoraAdapter(request: VllmAdapterRequest): Promise<void> {
  const { ok, status, message } = await postAdapterEndpoint(request, 'unload_lora_adapter', {
    lora_name: request.loraName,
  });
  if (!ok) {
    throw new VllmAdapterError(
      `vLLM refused to unload adapter "${request.loraName}" (${status}): ${message}`,
      status,
    );
  }
}

async function postAdapterEndpoint(
  request: VllmAdapterRequest,
  endpoint: string,
  body: Record<string, string>,
): Promise<{ ok: boolean; status: number; message: string }> {
  if (!request.loraName) throw new Error('loraName: expected the adapter name requests will use as model');
  const base = parseBaseURL(request.baseURL, 'baseURL');
  // vLLM serves these beside the OpenAI routes: <host>/v1/load_lora_adapter.
  const url = /\/v1$/.test(base) ? `${base}/${endpoint}` : `${base}/v1/${endpoint}`;
  const apiKey = request.apiKey ?? process.env.CORGI_POLICY_API_KEY ?? process.env.OPENAI_API_KEY;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      signal: request.signal,
    });
    text = await response.text();
  } catch (error) {
    // fetch says "fetch failed" and keeps the reason (ECONNREFUSED, a timeout) in `cause`.
    const cause = (error as Error).cause as Error | undefined;
    throw new VllmAdapterError(
      `cannot reach vLLM at ${url}: ${cause?.message ?? (error as Error).message}`,
      0,
    );
  }
  // Success is plain text; errors are OpenAI-style {"message"} or {"error": {"message"}} JSON.
  let message = text;
  try {
    const parsed = JSON.parse(text);
    message = parsed?.error?.message ?? parsed?.message ?? text;
  } catch {}
  return { ok: response.ok, status: response.status, message };
}

// ---------------------------------------------------------------------------------------------
// Promotions on a server that serves a remote policy.

/**
 * Why a server serving a remote policy cannot serve a promoted version, for a reason that is not
 * the checkpoint's fault (promotion.ts keeps the code and does not mark the candidate refused):
 * `promotion_unsupported` when the endpoint cannot serve it at all (a plain OpenAI-compatible
 * server, a directory without a LoRA adapter, another base model), `upstream_error` when vLLM
 * refused the adapter or could not be reached.
 */
export class RemotePromotionError extends CorgiError {
  declare readonly code: 'promotion_unsupported' | 'upstream_error';

  constructor(
    code: 'promotion_unsupported' | 'upstream_error',
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(code, message, options);
  }
}

export interface RemotePromotionLoaderOptions {
  /** @default as `createRemotePolicy` and `loadVllmLoraAdapter` */
  apiKey?: string;
  /** How long vLLM may take to load an adapter. @default 120000 */
  timeoutMs?: number;
}

/** PEFT's adapter files, what vLLM's `load_lora_adapter` reads from `lora_path`. */
const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'];

/**
 * What a server serving `spec` loads when `version` (checkpoint `checkpoint`) is promoted, rolled
 * back to, or live at start-up — promotion.ts's `PolicyLoader`, so promotions of a remote policy go
 * through the same `PolicyFollower` and `PolicyRegistry` swap as a local one:
 *
 * - a recorded remote base (`checkpoint` is an `openai:`/`vllm:` spec naming `spec.model`): that
 *   model again, no call (rollback to the base);
 * - `vllm:` and a checkpoint directory holding a PEFT adapter: `POST <host>/v1/load_lora_adapter
 *   {"lora_name": version, "lora_path": checkpoint}` ("already loaded" is fine: another server, or
 *   a retry), then a remote policy whose `model` is `version` — vLLM serves a loaded adapter under
 *   its `lora_name`. The adapter is never unloaded here: attempts in flight (on this server or on
 *   another sharing the vLLM) may still use it, and a rollback returns to it;
 * - anything else, and every directory on a plain `openai:` endpoint (no runtime loading):
 *   `RemotePromotionError` `promotion_unsupported`, saying so.
 *
 * @throws RemotePromotionError
 */
export function remotePromotionLoader(
  spec: RemotePolicySpec,
  { apiKey, timeoutMs = 120_000 }: RemotePromotionLoaderOptions = {},
): (checkpoint: string, version: string) => Promise<ChatPolicy> {
  const served = `${spec.vllm ? 'vllm' : 'openai'}:${spec.baseURL}#${spec.model}`;
  const remote = (model: string, version: string) =>
    createRemotePolicy({ baseURL: spec.baseURL, model, version, vllm: spec.vllm, apiKey });
  return async (checkpoint, version) => {
    if (isRemotePolicySpec(checkpoint)) {
      const recorded = parsePolicySpec(checkpoint, 'checkpoint');
      if (recorded.kind === 'openai' && recorded.model === spec.model) return remote(spec.model, version);
      throw new RemotePromotionError(
        'promotion_unsupported',
        `it is the remote model ${checkpoint}, not ${spec.model}, the model of ${served}`,
      );
    }
    if (!spec.vllm) {
      throw new RemotePromotionError(
        'promotion_unsupported',
        `${served} is a plain OpenAI-compatible endpoint, which cannot load a version at run time: ` +
          `servers on it keep serving ${spec.model}. Serve from vLLM (vllm:<baseURL>#<model>, runtime LoRA ` +
          'loading on) to follow promotions, or restart the endpoint and the servers on the new model',
      );
    }
    const missing = ADAPTER_FILES.filter((name) => !existsSync(join(checkpoint, name)));
    if (missing.length > 0) {
      throw new RemotePromotionError(
        'promotion_unsupported',
        `${checkpoint} holds no LoRA adapter (${missing.join(', ')} missing), and vLLM (${served}) can ` +
          'load only adapters at run time',
      );
    }
    try {
      await loadVllmLoraAdapter({
        baseURL: spec.baseURL,
        loraName: version,
        loraPath: checkpoint,
        apiKey,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new RemotePromotionError('upstream_error', (error as Error).message, { cause: error });
    }
    return remote(version, version);
  };
}
