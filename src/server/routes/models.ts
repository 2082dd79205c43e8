/**
 * `GET /v1/models` and `GET /v1/models/:id`, OpenAI's protocol: the version this server serves,
 * then every registered policy version (src/db/policy-versions.ts), newest first. Beyond OpenAI's
 * `{id, object, created, owned_by}` each entry says whether this server serves it (`serving`), its
 * registry `status` (null when it is not registered, as a model started from a directory) and the
 * version it was trained from (`parent`, as vLLM names it).
 */
import { Router } from 'express';
import type pg from 'pg';
import { listPolicyVersions, type PolicyVersion } from '../../db/policy-versions.ts';
import type { PolicySource } from '../../policy/types.ts';
import { HttpError } from '../http-error.ts';

/** Most registered versions listed. */
const MAX_LISTED = 1_000;

export interface ModelObject {
  id: string;
  object: 'model';
  /** Unix seconds: when the version was registered (a served, unregistered one: when the server started). */
  created: number;
  owned_by: string;
  serving: boolean;
  status: PolicyVersion['status'] | null;
  parent: string | null;
}

export function modelRoutes(deps: { pool: pg.Pool; policy: PolicySource }) {
  const router = Router();
  const startedAt = Math.floor(Date.now() / 1000);

  async function listModels(): Promise<ModelObject[]> {
    const serving = deps.policy.current().version;
    const versions = await listPolicyVersions(deps.pool, { limit: MAX_LISTED });
    const toModel = (version: PolicyVersion): ModelObject => ({
      id: version.version,
      object: 'model',
      created: Math.floor(Date.parse(version.createdAt) / 1000),
      owned_by: 'corgi',
      serving: version.version === serving,
      status: version.status,
      parent: version.parentVersion,
    });
    const registered = versions.map(toModel);
    const served = registered.find((m) => m.serving) ?? {
      id: serving,
      object: 'model' as const,
      created: startedAt,
      owned_by: 'corgi',
      serving: true,
      status: null,
      parent: null,
    };
    return [served, ...registered.filter((m) => !m.serving)];
  }

  router.get('/v1/models', async (_req, res) => {
    res.json({ object: 'list', data: await listModels() });
  });

  router.get('/v1/models/:id', async (req, res) => {
    const model = (await listModels()).find((m) => m.id === req.params.id);
    if (!model) throw new HttpError(404, 'model_not_found', `model: no model ${req.params.id}`);
    res.json(model);
  });

  return router;
}
