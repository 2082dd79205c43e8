/**
 * The client-facing events (the socket.io contract, docs/service.md), typed for socket.io, and the one
 * mapping from session-runner parts to them that socket.io and Server-Sent Events share.
 */
import type { CheckResult } from '../checkers/registry.ts';
import type { SessionPart } from '../session/session-runner.ts';
import type { ErrorBody } from './http-error.ts';

export interface ServerToClientEvents {
  'attempt:start': (data: { sessionId: string; attempt: number; policyVersion: string }) => void;
  token: (data: { sessionId: string; attempt: number; text: string }) => void;
  'attempt:end': (data: { sessionId: string; attempt: number; text: string; check: CheckResult }) => void;
  /** The feedback turn sent back to the model before the next attempt (an addition to the contract). */
  feedback: (data: { sessionId: string; attempt: number; text: string }) => void;
  'session:end': (data: { sessionId: string; ok: boolean; bestScore: number; attempts: number }) => void;
  'session:error': (data: { sessionId?: string } & ErrorBody) => void;
  /** Broadcast when a new policy version goes live. */
  'policy:swap': (data: { version: string }) => void;
}

export type StartAck = { sessionId: string } | { error: ErrorBody };

export interface ClientToServerEvents {
  'session:start': (payload: unknown, ack?: (response: StartAck) => void) => void;
  'session:cancel': (payload: unknown) => void;
}

export interface SocketData {
  apiKeyId: string | null;
}

export type ClientEvent = {
  [E in keyof ServerToClientEvents]: { event: E; data: Parameters<ServerToClientEvents[E]>[0] };
}[keyof ServerToClientEvents];

/** The client event for a part, or null for parts clients do not see (the instruction turn). */
export function toClientEvent(sessionId: string, part: SessionPart): ClientEvent | null {
  switch (part.type) {
    case 'user-turn':
      return part.kind === 'feedback'
        ? { event: 'feedback', data: { sessionId, attempt: part.attempt, text: part.text } }
        : null;
    case 'attempt:start':
      return {
        event: 'attempt:start',
        data: { sessionId, attempt: part.attempt, policyVersion: part.policyVersion },
      };
    case 'token':
      return { event: 'token', data: { sessionId, attempt: part.attempt, text: part.text } };
    case 'attempt:end':
      return {
        event: 'attempt:end',
        data: { sessionId, attempt: part.attempt, text: part.text, check: part.check },
      };
    case 'session:end':
      return {
        event: 'session:end',
        data: { sessionId, ok: part.ok, bestScore: part.bestScore, attempts: part.attempts },
      };
    case 'error':
      return { event: 'session:error', data: { sessionId, code: part.code, message: part.message } };
  }
}
