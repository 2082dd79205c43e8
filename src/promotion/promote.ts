/**
 * Changing the live policy: `promote` (a version or a checkpoint directory), `rollback`, and
 * `loadLivePolicy`, what a starting server serves. Each loads and verifies before it writes, so a
 * refused checkpoint leaves the live version as it was; servers hear of the change through the
 * database (`follower.ts`).
 */
import { resolve } from 'node:path';
import { defaultLogger, type Logger } from '../common/logger.ts';
import type { Database } from '../db/database.ts';
import {
  type Activation,
  getLivePolicyVersion,
  getPreviousPolicyVersion,
  type PolicyVersion,
  PolicyVersionError,
  registerCandidate,
} from '../db/policy-versions.ts';
import { checkpointDigest } from '../model/checkpoint.ts';
import type { DisposablePolicy } from '../policy/policy-registry.ts';
import { isRemotePolicySpec } from '../policy/remote-policy.ts';
import {
  activate,
  loadLocalPolicy,
  loadVerified,
  type PolicyLoader,
  type PromotionTarget,
  resolveTarget,
} from './versions.ts';

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

function toPromotion(activation: Activation): Promotion {
  return {
    version: activation.live.version,
    previous: activation.previous,
    changed: activation.changed,
    live: activation.live,
  };
}
