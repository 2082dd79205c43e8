/**
 * `withCheckerFeedback(model, constraints, {maxAttempts})`: the CORGI feedback loop around ANY
 * LangChain chat model, as a Runnable. The model is adapted to a `ChatPolicy`
 * (`chatModelPolicy`) and the loop is the server's own `runSession` — the same instruction
 * rendering, checking and feedback turns, written once — optionally logged to our PostgreSQL by the
 * same `logSession` the server uses, so wrapped apps feed `corgi export` and the trainer too.
 *
 * `.invoke(input)` resolves to the result (`{type: "result", text, ok, bestScore, check,
 * attempts, sessionId}`); `.stream(input)` yields the session's parts as they happen
 * (`attempt:start`, `token`, `attempt:end` with its check, `user-turn` for each feedback turn,
 * `session:end`), each with the `sessionId`, and the same result last.
 *
 * Known limit: LangChain concatenates a streamed step's chunks before handing them to the next
 * step, and generic concatenation of parts is meaningless. Inside a chain, put this step last when
 * streaming, or call `.invoke()` on the chain (the next step then gets the result).
 */
import { randomUUID } from 'node:crypto';
import type { CallbackManagerForChainRun } from '@langchain/core/callbacks/manager';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { type BaseMessage, isBaseMessage } from '@langchain/core/messages';
import type { BasePromptValueInterface } from '@langchain/core/prompt_values';
import { Runnable, type RunnableConfig } from '@langchain/core/runnables';
import type pg from 'pg';
import { ConstraintError } from '../checkers/errors.ts';
import { type CheckResult, parseConstraints } from '../checkers/registry.ts';
import type { ConstraintSpec, ParsedConstraint } from '../checkers/types.ts';
import { createSession, type SessionSource } from '../db/sessions.ts';
import { chatModelPolicy } from '../policy/remote-policy.ts';
import { type FinishReason, fixedPolicy, type SamplingOptions } from '../policy/types.ts';
import { logSession } from '../session/recorder.ts';
import {
  DEFAULT_MAX_ATTEMPTS,
  MAX_ATTEMPTS_LIMIT,
  runSession,
  type SessionPart,
} from '../session/session-runner.ts';
import { CorgiChatModel } from './corgi-chat-model.ts';

export interface CheckerFeedbackOptions {
  /** Attempts in all, the first answer included (1–10). @default 4 */
  maxAttempts?: number;
  /**
   * Sampling for every attempt, passed to the model as call options (`CorgiChatModel` reads them
   * all, ChatOpenAI `seed` and `stop`) and stored with a logged session. A seed advances by one per
   * attempt, as in the server. @default {}
   */
  sampling?: SamplingOptions;
  /** Log every session to this database (`openDatabase()`'s result or its pool). */
  logTo?: pg.Pool | { pool: pg.Pool };
  /** The logged session's source. @default "live" */
  source?: SessionSource;
  /** The version recorded per attempt. @default the model's name (`CorgiChatModel`: its policy version) */
  policyVersion?: string;
}

/**
 * A prompt string; `{prompt, constraints?}` (constraints for this call only); or chat messages /
 * a chat prompt value whose last message is the user's prompt — the messages before it (a system
 * prompt) are sent ahead of every attempt but are not part of a logged session.
 */
export type CheckerFeedbackInput =
  | string
  | { prompt: string; constraints?: readonly (ConstraintSpec | ParsedConstraint)[] }
  | BaseMessage[]
  | BasePromptValueInterface;

export interface CheckerFeedbackAttempt {
  attempt: number;
  text: string;
  check: CheckResult;
  policyVersion: string;
  finishReason: FinishReason;
}

/** What `.invoke` returns and `.stream` yields last. */
export interface CheckerFeedbackResult {
  type: 'result';
  sessionId: string;
  /** True when an attempt satisfied every constraint. */
  ok: boolean;
  bestScore: number;
  /** The best attempt's text (the latest of equally good ones; the passing one when ok). */
  text: string;
  check: CheckResult | null;
  attempts: CheckerFeedbackAttempt[];
  cancelled: boolean;
  /** Whether the session was written to the database (`logTo`). */
  logged: boolean;
}

export type CheckerFeedbackPart = (SessionPart & { sessionId: string }) | CheckerFeedbackResult;

function isResult(value: unknown): value is CheckerFeedbackResult {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'result';
}

/** Reads the input into the session's prompt, the messages sent before it, and its constraints. */
function parseInput(
  input: CheckerFeedbackInput,
  fallback: ParsedConstraint[],
): { prompt: string; prefix: BaseMessage[]; constraints: ParsedConstraint[] } {
  if (typeof input === 'string') return { prompt: input, prefix: [], constraints: fallback };
  const messages = Array.isArray(input)
    ? input
    : typeof (input as BasePromptValueInterface).toChatMessages === 'function'
      ? (input as BasePromptValueInterface).toChatMessages()
      : undefined;
  if (messages) {
    const last = messages.at(-1);
    if (!last || !isBaseMessage(last) || last.getType() !== 'human') {
      throw new Error(
        "input: the last message must be the user's (human) prompt; its text starts the session",
      );
    }
    return { prompt: last.text, prefix: messages.slice(0, -1), constraints: fallback };
  }
  const { prompt, constraints } = input as { prompt?: unknown; constraints?: unknown };
  if (typeof prompt !== 'string') {
    throw new Error(
      'input.prompt: expected a string (or pass a prompt string, chat messages or a prompt value)',
    );
  }
  return {
    prompt,
    prefix: [],
    constraints: constraints === undefined ? fallback : parseConstraints(constraints, 'input.constraints'),
  };
}

