/**
 * Policy versions as the promotion machinery sees them: the loader contract, registering a
 * checkpoint as a candidate, resolving what an operator named, loading a version only after its
 * checkpoint is verified against what was registered, and making a version live (with the signal
 * other servers hear). `promote.ts` and `follower.ts` are built from these.
 */
import { statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type pg from 'pg';
import type { Database } from '../db/database.ts';
import {
  type Activation,
  activatePolicyVersion,
  getPolicyVersion,
  markRefused,
  type PolicyVersion,
  PolicyVersionError,
  registerCandidate,
} from '../db/policy-versions.ts';
import { checkpointDigest, unfinishedCheckpointReason } from '../model/checkpoint.ts';
import type { DisposablePolicy } from '../policy/policy-registry.ts';
import { isRemotePolicySpec, RemotePromotionError } from '../policy/remote-policy.ts';
import { servingPolicyLoader } from '../policy/serving-loader.ts';

/** The NOTIFY channel of a schema's promotions (tests isolate themselves in schemas of their own). */
export function policyChannel(schema: string): string {
  return schema === 'public' ? 'corgi_policy' : `corgi_policy_${schema}`;
}

/**
 * Loads a checkpoint as the policy `version`; it must throw for anything it cannot serve. The path
 * is a checkpoint directory, or the spec of a remote base model (`vllm:…#model`, recorded by a
 * server serving it). A `RemotePromotionError` means this server cannot serve it for a reason that
 * is not the checkpoint's (its inference server refused or is down): the error keeps its code and
 * a candidate is not marked refused.
 */
export type PolicyLoader = (checkpointDir: string, version: string) => Promise<DisposablePolicy>;

/**
 * The default loader: llama.cpp through `servingPolicyLoader` (a checkpoint directory is converted
 * to GGUF once, under $CORGI_DATA_DIR/cache/gguf), refusing corrupt or partial checkpoints.
 */
export const loadLocalPolicy: PolicyLoader = async (checkpointDir, version) => {
  if (isRemotePolicySpec(checkpointDir)) {
    throw new RemotePromotionError(
      'promotion_unsupported',
      `it is the remote model ${checkpointDir}, which a local policy cannot load`,
    );
  }
  return servingPolicyLoader()(checkpointDir, version);
};

export interface RegisterCheckpointOptions {
  /** The checkpoint directory (written atomically by `saveCheckpoint`). */
  dir: string;
  /** @default the directory's name */
  version?: string;
  /** The version it was trained from. */
  parentVersion?: string | null;
  /** The training run's metrics, stored with it. */
  metrics?: Record<string, unknown>;
}

/**
 * Records a checkpoint as a `candidate`, with its digest, under its absolute path. Idempotent for
 * the same directory; the same name for another checkpoint is a `version_conflict`.
 * @throws PolicyVersionError
 */
export async function registerCheckpoint(
  db: Pick<Database, 'pool'>,
  { dir, version, parentVersion = null, metrics = {} }: RegisterCheckpointOptions,
): Promise<PolicyVersion> {
  const checkpointPath = checkpointDirectory(dir);
  const unfinished = unfinishedCheckpointReason(checkpointPath);
  if (unfinished)
    throw new PolicyVersionError('invalid_checkpoint', `checkpoint: ${checkpointPath} is ${unfinished}`);
  return registerCandidate(db.pool, {
    version: version ?? basename(checkpointPath),
    checkpointPath,
    parentVersion,
    checksum: await checkpointDigest(checkpointPath),
    metrics,
  });
}

/**
 * What to promote: a registered version, or a checkpoint directory (registered on the way under
 * `version`, by default the directory's name). A plain string is a version if one has that name,
 * else a directory.
 */
export type PromotionTarget =
  | { version: string }
  | { checkpoint: string; version?: string; parentVersion?: string | null };

interface ResolvedTarget {
  /** The registered version, if it is one. */
  row: PolicyVersion | null;
  /** A checkpoint directory not registered yet. */
  unregistered?: { version: string; checkpointPath: string; checksum: string };
  parentVersion: string | null;
  /** The field messages name (`version` or `checkpoint`). */
  field: 'version' | 'checkpoint';
}

export async function resolveTarget(db: Database, target: string | PromotionTarget): Promise<ResolvedTarget> {
  if (typeof target === 'string') {
    const row = await getPolicyVersion(db.pool, target);
    if (row) return { row, parentVersion: row.parentVersion, field: 'version' };
    if (isDirectory(target)) return resolveTarget(db, { checkpoint: target });
    throw new PolicyVersionError(
      'unknown_version',
      `version: no policy version or checkpoint directory named "${target}"`,
    );
  }
  if (!('checkpoint' in target)) {
    const row = await getPolicyVersion(db.pool, target.version);
    if (!row)
      throw new PolicyVersionError('unknown_version', `version: no policy version named "${target.version}"`);
    return { row, parentVersion: row.parentVersion, field: 'version' };
  }
  const checkpointPath = checkpointDirectory(target.checkpoint);
  const version = target.version ?? basename(checkpointPath);
  const row = await getPolicyVersion(db.pool, version);
  if (row && row.checkpointPath !== checkpointPath) {
    throw new PolicyVersionError(
      'version_conflict',
      `checkpoint: version "${version}" is already registered for ${row.checkpointPath}; ` +
        `give this checkpoint another name (corgi promote <dir> --version <name>, or "version" in the request)`,
    );
  }
  if (row) return { row, parentVersion: row.parentVersion, field: 'checkpoint' };
  return {
    row: null,
    unregistered: { version, checkpointPath, checksum: await checkpointDigest(checkpointPath) },
    parentVersion: target.parentVersion ?? null,
    field: 'checkpoint',
  };
}

/**
 * Loads a version's checkpoint after checking it is the one that was registered. A candidate that
 * fails is marked `refused` with the reason; a version that has been live keeps its status (its
 * files may come back), and the error says the live version is unchanged.
 */
export async function loadVerified(
  db: Database,
  row: Pick<PolicyVersion, 'version' | 'checkpointPath' | 'checksum'> & { status?: PolicyVersion['status'] },
  load: PolicyLoader,
  field: string,
  { hashedNow = false }: { hashedNow?: boolean } = {},
): Promise<DisposablePolicy> {
  const refuse = async (reason: string, cause?: unknown): Promise<never> => {
    if (row.status === 'candidate') await markRefused(db.pool, row.version, reason).catch(() => {});
    throw new PolicyVersionError(
      'invalid_checkpoint',
      `${field}: refused "${row.version}": ${reason}; the live version is unchanged`,
      { cause },
    );
  };
  // A remote base model (recorded under its spec) has no directory to check: its loader decides.
  const remote = isRemotePolicySpec(row.checkpointPath);
  if (!remote && !isDirectory(row.checkpointPath))
    return refuse(`no checkpoint directory at ${row.checkpointPath}`);
  // A killed writer's leftover (checkpoint.ts): refused whatever its files say, and whatever the loader.
  const unfinished = remote ? null : unfinishedCheckpointReason(row.checkpointPath);
  if (unfinished) return refuse(`${row.checkpointPath} is ${unfinished}`);
  if (!remote && row.checksum && !hashedNow) {
    const now = await checkpointDigest(row.checkpointPath);
    if (now !== row.checksum) {
      return refuse(
        `${row.checkpointPath} changed since it was registered (digest ${short(now)}, registered ${short(row.checksum)})`,
      );
    }
  }
  try {
    return await load(row.checkpointPath, row.version);
  } catch (error) {
    // This server's inference server, not the checkpoint, is at fault: the candidate stays as it is.
    if (RemotePromotionError.isInstance(error)) {
      throw new PolicyVersionError(
        error.code,
        `${field}: "${row.version}" cannot be served: ${error.message}`,
        { cause: error },
      );
    }
    return refuse((error as Error).message, error);
  }
}

/** Makes `version` live; the embedded database signals this process's followers directly. */
export async function activate(
  db: Database,
  version: string,
  options: { expectedLive: string | null; demoteTo?: 'retired' | 'refused'; reason?: string },
): Promise<Activation> {
  const activation = await activatePolicyVersion(db.pool, version, {
    ...options,
    // The embedded database would only echo the NOTIFY back to this connection: signal in-process.
    notifyChannel: db.embedded ? undefined : policyChannel(db.schema),
    withoutTransaction: db.embedded,
  });
  if (db.embedded && activation.changed) signalInProcess(db.pool);
  return activation;
}

/**
 * Followers of an embedded database in this process, by pool: PGlite's NOTIFY does not reach other
 * connections, so `promote` calls them directly. Keyed weakly, so a closed database leaves nothing.
 */
const inProcessFollowers = new WeakMap<pg.Pool, Set<() => void>>();

export function onInProcessSignal(pool: pg.Pool, listener: () => void): () => void {
  const listeners = inProcessFollowers.get(pool) ?? new Set<() => void>();
  inProcessFollowers.set(pool, listeners);
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function signalInProcess(pool: pg.Pool): void {
  for (const listener of inProcessFollowers.get(pool) ?? []) listener();
}

/** `dir` as an absolute path. @throws PolicyVersionError `invalid_checkpoint` when it is no directory */
function checkpointDirectory(dir: string): string {
  const checkpointPath = resolve(dir);
  if (!isDirectory(checkpointPath))
    throw new PolicyVersionError(
      'invalid_checkpoint',
      `checkpoint: no checkpoint directory at ${checkpointPath}`,
    );
  return checkpointPath;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

const short = (digest: string) => `${digest.replace(/^sha256:/, '').slice(0, 12)}…`;
