/**
 * Key management over HTTP for admins, the same operations as `corgi keys`:
 * `GET /v1/admin/keys`, `POST /v1/admin/keys` `{name, admin?}` → 201 `{id, key}` (the key is shown
 * once), `DELETE /v1/admin/keys/:id`.
 */
import { Router } from 'express';
import type pg from 'pg';
import { z } from 'zod';
import { createApiKey, listApiKeys, revokeApiKey } from '../../db/api-keys.ts';
import { type ApiKeyVerifier, requireAdmin } from '../auth.ts';
import { HttpError } from '../http-error.ts';
import { parseOrThrow } from '../schemas.ts';

export const CreateKeySchema = z.strictObject({
  name: z.string().trim().min(1, 'must not be empty').max(200).describe('who or what the key is for'),
  admin: z.boolean().default(false).describe('may promote, roll back and manage keys'),
});

export function apiKeyRoutes(deps: { pool: pg.Pool; verifier: ApiKeyVerifier }) {
  const router = Router();
  router.use('/v1/admin/keys', requireAdmin);

  router.get('/v1/admin/keys', async (_req, res) => {
    res.json({ keys: await listApiKeys(deps.pool) });
  });

  router.post('/v1/admin/keys', async (req, res) => {
    const { name, admin } = parseOrThrow(CreateKeySchema, req.body);
    res.status(201).json(await createApiKey(deps.pool, { name, admin }));
  });

  router.delete('/v1/admin/keys/:id', async (req, res) => {
    const id = parseOrThrow(z.uuid('must be a key id (UUID)'), req.params.id, 'id');
    if (!(await revokeApiKey(deps.pool, id))) throw new HttpError(404, 'not_found', `id: no live key ${id}`);
    deps.verifier.forget(id);
    res.json({ id, revoked: true });
  });

  return router;
}