export class CheckerFeedbackRunnable extends Runnable<CheckerFeedbackInput, CheckerFeedbackPart> {
  static override lc_name(): string {
    return 'CheckerFeedback';
  }

  lc_namespace = ['corgi_live', 'langchain'];
  readonly constraints: ParsedConstraint[];
  readonly maxAttempts: number;

  constructor(
    readonly model: BaseChatModel,
    constraints: readonly (ConstraintSpec | ParsedConstraint)[],
    readonly options: CheckerFeedbackOptions = {},
  ) {
    super();
    this.constraints = parseConstraints(constraints);
    const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT) {
      throw new ConstraintError(
        'maxAttempts',
        `expected an integer in 1..${MAX_ATTEMPTS_LIMIT}, got ${maxAttempts}`,
        {
          code: 'invalid_request',
        },
      );
    }
    this.maxAttempts = maxAttempts;
  }

  override async invoke(
    input: CheckerFeedbackInput,
    options?: Partial<RunnableConfig>,
  ): Promise<CheckerFeedbackResult> {
    const run = async (
      value: CheckerFeedbackInput,
      config?: Partial<RunnableConfig>,
      runManager?: CallbackManagerForChainRun,
    ) => {
      let result: CheckerFeedbackResult | undefined;
      for await (const part of this.session(value, config, runManager)) if (isResult(part)) result = part;
      return result!;
    };
    return (await this._callWithConfig(run, input, options)) as CheckerFeedbackResult;
  }

  override async *_streamIterator(
    input: CheckerFeedbackInput,
    options?: Partial<RunnableConfig>,
  ): AsyncGenerator<CheckerFeedbackPart> {
    async function* single() {
      yield input;
    }
    yield* this._transformStreamWithConfig(
      single(),
      (inputs, runManager, config) => this.sessions(inputs, config, runManager),
      options,
    );
  }

  /** For tracing a streamed run: its output is the result, not a merge of the parts. */
  override _concatOutputChunks<O>(first: O, second: O): O {
    return isResult(second) || !isResult(first) ? second : first;
  }

  private async *sessions(
    inputs: AsyncGenerator<CheckerFeedbackInput>,
    config?: Partial<RunnableConfig>,
    runManager?: CallbackManagerForChainRun,
  ): AsyncGenerator<CheckerFeedbackPart> {
    for await (const input of inputs) yield* this.session(input, config, runManager);
  }

  /** One session: the runner's parts (logged first when `logTo` is set), then the result. */
  private async *session(
    input: CheckerFeedbackInput,
    config?: Partial<RunnableConfig>,
    runManager?: CallbackManagerForChainRun,
  ): AsyncGenerator<CheckerFeedbackPart> {
    const { prompt, prefix, constraints } = parseInput(input, this.constraints);
    // A spec'd CorgiChatModel knows its policy version only once loaded; load it before attempt 1.
    if (this.model instanceof CorgiChatModel) await this.model.ready();
    const policy = chatModelPolicy(this.model, {
      version: this.options.policyVersion,
      prefix,
      // The model's runs nest under this one in traces and `streamEvents`.
      config: { callbacks: runManager?.getChild(), tags: config?.tags, metadata: config?.metadata },
    });
    const sampling = this.options.sampling ?? {};
    const sessionId = randomUUID();
    let parts: AsyncIterable<SessionPart> = runSession(
      { prompt, constraints, maxAttempts: this.maxAttempts, sampling },
      { policy: fixedPolicy(policy), signal: config?.signal },
    );
    const pool =
      this.options.logTo && 'pool' in this.options.logTo ? this.options.logTo.pool : this.options.logTo;
    if (pool) {
      await createSession(pool, {
        id: sessionId,
        source: this.options.source ?? 'live',
        prompt,
        constraints,
        maxAttempts: this.maxAttempts,
        sampling,
      });
      parts = logSession(pool, sessionId, parts);
    }

    const attempts: CheckerFeedbackAttempt[] = [];
    for await (const part of parts) {
      yield { ...part, sessionId };
      if (part.type === 'attempt:end') {
        const { attempt, text, check, policyVersion, finishReason } = part;
        attempts.push({ attempt, text, check, policyVersion, finishReason });
      } else if (part.type === 'error') {
        throw new Error(`${part.code}: ${part.message}`);
      } else if (part.type === 'session:end') {
        const best = attempts.reduce<CheckerFeedbackAttempt | undefined>(
          (top, a) => (top === undefined || a.check.score >= top.check.score ? a : top),
          undefined,
        );
        yield {
          type: 'result',
          sessionId,
          ok: part.ok,
          bestScore: part.bestScore,
          text: best?.text ?? '',
          check: best?.check ?? null,
          attempts,
          cancelled: part.cancelled,
          logged: pool !== undefined,
        };
      }
    }
  }
}

/**
 * Wraps a chat model in the checker feedback loop: generate, check every constraint, send the
 * checker's feedback back as a user turn, and retry until the answer passes or `maxAttempts` run out.
 * @throws ConstraintError naming the field for invalid constraints or maxAttempts
 */
export function withCheckerFeedback(
  model: BaseChatModel,
  constraints: readonly (ConstraintSpec | ParsedConstraint)[],
  options: CheckerFeedbackOptions = {},
): CheckerFeedbackRunnable {
  return new CheckerFeedbackRunnable(model, constraints, options);
}
