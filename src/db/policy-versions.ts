/**
 * Policy versions in PostgreSQL (`policy_versions`): every checkpoint the trainer produced or an
 * operator promoted, what it was trained from, what the eval gate said, and where it is in its life:
 *
 * ```
 * candidate ──eval gate refuses──▶ refused (refused_reason says why)
 *     │
 *     └──promote──▶ promoted ──another version is promoted──▶ retired ──promote / rollback──▶ promoted
 *                       └──rolled back──▶ refused ("rolled back to …")
 * ```
 *
 * Once anything has been promoted exactly one row is `promoted`: the live version every server
 * serves (a partial unique index makes a second one impossible). Promotion is one transaction
 * (`activatePolicyVersion`) that can carry the NOTIFY telling servers about it, so the signal goes
 * out if and only if the change commits.
 */

import pg from 'pg';
import { CorgiError } from '../common/errors.ts';

export type PolicyStatus = 'candidate' | 'promoted' | 'refused' | 'retired';

export interface PolicyVersion {
  version: string;
  /** The version it was trained from (null for a base model or an operator's checkpoint). */
  parentVersion: string | null;
  /**
   * Absolute path of the checkpoint directory; every server must see it at that path. For a remote
   * base model (a server started on `vllm:`/`openai:` with nothing live), its spec instead.
   */
  checkpointPath: string;
  /** `checkpointDigest` of the directory when it was registered; loading refuses a changed one. */
  checksum: string | null;
  status: PolicyStatus;
  /** The trainer's metrics for the run that produced it. */
  metrics: Record<string, unknown>;
  /** The eval gate's record (`GateRecord` in src/promotion/eval-gate.ts), or null before it ran. */
  eval: unknown;
  refusedReason: string | null;
  createdAt: string;
  /** When it last went live. */
  promotedAt: string | null;
}

export type PolicyVersionErrorCode =
  /** No version of that name (or no checkpoint directory at that path). */
  | 'unknown_version'
  /** The name is taken by a different checkpoint. */
  | 'version_conflict'
  /** The checkpoint is missing, partial, corrupt or changed since it was registered. */
  | 'invalid_checkpoint'
  /** Rollback with no earlier live version to return to. */
  | 'nothing_to_roll_back'
  /** An operation that needs a live version (or a non-live one) found the other. */
  | 'invalid_state'
  /** This server's remote policy cannot serve it (a plain OpenAI-compatible endpoint, no LoRA adapter). */
  | 'promotion_unsupported'
  /** This server's inference server (vLLM) refused to load it or could not be reached. */
  | 'upstream_error';

/**
 * An expected failure of registering, promoting or rolling back, with a code the HTTP layer maps to
 * a status and a message that starts with the field at fault (`version: …`, `checkpoint: …`).
 */
export class PolicyVersionError extends CorgiError {
  declare readonly code: PolicyVersionErrorCode;

