/**
 * The socket.io clients of bench/serve.ts, run in a worker thread. They live on their own event
 * loop so their clocks are the clients' clocks: in the server's thread an event could only be
 * read once the server's current decode step had finished, which hid prefill time from the
 * per-attempt time to first token. Each client has its own websocket and runs one session at a
 * time from a shared queue; connections stay open from one run to the next.
 *
 * Protocol: the parent posts `ClientsRequest`s one at a time; each is answered by a `QueueResult`.
 */
import { parentPort } from 'node:worker_threads';
import { io as connect, type Socket } from 'socket.io-client';
import {
  benchLog,
  type QueueResult,
  runQueue,
  type SessionRecord,
  SessionRecorder,
} from './serve-session.ts';

export interface ClientsRequest {
  url: string;
  /** `session:start` payloads, in order. */
  payloads: unknown[];
  clients: number;
  /** A session without `session:end` after this long is recorded as an error. */
  timeoutMs: number;
  /** Cycle through `payloads` for this long instead of running each once (bench/load.ts). */
  durationMs?: number;
  /** The progress lines' prefix. @default 'bench:serve' */
  bench?: string;
}

function openSocket(url: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // forceNew: one websocket per client; without it socket.io-client multiplexes every socket
    // to the same URL over one connection, which is not what 64 users look like.
    const socket = connect(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

/** One session over a socket that runs nothing else meanwhile. */
function runOverSocket(socket: Socket, payload: unknown, timeoutMs: number): Promise<SessionRecord> {
  return new Promise((resolve) => {
    const recorder = new SessionRecorder();
    let sessionId: string | undefined;
    // The ack comes before any of the session's events, but check the id anyway once known.
    const mine = (data: { sessionId?: string }) => sessionId === undefined || data.sessionId === sessionId;
    const onAttemptStart = (data: { sessionId: string }) => mine(data) && recorder.attemptStart();
    const onToken = (data: { sessionId: string }) => mine(data) && recorder.token();
    const onAttemptEnd = (data: { sessionId: string; text: string }) =>
      mine(data) && recorder.attemptEnd(data.text);
    const onEnd = (data: { sessionId: string; ok: boolean; attempts: number }) =>
      mine(data) && finish(recorder.end(data.ok, data.attempts));
    const onError = (data: { code: string; message: string }) =>
      finish(recorder.fail(`${data.code}: ${data.message}`));
    const onDisconnect = (reason: string) => finish(recorder.fail(`disconnected: ${reason}`));
    const timer = setTimeout(
      () => finish(recorder.fail(`no session:end after ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    const listeners = {
      'attempt:start': onAttemptStart,
      token: onToken,
      'attempt:end': onAttemptEnd,
      'session:end': onEnd,
      'session:error': onError,
      disconnect: onDisconnect,
    } as const;
    function finish(record: SessionRecord) {
      clearTimeout(timer);
      for (const [event, listener] of Object.entries(listeners)) socket.off(event, listener);
      resolve(record);
    }
    for (const [event, listener] of Object.entries(listeners)) socket.on(event, listener);
    socket.emit(
      'session:start',
      payload,
      (ack: { sessionId?: string; error?: { code: string; message: string } }) => {
        if (ack.error) finish(recorder.fail(`${ack.error.code}: ${ack.error.message}`));
        else sessionId = ack.sessionId;
      },
    );
  });
}

/** Open connections, kept across runs: users stay connected between sessions. */
const sockets: Socket[] = [];

async function runClients({
  url,
  payloads,
  clients,
  timeoutMs,
  durationMs,
  bench = 'bench:serve',
}: ClientsRequest): Promise<QueueResult> {
  // Connecting is not part of a session: every client is connected before the clock starts.
  const needed = durationMs === undefined ? Math.min(clients, payloads.length) : clients;
  const opened = await Promise.all(
    Array.from({ length: Math.max(0, needed - sockets.length) }, () => openSocket(url)),
  );
  sockets.push(...opened);
  for (const socket of sockets) {
    if (!socket.connected) throw new Error('a client lost its connection between runs');
  }
  return runQueue(
    'server',
    payloads,
    clients,
    (worker, payload) => runOverSocket(sockets[worker], payload, timeoutMs),
    benchLog(bench),
    durationMs === undefined ? {} : { durationMs },
  );
}

const port = parentPort;
if (!port) throw new Error('bench/serve-clients.ts runs as a worker thread of bench/serve.ts');
port.on('message', (request: ClientsRequest) => {
  runClients(request).then(
    (result) => port.postMessage({ ok: true, result }),
    (error: Error) => port.postMessage({ ok: false, error: error.message }),
  );
});
