/**
 * `POST /v1/chat/completions`, OpenAI's protocol: a plain completion from the live policy, or with
 * `"corgi": {"constraints", "max_attempts"}` a CORGI session started through the same
 * `SessionService` as `POST /v1/sessions` (recorded, limited, metered and cancellable alike).
 * JSON (`chat.completion`) or, with `"stream": true`, Server-Sent Events (`chat.completion.chunk`
 * frames, then `data: [DONE]`). Errors take OpenAI's shape (openai-error.ts).
 */
import { randomUUID } from 'node:crypto';
import { type Response, Router } from 'express';
import type pg from 'pg';
import { getPolicyVersion } from '../../db/policy-versions.ts';
import type { PolicySource } from '../../policy/types.ts';
import { HttpError } from '../http-error.ts';
import type { ServerMetrics } from '../metrics.ts';
import { parseChatRequest } from '../openai/chat-request.ts';
import {
  assertPromptFits,
  type CompletionEvent,
  corgiCompletionEvents,
  plainCompletionEvents,
} from '../openai/completion-events.ts';
import { toOpenAIError } from '../openai/openai-error.ts';
import type { Owner, SessionService } from '../session-service.ts';

export interface ChatCompletionRouteDeps {
  pool: pg.Pool;
  policy: PolicySource;
  sessions: SessionService;
  metrics: ServerMetrics;
  ownerOf: (req: unknown) => Owner;
}

/**
 * Any `model` is served by the live policy (clients often hard-code one), except a registered
 * version this server is not serving: asking for it by name and silently getting another would mislead.
 */
async function assertModelServed(pool: pg.Pool, model: string | undefined, serving: string): Promise<void> {
  if (model === undefined || model === serving) return;
  const registered = await getPolicyVersion(pool, model);
  if (registered) {
    throw new HttpError(
      404,
      'model_not_found',
      `model: version ${model} is registered (${registered.status}) but this server serves ${serving}; ` +
        'promote it to serve it, or omit model',
    );
  }
}

function openEventStream(res: Response): (data: unknown) => void {
  res.status(200).set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
  return (data) => {
    if (!res.writableEnded && !res.destroyed)
      res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  };
}

export function chatCompletionRoutes(deps: ChatCompletionRouteDeps) {
  const router = Router();

  router.post('/v1/chat/completions', async (req, res) => {
    const request = parseChatRequest(req.body);
    const policy = deps.policy.current();
    await assertModelServed(deps.pool, request.model, policy.version);
    // The client going away cancels the generation or the session (its partial turn kept as cancelled).
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });

    let id: string;
    let events: AsyncGenerator<CompletionEvent>;
    if (request.mode === 'corgi') {
      const { session } = request;
      const started = await deps.sessions
        .start(session, deps.ownerOf(req), gone.signal)
        .catch((error: unknown) => {
          // The session service names its own field; here the prompt is the user message.
          if (HttpError.isInstance(error) && error.code === 'prompt_too_long')
            throw new HttpError(400, error.code, error.message.replace(/^prompt:/, 'messages[0].content:'));
          throw error;
        });
      id = `chatcmpl-${started.sessionId}`;
      events = corgiCompletionEvents({
        sessionId: started.sessionId,
        parts: started.parts,
        maxAttempts: session.maxAttempts,
        sampling: session.sampling,
        policy: () => deps.policy.current(),
      });
    } else {
      assertPromptFits(policy, request.messages, request.sampling);
      id = `chatcmpl-${randomUUID()}`;
      events = plainCompletionEvents({
        policy,
        messages: request.messages,
        sampling: request.sampling,
        signal: gone.signal,
        metrics: deps.metrics,
      });
    }
    deps.metrics.chatCompletions.inc({ mode: request.mode });
    const created = Math.floor(Date.now() / 1000);

    if (!request.stream) {
      let content = '';
      let reasoning = '';
      for await (const event of events) {
        if (event.type === 'content') content += event.text;
        else if (event.type === 'reasoning') reasoning += event.text;
        else {
          res.json({
            id,
            object: 'chat.completion',
            created,
            model: event.model,
            choices: [
              {
                index: 0,
                message: {
                  role: 'assistant',
                  content,
                  ...(request.mode === 'corgi' ? { reasoning_content: reasoning } : {}),
                },
                logprobs: null,
                finish_reason: event.finishReason,
              },
            ],
            usage: event.usage,
            ...(event.corgi ? { corgi: event.corgi } : {}),
          });
        }
      }
      return;
    }

    const send = openEventStream(res);
    // Chunks carry the version live when the request came; the corgi object names each attempt's.
    const usageNull = request.includeUsage ? { usage: null } : {};
    const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: policy.version,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...usageNull,
    });
    send(chunk({ role: 'assistant', content: '' }));
    try {
      for await (const event of events) {
        if (event.type === 'content') send(chunk({ content: event.text }));
        else if (event.type === 'reasoning') send(chunk({ reasoning_content: event.text }));
        else {
          const corgi = event.corgi ? { corgi: event.corgi } : {};
          // The finish chunk carries the corgi object, and so does the usage chunk after it when asked,
          // so the last chunk always has it and clients that drop choice-less chunks still see it.
          send({ ...chunk({}, event.finishReason), ...corgi });
          if (request.includeUsage) send({ ...chunk({}), choices: [], usage: event.usage, ...corgi });
        }
      }
      send('[DONE]');
    } catch (error) {
      send(toOpenAIError(error).body);
    }
    res.end();
  });

  return router;
}
