/**
 * Keeping a running server on the live version: `followPromotions` listens for promotions
 * (PostgreSQL NOTIFY, the embedded database's in-process signal, and a poll as a safety net) and
 * swaps each newly live version into the server's `PolicyRegistry` without dropping a session.
 */
import pg from 'pg';
import { defaultLogger, type Logger } from '../common/logger.ts';
import type { Database } from '../db/database.ts';
import { getLivePolicyVersion, listenForPromotions } from '../db/policy-versions.ts';
import type { DisposablePolicy, PolicyRegistry } from '../policy/policy-registry.ts';
import { type Promotion, promote, type RollbackOptions, rollback } from './promote.ts';
import {
  loadLocalPolicy,
  loadVerified,
  onInProcessSignal,
  type PolicyLoader,
  type PromotionTarget,
  policyChannel,
} from './versions.ts';

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
