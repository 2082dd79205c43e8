/**
 * The package's public surface (`import { ... } from 'corgi-live'`): the checkers, the session
 * runner, the policies, the LangChain integration and the trajectory export. Built to dist/ with
 * types by `npm run build` (run by `npm pack` / `npm publish`).
 */
export * from './checkers/index.ts';
export { CorgiError } from './common/errors.ts';
export { type Database, type DatabaseOptions, openDatabase } from './db/database.ts';
export {
  EXPORT_FORMATS,
  type ExportFormat,
  type ExportOptions,
  type ExportRecord,
  exportOptionsSchema,
  exportSessions,
  writeExport,
} from './export/export-sessions.ts';
export { checkerTool, checkerToolName, checkerTools, createCheckTool } from './langchain/checker-tools.ts';
export {
  CorgiChatModel,
  type CorgiChatModelCallOptions,
  type CorgiChatModelFields,
  DEFAULT_POLICY_SPEC,
} from './langchain/corgi-chat-model.ts';
export {
  type CheckerFeedbackAttempt,
  type CheckerFeedbackInput,
  type CheckerFeedbackOptions,
  type CheckerFeedbackPart,
  type CheckerFeedbackResult,
  CheckerFeedbackRunnable,
  withCheckerFeedback,
} from './langchain/with-checker-feedback.ts';
export { type BackendName, selectBackend } from './model/tfjs/backend.ts';
export { LlamaCppPolicy, type LlamaCppPolicySpec } from './policy/llama-cpp-policy.ts';
export { PolicyRegistry } from './policy/policy-registry.ts';
export {
  type ChatModelPolicyOptions,
  chatModelPolicy,
  checkPolicySpec,
  createRemotePolicy,
  loadPolicyFromSpec,
  loadVllmLoraAdapter,
  type PolicySpec,
  parsePolicySpec,
  type RemotePolicyOptions,
  unloadVllmLoraAdapter,
  VllmAdapterError,
  type VllmAdapterRequest,
} from './policy/remote-policy.ts';
export { type ServingLoaderOptions, servingPolicyLoader } from './policy/serving-loader.ts';
export {
  type ChatMessage,
  type ChatPolicy,
  fixedPolicy,
  type GenerateOptions,
  type Generation,
  type GenerationChunk,
  type PolicySource,
  type SamplingOptions,
} from './policy/types.ts';
export { renderFeedback, renderInstruction } from './session/render.ts';
export {
  DEFAULT_MAX_ATTEMPTS,
  runSession,
  type SessionOptions,
  type SessionPart,
  type SessionRequest,
} from './session/session-runner.ts';
