/**
 * What a policy spec names (`--policy`, `CORGI_POLICY`, eval, train, promote): a model in the
 * store, a checkpoint directory, a GGUF file, or a remote OpenAI-compatible server.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MANIFEST_FILE, type ModelManifest, manifestSchema, modelDir, modelsRoot } from './manifest.ts';
import { ModelStoreError } from './model-store-error.ts';
import { MODEL_REGISTRY } from './registry.ts';

export type ResolvedPolicySpec =
  | { kind: 'gguf'; path: string; manifest?: ModelManifest }
  | { kind: 'checkpoint'; dir: string; manifest?: ModelManifest }
  | { kind: 'remote'; baseURL: string; model: string; vllm: boolean };

const NAME_LIKE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function readManifestSync(dir: string): ModelManifest | undefined {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) return undefined;
  const parsed = manifestSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  return parsed.success ? parsed.data : undefined;
}

function fromManifest(dir: string, manifest: ModelManifest): ResolvedPolicySpec {
  return manifest.format === 'gguf'
    ? { kind: 'gguf', path: join(dir, manifest.file), manifest }
    : { kind: 'checkpoint', dir, manifest };
}

function parseRemote(spec: string, field: string): ResolvedPolicySpec | undefined {
  const remote = /^(openai|vllm):(.*)$/s.exec(spec);
  if (!remote) return undefined;
  const [, scheme, rest] = remote;
  const hash = rest.lastIndexOf('#');
  let url: URL | undefined;
  try {
    url = new URL(rest.slice(0, Math.max(hash, 0)));
  } catch {
    url = undefined;
  }
  if (hash < 0 || hash === rest.length - 1 || !url || !/^https?:$/.test(url.protocol)) {
    throw new ModelStoreError(
      'invalid_input',
      `${field}: expected ${scheme}:<http(s) baseURL>#<model> (for example ${scheme}:http://127.0.0.1:8000/v1#my-model), got "${spec}"`,
    );
  }
  return {
    kind: 'remote',
    baseURL: rest.slice(0, hash).replace(/\/+$/, ''),
    model: rest.slice(hash + 1),
    vllm: scheme === 'vllm',
  };
}

function installedNames(dataDir: string): string[] {
  try {
    return readdirSync(modelsRoot(dataDir)).filter(
      (name) => !name.startsWith('.') && existsSync(join(modelsRoot(dataDir), name, MANIFEST_FILE)),
    );
  } catch {
    return [];
  }
}

/**
 * Resolves a policy spec. A plain word is a store name first (`smollm2-135m-instruct`), then a
 * path; anything else is a path: a `.gguf` file, a directory with `config.json` (a checkpoint), or a
 * store model directory (it has a manifest). `openai:<baseURL>#<model>` and `vllm:…` are remote.
 * @throws ModelStoreError `invalid_input` naming `field` and the spec when nothing matches
 */
export function resolvePolicySpec(
  spec: string,
  { dataDir, field = 'policy' }: { dataDir: string; field?: string },
): ResolvedPolicySpec {
  if (spec.trim() === '') {
    throw new ModelStoreError(
      'invalid_input',
      `${field}: empty; expected a model name, a directory, a .gguf file or openai:<baseURL>#<model>`,
    );
  }
  const remote = parseRemote(spec, field);
  if (remote) return remote;

  if (NAME_LIKE.test(spec)) {
    const dir = modelDir(dataDir, spec);
    const manifest = readManifestSync(dir);
    if (manifest) return fromManifest(dir, manifest);
  }
  const path = resolve(spec);
  const stats = statSync(path, { throwIfNoEntry: false });
  if (stats?.isFile() && path.toLowerCase().endsWith('.gguf')) return { kind: 'gguf', path };
  if (stats?.isDirectory()) {
    const manifest = readManifestSync(path);
    if (manifest) return fromManifest(path, manifest);
    if (existsSync(join(path, 'config.json'))) return { kind: 'checkpoint', dir: path };
  }

  const known = MODEL_REGISTRY.find((entry) => entry.name === spec);
  const hint = known
    ? `${spec} is not installed yet: run \`corgi pull ${spec}\``
    : `installed models: ${installedNames(dataDir).join(', ') || 'none'}`;
  const what = stats?.isFile()
    ? 'a file that is not a .gguf'
    : stats?.isDirectory()
      ? 'a directory without config.json or a model manifest'
      : 'neither an installed model nor an existing path';
  throw new ModelStoreError(
    'invalid_input',
    `${field}: "${spec}" is ${what}; expected a store model name, a checkpoint directory, a .gguf file or openai:<baseURL>#<model> (${hint})`,
  );
}

/**
 * A store name replaced by the path of that model (its GGUF file, or its directory for HF
 * layout); any other spec is returned unchanged. For commands whose loaders take paths.
 */
export function expandStoreName(spec: string, { dataDir }: { dataDir: string }): string {
  if (!NAME_LIKE.test(spec)) return spec;
  const dir = modelDir(dataDir, spec);
  const manifest = readManifestSync(dir);
  if (!manifest) return spec;
  const resolved = fromManifest(dir, manifest);
  return resolved.kind === 'gguf' ? resolved.path : resolved.kind === 'checkpoint' ? resolved.dir : spec;
}
