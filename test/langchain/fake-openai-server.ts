/**
 * A small OpenAI-compatible server on a loopback port, speaking what vLLM speaks: streamed chat
 * completions as Server-Sent Events (with `logprobs` and `return_tokens_as_token_ids`, and the
 * usage chunk for `stream_options.include_usage`), JSON completions, and vLLM's runtime LoRA
 * endpoints (`/v1/load_lora_adapter`, `/v1/unload_lora_adapter`), which check the adapter directory
 * the way vLLM does (adapter_config.json + adapter_model.safetensors). Every request is recorded.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface ChatRequestBody {
  model: string;
  messages: { role: string; content: string }[];
  stream?: boolean;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  max_tokens?: number;
  seed?: number;
  stop?: string[];
  logprobs?: boolean;
  return_tokens_as_token_ids?: boolean;
  stream_options?: { include_usage?: boolean };
}

export interface FakeReply {
  /** The reply's pieces, one SSE chunk each. */
  pieces: string[];
  finishReason?: 'stop' | 'length';
  /** Milliseconds between chunks. */
  delayMs?: number;
  /** Answer with this HTTP status and error message instead. */
  error?: { status: number; message: string };
}

export interface FakeOpenAIServer {
  baseURL: string;
  requests: { path: string; headers: IncomingMessage['headers']; body: unknown }[];
  /** Adapters loaded through /v1/load_lora_adapter, by name (value: their adapter_config.json). */
  adapters: Map<string, { path: string; config: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** Each piece's token id in `token_id:<id>` answers: its position in the reply plus 100. */
export const fakeTokenId = (index: number) => 100 + index;
/** Each piece's log-prob: −0.1 × (position + 1). */
export const fakeLogprob = (index: number) => -0.1 * (index + 1);

export async function startFakeOpenAIServer(
  reply: (body: ChatRequestBody) => FakeReply,
  {
    baseModel = 'base-model',
    maxLoraRank = 64,
  }: {
    baseModel?: string;
    /** vLLM's `--max-lora-rank`: an adapter of a higher rank is refused, as vLLM refuses it. */
    maxLoraRank?: number;
  } = {},
): Promise<FakeOpenAIServer> {
  const requests: FakeOpenAIServer['requests'] = [];
  const adapters: FakeOpenAIServer['adapters'] = new Map();
  const server: Server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = raw ? JSON.parse(raw) : undefined;
    requests.push({ path: req.url ?? '', headers: req.headers, body });
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      // vLLM's (and OpenAI's) error body; the OpenAI SDK reads the message from `error.message`.
      res.end(JSON.stringify({ error: { message, type: 'BadRequestError', param: null, code: status } }));
    };

    if (req.url === '/v1/load_lora_adapter') {
      const { lora_name: name, lora_path: path } = body as { lora_name?: string; lora_path?: string };
      if (!name || !path) return fail(400, 'Both lora_name and lora_path must be provided.');
      if (adapters.has(name)) return fail(400, `The lora adapter '${name}' has already been loaded.`);
      if (
        !existsSync(join(path, 'adapter_config.json')) ||
        !existsSync(join(path, 'adapter_model.safetensors'))
      ) {
        return fail(404, `No adapter found for ${path}`);
      }
      const config = JSON.parse(readFileSync(join(path, 'adapter_config.json'), 'utf8'));
      if (config.r > maxLoraRank) {
        return fail(400, `LoRA rank ${config.r} is greater than max_lora_rank ${maxLoraRank}.`);
      }
      adapters.set(name, { path, config });
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(`Success: LoRA adapter '${name}' added successfully.`);
    }
    if (req.url === '/v1/unload_lora_adapter') {
      const { lora_name: name } = body as { lora_name?: string };
      if (!name || !adapters.delete(name)) return fail(404, `The lora adapter '${name}' cannot be found.`);
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(`Success: LoRA adapter '${name}' removed successfully.`);
    }
    if (req.url !== '/v1/chat/completions') return fail(404, `no route ${req.url}`);

    const chat = body as ChatRequestBody;
    if (chat.model !== baseModel && !adapters.has(chat.model)) {
      return fail(404, `The model \`${chat.model}\` does not exist.`);
    }
    const answer = reply(chat);
    if (answer.error) return fail(answer.error.status, answer.error.message);
    const id = 'chatcmpl-fake';
    const logprobsOf = (piece: string, index: number) =>
      chat.logprobs
        ? {
            content: [
              {
                token: chat.return_tokens_as_token_ids ? `token_id:${fakeTokenId(index)}` : piece,
                logprob: fakeLogprob(index),
                bytes: null,
                top_logprobs: [],
              },
            ],
          }
        : null;
    const finish = answer.finishReason ?? 'stop';
    if (!chat.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created: 1,
          model: chat.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: answer.pieces.join('') },
              finish_reason: finish,
            },
          ],
          usage: {
            prompt_tokens: 7,
            completion_tokens: answer.pieces.length,
            total_tokens: 7 + answer.pieces.length,
          },
        }),
      );
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
    const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      id,
      object: 'chat.completion.chunk',
      created: 1,
      model: chat.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: null, ...extra }],
    });
    send(chunk({ role: 'assistant', content: '' }));
    for (const [index, piece] of answer.pieces.entries()) {
      if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
      if (res.destroyed) return; // the client went away (an abort)
      const last = index === answer.pieces.length - 1;
      send(
        chunk(
          { content: piece },
          { logprobs: logprobsOf(piece, index), finish_reason: last ? finish : null },
        ),
      );
    }
    if (chat.stream_options?.include_usage) {
      send({
        id,
        object: 'chat.completion.chunk',
        created: 1,
        model: chat.model,
        choices: [],
        usage: {
          prompt_tokens: 7,
          completion_tokens: answer.pieces.length,
          total_tokens: 7 + answer.pieces.length,
        },
      });
    }
    res.end('data: [DONE]\n\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    adapters,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
