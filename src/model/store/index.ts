/** The model store: pull, import, list, remove, and what a policy spec names. */
export { type DefaultModelPull, type DefaultModelStatus, startDefaultModelPull } from './default-model.ts';
export { checkGgufFile, type GgufSummary, SUPPORTED_TENSOR_TYPES } from './gguf-check.ts';
export { type ImportOptions, type ImportResult, importModel } from './import-model.ts';
export { type InstalledModel, listModels, removeModel } from './list-models.ts';
export { type ModelManifest, modelDir, readManifest } from './manifest.ts';
export { ModelStoreError, type ModelStoreErrorCode } from './model-store-error.ts';
export { createProgressReporter, type ProgressListener, type PullProgress } from './progress.ts';
export { type PullOptions, type PullResult, parseHubSpec, pullModel } from './pull-model.ts';
export { DEFAULT_MODEL_NAME, MODEL_REGISTRY, type RegistryEntry } from './registry.ts';
export { expandStoreName, type ResolvedPolicySpec, resolvePolicySpec } from './resolve-policy-spec.ts';
