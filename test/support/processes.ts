/**
 * Real processes for the tests that run `corgi` as deployed (the fault tests, `corgi serve` end to
 * end): a PostgreSQL database of their own (what `corgi serve`, `corgi trainer` and `corgi promote`
 * use through `DATABASE_URL`, in its public schema, as a deployment would) or the embedded one,
 * `corgi` children, and waiting for a line on a child's stderr. Commands run to completion:
 * run-corgi.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { TEST_DATABASE_URL } from './database.ts';
import { CORGI_BIN } from './run-corgi.ts';

/**
 * The environment of a `corgi` child: this process's, its data in `dataDir`, then `vars`. Unless
 * `vars` names a `DATABASE_URL`, an inherited one is dropped, so the child uses the embedded database.
 */
export function corgiEnv(dataDir: string, vars: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CORGI_DATA_DIR: dataDir, ...vars };
  if (vars.DATABASE_URL === undefined) delete env.DATABASE_URL;
  return env;
}

export interface ScratchDatabase {
  name: string;
  /** Its connection string (public schema). */
  url: string;
  /** A connection to the test server's maintenance database (`test`), for the test's own queries. */
  admin: pg.Client;
  drop(): Promise<void>;
}

/** Creates an empty database `<prefix>_<random>` on the test PostgreSQL; `drop()` removes it. */
export async function createScratchDatabase(prefix: string): Promise<ScratchDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  return {
    name,
    url: url.toString(),
    admin,
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await admin.end();
    },
  };
}

export interface CorgiProcess {
  child: ChildProcess;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the first match of `pattern` on stderr (now or later); rejects if it exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Resolves once it has exited, with its code or signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `node [nodeArgs] bin/corgi.js args`, collecting its stderr. */
export function spawnCorgi(
  args: string[],
  { env = process.env, nodeArgs = [] }: { env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {},
): CorgiProcess {
  const child = spawn(process.execPath, [...nodeArgs, CORGI_BIN, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
    for (const watch of watchers) watch();
  });
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const watch of watchers) watch();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    stderr: () => stderr,
    exited,
    waitFor(pattern, timeoutMs = 180_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`no ${pattern} on stderr within ${timeoutMs / 1000} s:\n${stderr}`));
        }, timeoutMs);
        function check() {
          const match = pattern.exec(stderr);
          if (match || child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            watchers.delete(check);
            if (match) resolve(match);
            else
              reject(
                new Error(`exited (${child.exitCode ?? child.signalCode}) before ${pattern}:\n${stderr}`),
              );
          }
        }
        watchers.add(check);
        check();
      });
    },
  };
}

export type ServeProcess = CorgiProcess & { url: string };

/**
 * `corgi serve` on a free loopback port; resolves with its URL once it listens. If it does not
 * within `timeoutMs` (or exits first), it is killed and the promise rejects with its stderr.
 */
export async function startServe(
  args: string[],
  env: NodeJS.ProcessEnv,
  { timeoutMs, nodeArgs }: { timeoutMs?: number; nodeArgs?: string[] } = {},
): Promise<ServeProcess> {
  const server = spawnCorgi(['serve', '--port', '0', ...args], { env, nodeArgs });
  try {
    const [, url] = await server.waitFor(/CORGI Live on (http:\/\/\S+)/, timeoutMs);
    return { ...server, url };
  } catch (error) {
    await killHard(server);
    throw error;
  }
}

/** SIGKILL: no handler runs, nothing is flushed or closed; resolves once it is gone. */
export async function killHard(target: CorgiProcess): Promise<void> {
  if (target.child.exitCode === null && target.child.signalCode === null) target.child.kill('SIGKILL');
  await target.exited;
}

/** SIGTERM (the graceful shutdown), for clean-up; resolves once it has exited. */
export async function stopGently(target: CorgiProcess | undefined): Promise<void> {
  if (!target || target.child.exitCode !== null || target.child.signalCode !== null) return;
  target.child.kill('SIGTERM');
  await target.exited;
}
