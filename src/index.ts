/** The package's public surface. */
export * from './checkers/index.ts';
export type {
  ChatMessage,
  ChatPolicy,
  GenerateOptions,
  Generation,
  GenerationChunk,
  PolicySource,
  SamplingOptions,
} from './policy/types.ts';
export { renderFeedback, renderInstruction } from './session/render.ts';
export {
  DEFAULT_MAX_ATTEMPTS,
  runSession,
  type SessionOptions,
  type SessionPart,
  type SessionRequest,
} from './session/session-runner.ts';
