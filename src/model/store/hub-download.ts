/**
 * One file from the Hugging Face Hub (or anything speaking its `resolve` endpoint at `hubUrl`),
 * through `@huggingface/hub`, into a partial file that a later pull resumes with an HTTP Range
 * request. A connection cut mid-file is retried from where it stopped.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { appendHashed, checkDigest, hashExistingPrefix } from './hashed-file.ts';
import { ModelStoreError } from './model-store-error.ts';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

export interface HubFetchOptions {
  /** The Hub's base URL (the command layer passes `HF_ENDPOINT`). @default https://huggingface.co */
  hubUrl?: string;
  /** Sent as a Bearer token (the command layer passes `HF_TOKEN`). */
  accessToken?: string;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** How long the first request may take before the Hub counts as unreachable. @default 10000 */
  probeTimeoutMs?: number;
  /** Fresh connections after a cut before giving up. @default 3 */
  retries?: number;
}

export interface HubDownloadResult {
  sha256: string;
  size: number;
  /** The commit the Hub resolved the revision to (`X-Repo-Commit`), else the revision asked for. */
  revision: string;
}

/** A sha256 when an ETag is one (the Hub's ETag of an LFS file is its sha256). */
export function sha256FromEtag(etag: string): string | undefined {
  const bare = etag.replace(/^W\//, '').replace(/"/g, '');
  return /^[0-9a-f]{64}$/.test(bare) ? bare : undefined;
}

function isNetworkFailure(error: unknown): boolean {
  return error instanceof TypeError || (error as Error)?.name === 'TimeoutError';
}

/** Maps a failure of the Hub client to the store's error, naming the file. */
export function toHubError(error: unknown, what: string, hubUrl: string): unknown {
  if (ModelStoreError.isInstance(error)) return error;
  if ((error as Error)?.name === 'AbortError') {
    return new ModelStoreError('aborted', `${what}: pull aborted`, { cause: error });
  }
  // HubApiError, recognised by shape: the Hub client is imported lazily.
  const status = (error as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number') {
    const auth = status === 401 || status === 403;
    return new ModelStoreError(
      auth ? 'invalid_input' : 'network',
      `${what}: the Hub answered ${status}${auth ? ' (gated or private: set HF_TOKEN)' : ''}`,
      { cause: error },
    );
  }
  if (isNetworkFailure(error)) {
    const cause = (error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    return new ModelStoreError('network', `${what}: cannot reach ${hubUrl} (${cause})`, { cause: error });
  }
  return error;
}

/** Adds `signal` (and for the probe, a timeout) to every request the Hub client makes. */
function withSignal(base: typeof fetch, signal: AbortSignal | undefined, onResponse?: (r: Response) => void) {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const response = await base(input, { ...init, signal: signal ?? init?.signal });
    onResponse?.(response);
    return response;
  }) as typeof fetch;
}

interface PartialState {
  etag: string;
  size: number;
}

async function readPartialState(path: string): Promise<PartialState | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as PartialState;
  } catch {
    return null;
  }
}

/**
 * Downloads `repo@revision:file` to `dest`, resuming a partial `dest` left by an earlier pull of
 * the same file version (same ETag and size), and checks size and sha256 (`expected.sha256`, else
 * the ETag when it is one).
 * @throws ModelStoreError `network`, `invalid_input` (no such file), `truncated`, `checksum_mismatch`, `aborted`
 */
