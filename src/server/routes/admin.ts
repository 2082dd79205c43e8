/**
 * Operator routes for the live policy (the HTTP twins of `corgi promote` / `corgi rollback`, and the
 * only way to promote in the embedded mode, whose database lives inside the server process):
 *
 * - `POST /v1/admin/promote` `{version}` (a registered version) or `{checkpoint, version?}` (a
 *   checkpoint directory on this server's file system, registered under `version`, by default the
 *   directory's name) → `{version, previous, changed, serving}`.
 * - `POST /v1/admin/rollback` `{reason?}` → the same shape, back to the previously live version.
 * - `GET /v1/admin/policy-versions?limit=50` → `{live, serving, failure, versions}`, newest first
 *   (`failure`: why this server does not serve the live version, when its load failed).
 *
 * The checkpoint is loaded and verified here before anything changes, then swapped into this
 * server at once; other servers hear of it through the database (see src/promotion/follower.ts).
 * On a server serving `vllm:`, loading is vLLM loading the version's LoRA adapter (a refusal or an
 * unreachable vLLM is `upstream_error`, 502); on a plain `openai:` endpoint it cannot happen
 * (`promotion_unsupported`, 409). Either way nothing changes and this server keeps its version.
 * Every route sits behind `requireAdmin` (an admin API key, or an anonymous caller on loopback).
 */
import { type RequestHandler, Router } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import {
  getPolicyVersion,
  listPolicyVersions,
  type PolicyVersion,
  PolicyVersionError,
} from '../../db/policy-versions.ts';
import type { PolicyFollower } from '../../promotion/follower.ts';
import type { Promotion } from '../../promotion/promote.ts';
import { requireAdmin as defaultRequireAdmin } from '../auth.ts';
import { HttpError } from '../http-error.ts';
import { parseOrThrow } from '../schemas.ts';

export const PromoteSchema = z
  .strictObject({
    version: z
      .string()
      .trim()
      .min(1, 'must not be empty')
      .max(200)
      .describe('a registered policy version; with checkpoint, the name to register it under')
      .optional(),
    checkpoint: z
      .string()
      .trim()
      .min(1, 'must not be empty')
      .max(4_096)
      .describe('a checkpoint directory on the server (Hugging Face layout)')
      .optional(),
  })
  .refine((body) => body.version !== undefined || body.checkpoint !== undefined, {
    error: 'expected {"version": "..."} or {"checkpoint": "<dir>"}',
  });

export const RollbackSchema = z.strictObject({
  reason: z.string().trim().min(1).max(1_000).describe('why, stored with the rolled-back version').optional(),
});

const HistoryQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1_000).default(50),
});

/** The HTTP status of each promotion failure. */
const STATUS: Record<PolicyVersionError['code'], number> = {
  unknown_version: 404,
  version_conflict: 409,
  invalid_checkpoint: 422,
  nothing_to_roll_back: 409,
  invalid_state: 409,
  promotion_unsupported: 409,
  upstream_error: 502,
};

export interface AdminRouteDeps {
  pool: pg.Pool;
  /** This server's follower; absent when the server was started with a fixed policy (tests). */
  promotions?: PolicyFollower;
  /**
   * Who may call these routes. The hook for the API-key system. @default auth.ts `requireAdmin`
   * (an admin key, or an anonymous caller on loopback)
   */
  requireAdmin?: RequestHandler;
}

export function adminRoutes(deps: AdminRouteDeps) {
  const router = Router();
  router.use(
    ['/v1/admin/promote', '/v1/admin/rollback', '/v1/admin/policy-versions'],
    deps.requireAdmin ?? defaultRequireAdmin,
  );

  const follower = (): PolicyFollower => {
    if (!deps.promotions) {
      throw new HttpError(
        503,
        'promotion_unavailable',
        'policy: this server was started with a fixed policy and cannot swap it; run it with `corgi serve`',
      );
    }
    return deps.promotions;
  };
  const reply = (promotion: Promotion, promotions: PolicyFollower) => ({
    version: promotion.version,
    previous: promotion.previous,
    changed: promotion.changed,
    promotedAt: promotion.live.promotedAt,
    /** What this server serves now (the same unless its load failed). */
    serving: promotions.version,
  });

  router.post('/v1/admin/promote', async (req, res) => {
    const body = parseOrThrow(PromoteSchema, req.body);
    const promotions = follower();
    const target =
      body.checkpoint !== undefined
        ? { checkpoint: body.checkpoint, ...(body.version !== undefined ? { version: body.version } : {}) }
        : { version: body.version! };
    res.json(reply(await asHttpError(promotions.promote(target)), promotions));
  });

  router.post('/v1/admin/rollback', async (req, res) => {
    const { reason } = parseOrThrow(RollbackSchema, req.body ?? {});
    const promotions = follower();
    res.json(reply(await asHttpError(promotions.rollback({ reason })), promotions));
  });

  router.get('/v1/admin/policy-versions', async (req, res) => {
    const { limit } = parseOrThrow(HistoryQuerySchema, req.query, 'query');
    const versions = await listPolicyVersions(deps.pool, { limit });
    res.json({
      live: versions.find((v) => v.status === 'promoted')?.version ?? null,
      serving: deps.promotions?.version ?? null,
      /** Why this server does not serve `live` (its last load of it failed), else null. */
      failure: deps.promotions?.failure ?? null,
      versions: versions.map(publicVersion),
    });
  });

  return router;
}

/** A version as operators see it: everything but the eval reports' per-task detail. */
function publicVersion(version: PolicyVersion) {
  const gate = version.eval as { passed?: boolean; reason?: string | null; comparisons?: unknown } | null;
  return {
    ...version,
    eval: gate ? { passed: gate.passed, reason: gate.reason, comparisons: gate.comparisons } : null,
  };
}

async function asHttpError<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (PolicyVersionError.isInstance(error)) {
      throw new HttpError(STATUS[error.code], error.code, error.message, { cause: error });
    }
    throw error;
  }
}

/**
 * `GET /v1/policy`'s body: the version this server serves, with its status, parent and promotion
 * time when it is registered in `policy_versions` (a fixed policy in tests is not). The database
 * being down never fails this route: it then reports the version alone.
 */
export async function describeServedPolicy(pool: pg.Pool, version: string) {
  const row = await getPolicyVersion(pool, version).catch(() => null);
  if (!row) return { version };
  return { version, status: row.status, parentVersion: row.parentVersion, promotedAt: row.promotedAt };
}
