import { statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import pg from 'pg';
import { defaultLogger, type Logger } from '../common/logger.ts';
import type { Database } from '../db/database.ts';
import {
  type Activation,
  activatePolicyVersion,
  getLivePolicyVersion,
  getPolicyVersion,
  getPreviousPolicyVersion,
  listenForPromotions,
  markRefused,
  type PolicyVersion,
  PolicyVersionError,
  registerCandidate,
} from '../db/policy-versions.ts';
import { checkpointDigest, unfinishedCheckpointReason } from '../model/checkpoint.ts';
import type { DisposablePolicy, PolicyRegistry } from '../policy/policy-registry.ts';
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
export { checkpointDigest };

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
  const checkpointPath = resolve(dir);
  if (!isDirectory(checkpointPath)) {
    throw new PolicyVersionError(
      'invalid_checkpoint',
      `checkpoint: no checkpoint directory at ${checkpointPath}`,
    );
  }
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

export interface PromoteOptions {
  /** Loads (and so verifies) the checkpoint. @default loadLocalPolicy */
  load?: PolicyLoader;
  /**
   * Hand the loaded policy to the caller (`Promotion.policy`, the caller disposes it) instead of
   * disposing it after verification: a server promoting through its own HTTP route swaps it in
   * without loading the checkpoint twice. @default false
   */
  keepPolicy?: boolean;
}

export interface Promotion {
  /** The version live now. */
  version: string;
  /** The version live before, or null. */
  previous: string | null;
  /** False when it already was the live version (nothing was written or signalled). */
  changed: boolean;
  live: PolicyVersion;
  /** The loaded policy, with `keepPolicy` and when `changed`. */
  policy?: DisposablePolicy;
}

/**
 * Makes `target` the live policy: loads it (a corrupt, partial or changed checkpoint is refused
 * with the reason, a candidate among them marked `refused`, and the live version stays), records
 * it, and signals every server. Promoting a `refused` or `retired` version is allowed: it is an
 * operator's explicit choice (the checkpoint is still verified).
 *
 * @throws PolicyVersionError `unknown_version`, `version_conflict`, `invalid_checkpoint`, `invalid_state`
 * @example await promote(db, { version: 'corgi-3' });
 * @example await promote(db, 'runs/corgi/checkpoint-400'); // registered as "checkpoint-400"
 */
export async function promote(
  db: Database,
  target: string | PromotionTarget,
  { load = loadLocalPolicy, keepPolicy = false }: PromoteOptions = {},
): Promise<Promotion> {
  const [resolved, live] = await Promise.all([resolveTarget(db, target), getLivePolicyVersion(db.pool)]);
  if (resolved.row && live?.version === resolved.row.version) {
    return { version: live.version, previous: live.version, changed: false, live };
  }
  // A directory registered by this call was hashed just now: its digest is not computed twice.
  const policy = await loadVerified(db, resolved.row ?? resolved.unregistered!, load, resolved.field, {
    hashedNow: resolved.unregistered !== undefined,
  });
  return activateLoaded(policy, keepPolicy, async () => {
    const row =
      resolved.row ??
      (await registerCandidate(db.pool, {
        ...resolved.unregistered!,
        parentVersion: resolved.parentVersion,
      }));
    return activate(db, row.version, { expectedLive: live?.version ?? null });
  });
}

/**
 * Runs `activation` with the version's policy already loaded, then hands the policy back when the
 * caller keeps it and the live row changed; otherwise (and on failure) disposes it.
 */
async function activateLoaded(
  policy: DisposablePolicy,
  keepPolicy: boolean,
  activation: () => Promise<Activation>,
): Promise<Promotion> {
  try {
    const activated = await activation();
    if (keepPolicy && activated.changed) return { ...toPromotion(activated), policy };
    await policy.dispose?.();
    return toPromotion(activated);
  } catch (error) {
    await policy.dispose?.();
    throw error;
  }
}

export interface RollbackOptions extends PromoteOptions {
  /** Stored as the rolled-back version's `refused_reason`. @default "rolled back to <previous> at <time>" */
  reason?: string;
}

/**
 * Returns to the version that was live before the current one. The current one becomes `refused`
 * (with `reason`), so it is not a rollback target again and the trainer does not build on it.
 * @throws PolicyVersionError `nothing_to_roll_back`, `invalid_checkpoint`, `invalid_state`
 */
export async function rollback(
  db: Database,
  { load = loadLocalPolicy, keepPolicy = false, reason }: RollbackOptions = {},
): Promise<Promotion> {
  const live = await getLivePolicyVersion(db.pool);
  if (!live)
    throw new PolicyVersionError('nothing_to_roll_back', 'rollback: no version has been promoted yet');
  const previous = await getPreviousPolicyVersion(db.pool);
  if (!previous) {
    throw new PolicyVersionError(
      'nothing_to_roll_back',
      `rollback: "${live.version}" is the only version that has been live; there is nothing to return to`,
    );
  }
  const policy = await loadVerified(db, previous, load, 'rollback');
  return activateLoaded(policy, keepPolicy, () =>
    activate(db, previous.version, {
      expectedLive: live.version,
      demoteTo: 'refused',
      reason: reason ?? `rolled back to ${previous.version} at ${new Date().toISOString()}`,
    }),
  );
}

export interface LivePolicyOptions {
  /**
   * Loads what to serve when nothing has been promoted yet, or when the live checkpoint cannot be
   * loaded on this machine (`corgi serve`'s `--policy`).
   */
  fallback: () => Promise<DisposablePolicy>;
  /**
   * The fallback's checkpoint directory, if it is one, or its `vllm:`/`openai:` spec for a remote
   * model: when nothing has been promoted yet it is recorded as the first live version, so the
   * first promotion has something to roll back to.
   */
  fallbackDir?: string;
  load?: PolicyLoader;
  /** Where warnings go (as `[policy]`). @default defaultLogger (logger.ts) */
  logger?: Logger;
}

/**
 * What a server starting up serves: the live version from `policy_versions`, else the fallback
 * (which becomes the first live version). If the live checkpoint cannot be loaded here the server
 * serves the fallback and says so; its follower keeps trying the live one.
 */
export async function loadLivePolicy(
  db: Database,
  { fallback, fallbackDir, load = loadLocalPolicy, logger = defaultLogger }: LivePolicyOptions,
): Promise<{ policy: DisposablePolicy; source: 'promoted' | 'fallback' }> {
  const log = logger.child('policy');
  const live = await getLivePolicyVersion(db.pool);
  if (live) {
    try {
      return { policy: await loadVerified(db, live, load, 'version'), source: 'promoted' };
    } catch (error) {
      log.warn(
        `cannot load the live version ${live.version}: ${(error as Error).message}; serving the fallback`,
      );
    }
  }
  const policy = await fallback();
  if (!live && fallbackDir) {
    try {
      // A remote model has no directory here: it is recorded under its spec, with no digest.
      const remote = isRemotePolicySpec(fallbackDir);
      const row = await registerCandidate(db.pool, {
        version: policy.version,
        checkpointPath: remote ? fallbackDir : resolve(fallbackDir),
        checksum: remote ? null : await checkpointDigest(resolve(fallbackDir)),
      });
      await activate(db, row.version, { expectedLive: null });
    } catch (error) {
      // Another server bootstrapping at the same moment, or the name taken: this one still serves.
      if (!PolicyVersionError.isInstance(error)) {
        await policy.dispose?.();
        throw error;
      }
      log.warn(`${policy.version} not recorded as the live version: ${error.message}`);
    }
  }
  return { policy, source: 'fallback' };
}

export interface FollowPromotionsOptions {
  db: Database;
  registry: PolicyRegistry;
  load?: PolicyLoader;
  /**
   * Re-read the live version this often without a signal, in ms; 0 disables. It is how the
   * embedded database hears of promotions from other threads, and a safety net for a NOTIFY
   * missed while the LISTEN connection was down. @default 2000 embedded, 30000 PostgreSQL
   */
  pollMs?: number;
  /** Where swaps and failures are reported (as `[policy]`). @default defaultLogger (logger.ts) */
  logger?: Logger;
}

/**
 * Starts keeping `registry` on the live version (and brings it there now). Resolves once the
 * process is listening, so no promotion committed afterwards is missed.
 */
export async function followPromotions(options: FollowPromotionsOptions): Promise<PolicyFollower> {
  const follower = new PolicyFollower(options);
  await follower.start();
  return follower;
}

/** A failed load is retried by polls only after this long (signals and `refresh` retry at once). */
const FAILED_LOAD_RETRY_MS = 60_000;
/** Longest wait between attempts to re-establish the LISTEN connection. */
const MAX_RECONNECT_MS = 30_000;

/**
 * Keeps one process's `PolicyRegistry` on the live version. Every change of the registry runs in
 * one queue (signals, polls, this server's own promotions), so two loads never race and a swap
 * always installs what the database says is live at that moment.
 */
export class PolicyFollower {
  private readonly db: Database;
  private readonly registry: PolicyRegistry;
  private readonly load: PolicyLoader;
  private readonly pollMs: number;
  private readonly log: Logger;
  private readonly channel: string;
  private queue: Promise<unknown> = Promise.resolve();
  private listener: pg.Client | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectDelay = 500;
  private pollTimer: NodeJS.Timeout | null = null;
  private stopInProcess: (() => void) | null = null;
  private failed: { version: string; checksum: string | null; at: number } | null = null;
  private lastFailure: { version: string; reason: string; at: string } | null = null;
  private closed = false;

  constructor(options: FollowPromotionsOptions) {
    this.db = options.db;
    this.registry = options.registry;
    this.load = options.load ?? loadLocalPolicy;
    this.pollMs = options.pollMs ?? (options.db.embedded ? 2_000 : 30_000);
    this.log = (options.logger ?? defaultLogger).child('policy');
    this.channel = policyChannel(options.db.schema);
  }

  /** The version this process serves. */
  get version(): string {
    return this.registry.version;
  }

  /**
   * Why this process does not serve the live version, when its last attempt to load it failed (a
   * corrupt checkpoint, an inference server that refused or is down); null once it serves it.
   */
  get failure(): { version: string; reason: string; at: string } | null {
    return this.lastFailure;
  }

  /** @internal `followPromotions` calls it. */
  async start(): Promise<void> {
    if (this.db.embedded) {
      this.stopInProcess = onInProcessSignal(this.db.pool, () => this.onSignal('in-process'));
    } else {
      await this.connectListener();
    }
    if (this.pollMs > 0) {
      this.pollTimer = setInterval(() => this.onSignal('poll'), this.pollMs);
      // Polling alone must not keep a process (a CLI, a test) alive.
      this.pollTimer.unref();
    }
    // A live version that cannot be loaded here does not stop the server: it keeps serving what it
    // has (loadLivePolicy's fallback), says why, and retries on the next signal or poll.
    await this.refresh().catch((error) =>
      this.log.warn(`start: staying on ${this.registry.version}: ${(error as Error).message}`),
    );
  }

  /**
   * Brings the registry to the live version now, after anything already queued. Resolves with the
   * version served; rejects if the live checkpoint cannot be loaded (the old version keeps serving).
   */
  refresh(): Promise<string> {
    return this.enqueue(() => this.sync(true));
  }

  /** `promote`, then this process swaps to the policy it already loaded (no second load). */
  promote(target: string | PromotionTarget): Promise<Promotion> {
    return this.enqueue(async () =>
      this.install(await promote(this.db, target, { load: this.load, keepPolicy: true })),
    ).catch((error) => this.refused('promote', error));
  }

  /** `rollback`, then this process swaps to the policy it already loaded. */
  rollback(options: Pick<RollbackOptions, 'reason'> = {}): Promise<Promotion> {
    return this.enqueue(async () =>
      this.install(await rollback(this.db, { ...options, load: this.load, keepPolicy: true })),
    ).catch((error) => this.refused('rollback', error));
  }

  /** Logs a refused promotion or rollback (the caller gets the error too) and rethrows it. */
  private refused(what: string, error: unknown): never {
    this.log.warn(`${what} refused, staying on ${this.registry.version}: ${(error as Error).message}`);
    throw error;
  }

  /** Stops listening and polling; waits for a load in progress. The registry is left as it is. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopInProcess?.();
    const listener = this.listener;
    this.listener = null;
    await listener?.end().catch(() => {});
    await this.queue.catch(() => {});
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => {});
    return run;
  }

  /** A signal or a poll: sync in the queue, report failures (nobody awaits this). */
  private onSignal(source: 'notify' | 'in-process' | 'poll' | 'reconnect'): void {
    if (this.closed) return;
    const before = this.lastFailure;
    this.enqueue(() => this.sync(source !== 'poll')).catch((error) => {
      // A poll retrying a load that keeps failing the same way has nothing new to say.
      if (source === 'poll' && before && before.reason === this.lastFailure?.reason) return;
      this.log.warn(`${source}: staying on ${this.registry.version}: ${(error as Error).message}`);
    });
  }

  private async sync(retryFailed: boolean): Promise<string> {
    if (this.closed) return this.registry.version;
    const live = await getLivePolicyVersion(this.db.pool);
    if (!live || live.version === this.registry.version) {
      this.lastFailure = null;
      return this.registry.version;
    }
    const failed = this.failed;
    if (
      !retryFailed &&
      failed?.version === live.version &&
      failed.checksum === live.checksum &&
      Date.now() - failed.at < FAILED_LOAD_RETRY_MS
    ) {
      return this.registry.version;
    }
    let policy: DisposablePolicy;
    try {
      policy = await loadVerified(this.db, live, this.load, 'version');
    } catch (error) {
      this.failed = { version: live.version, checksum: live.checksum, at: Date.now() };
      const at = new Date().toISOString();
      this.lastFailure = { version: live.version, reason: (error as Error).message, at };
      throw error;
    }
    this.failed = null;
    this.lastFailure = null;
    if (this.closed) {
      await policy.dispose?.();
      return this.registry.version;
    }
    const before = this.registry.version;
    await this.registry.swap(policy);
    this.log.info(`now serving ${live.version} (was ${before})`);
    return live.version;
  }

  private async install(promotion: Promotion): Promise<Promotion> {
    const { policy, ...result } = promotion;
    if (policy && this.registry.version !== promotion.version) {
      const before = this.registry.version;
      await this.registry.swap(policy);
      this.lastFailure = null;
      this.log.info(`now serving ${promotion.version} (was ${before})`);
    } else {
      await policy?.dispose?.();
      // Already live in the database but maybe not here (a load that failed earlier): catch up.
      await this.sync(true);
    }
    return result;
  }

  private async connectListener(): Promise<void> {
    const client = new pg.Client(this.db.pool.options);
    const lost = (error?: Error) => {
      if (this.listener !== client) return; // already handled, or closing
      this.listener = null;
      client.end().catch(() => {});
      this.log.warn(`LISTEN connection lost${error ? ` (${error.message})` : ''}; reconnecting`);
      this.scheduleReconnect();
    };
    client.on('notification', (message) => {
      if (message.channel === this.channel) this.onSignal('notify');
    });
    client.on('error', lost);
    client.on('end', () => lost());
    await client.connect();
    try {
      await listenForPromotions(client, this.channel);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    this.listener = client;
    this.reconnectDelay = 500;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(async () => {
      this.reconnectTimer = null;
      if (this.closed) return;
      try {
        await this.connectListener();
        if (this.closed) {
          await this.listener?.end().catch(() => {});
          return;
        }
        // Promotions made while we were not listening.
        this.onSignal('reconnect');
      } catch {
        this.reconnectDelay = Math.min(this.reconnectDelay * 2, MAX_RECONNECT_MS);
        this.scheduleReconnect();
      }
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
  }
}

// ---------------------------------------------------------------------------------------------
// Internals shared by promote, rollback and the follower.

interface ResolvedTarget {
  /** The registered version, if it is one. */
  row: PolicyVersion | null;
  /** A checkpoint directory not registered yet. */
  unregistered?: { version: string; checkpointPath: string; checksum: string };
  parentVersion: string | null;
  /** The field messages name (`version` or `checkpoint`). */
  field: 'version' | 'checkpoint';
}

async function resolveTarget(db: Database, target: string | PromotionTarget): Promise<ResolvedTarget> {
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
  const checkpointPath = resolve(target.checkpoint);
  if (!isDirectory(checkpointPath)) {
    throw new PolicyVersionError(
      'invalid_checkpoint',
      `checkpoint: no checkpoint directory at ${checkpointPath}`,
    );
  }
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
async function loadVerified(
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

async function activate(
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

function toPromotion(activation: Activation): Promotion {
  return {
    version: activation.live.version,
    previous: activation.previous,
    changed: activation.changed,
    live: activation.live,
  };
}

/**
 * Followers of an embedded database in this process, by pool: PGlite's NOTIFY does not reach other
 * connections, so `promote` calls them directly. Keyed weakly, so a closed database leaves nothing.
 */
const inProcessFollowers = new WeakMap<pg.Pool, Set<() => void>>();

function onInProcessSignal(pool: pg.Pool, listener: () => void): () => void {
  const listeners = inProcessFollowers.get(pool) ?? new Set<() => void>();
  inProcessFollowers.set(pool, listeners);
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function signalInProcess(pool: pg.Pool): void {
  for (const listener of inProcessFollowers.get(pool) ?? []) listener();
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

const short = (digest: string) => `${digest.replace(/^sha256:/, '').slice(0, 12)}…`;