export async function downloadHubFile(
  { repo, revision, file }: { repo: string; revision: string; file: string },
  dest: string,
  {
    hubUrl = DEFAULT_HUB_URL,
    accessToken,
    fetch: baseFetch = globalThis.fetch,
    signal,
    probeTimeoutMs = 10_000,
    retries = 3,
    expected = {},
    onBytes,
  }: HubFetchOptions & {
    expected?: { sha256?: string; size?: number };
    onBytes?: (bytes: number, total: number) => void;
  },
): Promise<HubDownloadResult> {
  const what = `hf:${repo}@${revision}:${file}`;
  // Loaded here, not at module load: it costs most of a second, and every `corgi` command would pay it.
  const { downloadFile, fileDownloadInfo } = await import('@huggingface/hub');
  let resolvedRevision = revision;
  const probeSignal = AbortSignal.any([...(signal ? [signal] : []), AbortSignal.timeout(probeTimeoutMs)]);
  const info = await fileDownloadInfo({
    repo,
    path: file,
    revision,
    hubUrl,
    accessToken,
    fetch: withSignal(baseFetch, probeSignal, (response) => {
      resolvedRevision = response.headers.get('x-repo-commit') ?? resolvedRevision;
    }),
  }).catch((error) => {
    throw toHubError(error, what, hubUrl);
  });
  if (!info) throw new ModelStoreError('invalid_input', `${what}: no such file in the repository`);

  const etagSha = sha256FromEtag(info.etag);
  const wanted = { size: expected.size ?? info.size, sha256: expected.sha256 ?? etagSha };
  if (expected.size !== undefined && info.size !== expected.size) {
    throw new ModelStoreError(
      'checksum_mismatch',
      `${what}: the Hub has ${info.size} bytes, expected ${expected.size}`,
    );
  }
  if (expected.sha256 && etagSha && etagSha !== expected.sha256) {
    throw new ModelStoreError(
      'checksum_mismatch',
      `${what}: the Hub's sha256 is ${etagSha}, expected ${expected.sha256}; nothing was downloaded`,
    );
  }

  const statePath = `${dest}.state.json`;
  const state = await readPartialState(statePath);
  const resumable = state?.etag === info.etag && state.size === info.size;
  if (!resumable) await rm(dest, { force: true });
  await writeFile(statePath, JSON.stringify({ etag: info.etag, size: info.size } satisfies PartialState));

  const blob = await downloadFile({
    repo,
    path: file,
    revision,
    hubUrl,
    accessToken,
    downloadInfo: info,
    fetch: withSignal(baseFetch, signal),
  }).catch((error) => {
    throw toHubError(error, what, hubUrl);
  });
  if (!blob) throw new ModelStoreError('invalid_input', `${what}: no such file in the repository`);

  if (resumable && (await hashExistingPrefix(dest)).bytes > info.size) await rm(dest, { force: true });
  const { hash, bytes: already } = await hashExistingPrefix(dest);
  let offset = already;
  // A cut after some progress is retried at once; `retries` cuts in a row with none give up.
  let stalls = 0;
  while (offset < info.size) {
    const before = offset;
    try {
      const stream = blob.slice(offset).stream() as unknown as AsyncIterable<Uint8Array>;
      await appendHashed(dest, stream, {
        offset,
        hash,
        signal,
        onBytes: (bytes) => {
          offset = bytes;
          onBytes?.(bytes, info.size);
        },
      });
      if (offset < info.size) throw new Error(`the connection closed after ${offset} of ${info.size} bytes`);
    } catch (error) {
      if (signal?.aborted) throw new ModelStoreError('aborted', `${what}: pull aborted`, { cause: error });
      if (ModelStoreError.isInstance(error)) throw error;
      stalls = offset === before ? stalls + 1 : 0;
      if (stalls > retries) {
        throw new ModelStoreError(
          offset > 0 ? 'truncated' : 'network',
          `${what}: download stopped at byte ${offset} of ${info.size} (${(error as Error).message}); run the pull again to resume`,
          { cause: error },
        );
      }
    }
  }
  const sha256 = hash.digest('hex');
  try {
    checkDigest(what, { size: offset, sha256 }, wanted);
  } catch (error) {
    // Bad bytes must not be resumed from.
    await rm(dest, { force: true });
    await rm(statePath, { force: true });
    throw error;
  }
  await rm(statePath, { force: true });
  return { sha256, size: offset, revision: resolvedRevision };
}