  constructor(code: PolicyVersionErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}

function toPolicyVersion(row: Record<string, unknown>): PolicyVersion {
  return {
    version: row.version as string,
    parentVersion: (row.parent_version as string | null) ?? null,
    checkpointPath: row.checkpoint_path as string,
    checksum: (row.checksum as string | null) ?? null,
    status: row.status as PolicyStatus,
    metrics: (row.metrics as Record<string, unknown>) ?? {},
    eval: row.eval ?? null,
    refusedReason: (row.refused_reason as string | null) ?? null,
    createdAt: new Date(row.created_at as string).toISOString(),
    promotedAt: row.promoted_at ? new Date(row.promoted_at as string).toISOString() : null,
  };
}

export interface NewPolicyVersion {
  version: string;
  /** Stored as given: pass an absolute path (`promotion.ts` resolves it). */
  checkpointPath: string;
  parentVersion?: string | null;
  checksum?: string | null;
  metrics?: Record<string, unknown>;
}

/**
 * Records a checkpoint as a `candidate`. Registering the same version with the same checkpoint
 * again returns the existing row unchanged (a trainer that restarts after registering is fine);
 * the same name for a different checkpoint (path or checksum) is a `version_conflict`.
 */
export async function registerCandidate(pool: pg.Pool, candidate: NewPolicyVersion): Promise<PolicyVersion> {
  const inserted = await pool.query(
    `INSERT INTO policy_versions (version, parent_version, checkpoint_path, checksum, metrics)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (version) DO NOTHING
     RETURNING *`,
    [
      candidate.version,
      candidate.parentVersion ?? null,
      candidate.checkpointPath,
      candidate.checksum ?? null,
      JSON.stringify(candidate.metrics ?? {}),
    ],
  );
  if (inserted.rows.length > 0) return toPolicyVersion(inserted.rows[0]);
  const existing = (await getPolicyVersion(pool, candidate.version))!;
  const sameChecksum =
    candidate.checksum == null || existing.checksum == null || candidate.checksum === existing.checksum;
  if (existing.checkpointPath !== candidate.checkpointPath || !sameChecksum) {
    throw new PolicyVersionError(
      'version_conflict',
      `version: "${candidate.version}" is already registered for ${existing.checkpointPath}` +
        `${existing.checkpointPath === candidate.checkpointPath ? ' with different contents' : ''}; ` +
        'register this checkpoint under another name',
    );
  }
  return existing;
}

export async function getPolicyVersion(pool: pg.Pool, version: string): Promise<PolicyVersion | null> {
  const { rows } = await pool.query('SELECT * FROM policy_versions WHERE version = $1', [version]);
  return rows.length > 0 ? toPolicyVersion(rows[0]) : null;
}

/** The version servers should serve, or null when nothing has been promoted yet. */
export async function getLivePolicyVersion(pool: pg.Pool): Promise<PolicyVersion | null> {
  const { rows } = await pool.query(`SELECT * FROM policy_versions WHERE status = 'promoted'`);
  return rows.length > 0 ? toPolicyVersion(rows[0]) : null;
}

/** The version a rollback returns to: the most recently live one that was retired (not refused). */
export async function getPreviousPolicyVersion(pool: pg.Pool): Promise<PolicyVersion | null> {
  const { rows } = await pool.query(
    `SELECT * FROM policy_versions WHERE status = 'retired' AND promoted_at IS NOT NULL
     ORDER BY promoted_at DESC, version LIMIT 1`,
  );
  return rows.length > 0 ? toPolicyVersion(rows[0]) : null;
}

/** Every version, newest first (registration order). @default limit 100 */
export async function listPolicyVersions(
  pool: pg.Pool,
  { limit = 100 }: { limit?: number } = {},
): Promise<PolicyVersion[]> {
  const { rows } = await pool.query(
    'SELECT * FROM policy_versions ORDER BY created_at DESC, version DESC LIMIT $1',
    [limit],
  );
  return rows.map(toPolicyVersion);
}

/** Stores the eval gate's record on a version. @throws PolicyVersionError `unknown_version` */
export async function recordEval(pool: pg.Pool, version: string, record: unknown): Promise<void> {
  const { rowCount } = await pool.query('UPDATE policy_versions SET eval = $2 WHERE version = $1', [
    version,
    JSON.stringify(record),
  ]);
  if (rowCount === 0) throw unknownVersion(version);
}

/**
 * Marks a version `refused` with the reason (the eval gate, or an operator). The live version
 * cannot be refused this way: roll back or promote another first, so servers are never left
 * without a live row to follow. @throws PolicyVersionError
 */
export async function markRefused(pool: pg.Pool, version: string, reason: string): Promise<PolicyVersion> {
  return setNonLiveStatus(pool, version, 'refused', reason);
}

/** Marks a version `retired` (kept for history and rollback). Not the live one. @throws PolicyVersionError */
export async function markRetired(pool: pg.Pool, version: string): Promise<PolicyVersion> {
  return setNonLiveStatus(pool, version, 'retired', null);
}

async function setNonLiveStatus(
  pool: pg.Pool,
  version: string,
  status: 'refused' | 'retired',
  reason: string | null,
): Promise<PolicyVersion> {
  const { rows } = await pool.query(
    `UPDATE policy_versions SET status = $2, refused_reason = $3
     WHERE version = $1 AND status <> 'promoted' RETURNING *`,
    [version, status, reason],
  );
  if (rows.length > 0) return toPolicyVersion(rows[0]);
  if (!(await getPolicyVersion(pool, version))) throw unknownVersion(version);
  throw new PolicyVersionError(
    'invalid_state',
    `version: "${version}" is live; promote another version (or roll back) before marking it ${status}`,
  );
}

export interface ActivateOptions {
  /** What the version that was live becomes. @default 'retired' */
  demoteTo?: 'retired' | 'refused';
  /** Stored as the demoted version's `refused_reason` (with `demoteTo: 'refused'`). */
  reason?: string;
  /**
   * `pg_notify(channel, version)` in the same transaction: PostgreSQL delivers it on commit, so no
   * server hears of a change that did not happen.
   */
  notifyChannel?: string;
  /**
   * The version the caller saw live (null: none) when it decided on this change; if another
   * promotion got in first the transaction stops with `invalid_state` instead of undoing it.
   */
  expectedLive?: string | null;
  /**
   * Run the steps as separate statements, serialized in-process only. For the embedded database:
   * pglite-socket runs every connection in one backend session and, while one connection is inside
   * a transaction, holds the others' protocol messages and then lets them interleave, so another
   * connection's half-sent query (Parse, then Bind) binds to the wrong statement ("portal cannot be
   * run"). Only this process can open that database, so the in-process queue is enough; between the
   * two statements no version is live for an instant, which a follower reads as "nothing to do".
   * @default false
   */
  withoutTransaction?: boolean;
}

export interface Activation {
  live: PolicyVersion;
  /** The version live before, or null when there was none. */
  previous: string | null;
  /** False when the version was already live (nothing written, nothing sent). */
  changed: boolean;
}

/**
 * Makes `version` the live one: the live row is demoted, this row becomes `promoted` with
 * `promoted_at = now()`, and the NOTIFY (if asked for) commits with it, all in one transaction.
 * Concurrent promotions queue on a table lock that plain reads do not wait for, and promotions from
 * one process also queue in-process. @throws PolicyVersionError
 */
export async function activatePolicyVersion(
  pool: pg.Pool,
  version: string,
  options: ActivateOptions = {},
): Promise<Activation> {
  const previousTurn = activationQueues.get(pool) ?? Promise.resolve();
  const turn = previousTurn.then(() => activateNow(pool, version, options));
  activationQueues.set(
    pool,
    turn.catch(() => {}),
  );
  return turn;
}

/** Activations of each pool in this process, one at a time (the embedded mode's only serialization). */
const activationQueues = new WeakMap<pg.Pool, Promise<unknown>>();

async function activateNow(pool: pg.Pool, version: string, options: ActivateOptions): Promise<Activation> {
  if (options.withoutTransaction) return activateSteps(pool, version, options);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // SHARE ROW EXCLUSIVE conflicts with itself, not with SELECT: promoters take turns, servers keep reading.
    await client.query('LOCK TABLE policy_versions IN SHARE ROW EXCLUSIVE MODE');
    const activation = await activateSteps(client, version, options);
    await client.query('COMMIT');
    return activation;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Demote, then promote: in that order, so the one-live-row index never sees two. */
async function activateSteps(
  db: pg.Pool | pg.PoolClient,
  version: string,
  options: ActivateOptions,
): Promise<Activation> {
  const target = await db.query('SELECT * FROM policy_versions WHERE version = $1', [version]);
  if (target.rows.length === 0) throw unknownVersion(version);
  const live = await db.query(`SELECT version FROM policy_versions WHERE status = 'promoted'`);
  const previous: string | null = live.rows[0]?.version ?? null;
  if (options.expectedLive !== undefined && options.expectedLive !== previous) {
    throw new PolicyVersionError(
      'invalid_state',
      `version: the live version changed to "${previous ?? 'none'}" while "${version}" was being ` +
        `prepared (expected "${options.expectedLive ?? 'none'}"); nothing was changed, try again`,
    );
  }
  if (previous === version) return { live: toPolicyVersion(target.rows[0]), previous, changed: false };
  if (previous !== null) {
    await db.query('UPDATE policy_versions SET status = $2, refused_reason = $3 WHERE version = $1', [
      previous,
      options.demoteTo ?? 'retired',
      options.demoteTo === 'refused' ? (options.reason ?? null) : null,
    ]);
  }
  const promoted = await db.query(
    `UPDATE policy_versions SET status = 'promoted', promoted_at = now(), refused_reason = NULL
     WHERE version = $1 RETURNING *`,
    [version],
  );
  if (options.notifyChannel) await db.query('SELECT pg_notify($1, $2)', [options.notifyChannel, version]);
  return { live: toPolicyVersion(promoted.rows[0]), previous, changed: true };
}

function unknownVersion(version: string): PolicyVersionError {
  return new PolicyVersionError('unknown_version', `version: no policy version named "${version}"`);
}

/** Subscribes `client` (a connection of its own) to the promotions signalled on `channel`. */
export async function listenForPromotions(client: pg.ClientBase, channel: string): Promise<void> {
  await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
}
