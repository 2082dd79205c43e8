/**
 * socket.io wiring: `session:start` (with ack) and `session:cancel`. Every payload is parsed
 * with zod; a bad one gets `session:error` and the connection stays up. A disconnect cancels
 * the socket's running sessions.
 */
import type { Server, Socket } from 'socket.io';
import {
  type ClientToServerEvents,
  type ServerToClientEvents,
  type SocketData,
  toClientEvent,
} from './events.ts';
import { type ErrorBody, toErrorBody } from './http-error.ts';
import { parseOrThrow, parseSessionStart, SessionCancelSchema } from './schemas.ts';
import type { SessionService } from './session-service.ts';

type CorgiSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
export type CorgiIo = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export function attachSessionSockets(io: CorgiIo, sessions: SessionService): void {
  io.on('connection', (socket: CorgiSocket) => {
    const owner = { apiKeyId: socket.data.apiKeyId ?? null };
    const disconnected = new AbortController();
    socket.on('disconnect', () => disconnected.abort());

    const reject = (error: unknown, ack?: (response: { error: ErrorBody }) => void) => {
      const { body } = toErrorBody(error, sessions.logger);
      if (typeof ack === 'function') ack({ error: body });
      socket.emit('session:error', body);
    };

    socket.on('session:start', async (...args: unknown[]) => {
      // `emit('session:start', ack)` with no payload: socket.io hands the ack over as the first argument.
      const ack = (typeof args.at(-1) === 'function' ? args.pop() : undefined) as
        | ((response: { sessionId: string } | { error: ErrorBody }) => void)
        | undefined;
      const payload = args[0];
      let started: Awaited<ReturnType<SessionService['start']>>;
      try {
        started = await sessions.start(parseSessionStart(payload), owner, disconnected.signal);
      } catch (error) {
        reject(error, ack);
        return;
      }
      if (typeof ack === 'function') ack({ sessionId: started.sessionId });
      try {
        for await (const part of started.parts) {
          const message = toClientEvent(started.sessionId, part);
          if (message) socket.emit(message.event, message.data as never);
        }
      } catch (error) {
        // The store failed mid-session: tell the client; what it saw acknowledged is durable.
        const { body } = toErrorBody(error, sessions.logger);
        socket.emit('session:error', { sessionId: started.sessionId, ...body });
      }
    });

    socket.on('session:cancel', (payload) => {
      try {
        const { sessionId } = parseOrThrow(SessionCancelSchema, payload);
        if (!sessions.cancel(sessionId, owner)) {
          socket.emit('session:error', {
            sessionId,
            code: 'not_found',
            message: 'sessionId: no running session with this id',
          });
        }
      } catch (error) {
        reject(error);
      }
    });
  });
}
