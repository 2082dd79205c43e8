/**
 * `createApp(deps)`: the express app with every HTTP route (docs/service.md). No port is opened here;
 * `startServer` does that and attaches socket.io.
 */

import express from 'express';
import type pg from 'pg';
import { parseCheckRequest } from '../checkers/check-request.ts';
import { listCheckers } from '../checkers/registry.ts';
import type { Logger } from '../common/logger.ts';
import type { PolicySource } from '../policy/types.ts';
import type { PolicyFollower } from '../promotion/follower.ts';
import { type CheckFunction, checkInProcess } from '../session/check-pool.ts';
import { principalOf } from './auth.ts';
import { errorMiddleware, HttpError } from './http-error.ts';
import type { ServerMetrics } from './metrics.ts';
import { OPENAI_PATHS, openAIErrorMiddleware } from './openai/openai-error.ts';
import { requireJsonBody } from './require-json.ts';
import { adminRoutes, describeServedPolicy } from './routes/admin.ts';
import { apiKeyRoutes } from './routes/api-keys.ts';
import { chatCompletionRoutes } from './routes/chat-completions.ts';
import { modelRoutes } from './routes/models.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { statsRoutes } from './routes/stats.ts';
import { BODY_REQUIRED } from './schemas.ts';
import { createSecurity, type Security } from './security.ts';
import type { Owner, SessionService } from './session-service.ts';
import { StorageHealth } from './storage-health.ts';

/** Largest JSON body accepted. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface AppDeps {
  pool: pg.Pool;
  policy: PolicySource;
  sessions: SessionService;
  metrics: ServerMetrics;
  /** Static front end to serve at `/`, if any. */
  webDir?: string;
  /** Headers, CORS, rate limits and API keys (security.ts). @default loopback rules, default limits */
  security?: Security;
  /** Keeps the policy on the promoted version; the admin promote/rollback routes act through it. */
  promotions?: PolicyFollower;
  /** How `POST /v1/check` checks (the server's check pool). @default checkInProcess */
  check?: CheckFunction;
  /** What `/healthz` probes, and what new sessions consult. @default a StorageHealth of `pool` */
  health?: StorageHealth;
  /** Where unexpected errors are logged. @default defaultLogger (logger.ts) */
  logger?: Logger;
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Headers, origins, rate limits and API keys come before anything reads a body.
  const security = deps.security ?? createSecurity(deps.pool);
  security.installHttp(app);
  app.use('/v1', requireJsonBody);
  app.use(express.json({ limit: MAX_BODY_BYTES }));
  const ownerOf = (req: unknown): Owner => ({ apiKeyId: principalOf(req as object).apiKeyId });

  const health = deps.health ?? new StorageHealth(deps.pool, { logger: deps.logger });
  // Answers within the probe's deadline (1.5 s) even when the database hangs.
  app.get('/healthz', async (_req, res) => {
    const probe = await health.probe();
    res.status(probe.ok ? 200 : 503).json({
      status: probe.ok ? 'ok' : 'degraded',
      database: probe.ok ? 'ok' : 'unavailable',
      ...(probe.ok ? {} : { reason: probe.reason }),
      policy: deps.policy.current().version,
    });
  });

  app.get('/metrics', async (_req, res) => {
    deps.metrics.policyVersion.reset();
    deps.metrics.policyVersion.set({ version: deps.policy.current().version }, 1);
    res.set('Content-Type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  app.get('/v1/checkers', (_req, res) => {
    res.json({ checkers: listCheckers() });
  });

  const check = deps.check ?? checkInProcess;
  app.post('/v1/check', async (req, res) => {
    if (req.body === undefined) throw new HttpError(400, 'invalid_request', BODY_REQUIRED);
    const { response, constraints } = parseCheckRequest(req.body);
    // The client going away stops its check (and frees the worker).
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    res.json(await check(response, constraints, { signal: gone.signal }));
  });

  app.get('/v1/policy', async (_req, res) => {
    res.json(await describeServedPolicy(deps.pool, deps.policy.current().version));
  });

  app.use(sessionRoutes({ pool: deps.pool, sessions: deps.sessions, ownerOf }));
  app.use(chatCompletionRoutes({ ...deps, ownerOf }));
  app.use(modelRoutes({ pool: deps.pool, policy: deps.policy }));
  app.use(statsRoutes({ pool: deps.pool }));
  app.use(apiKeyRoutes({ pool: deps.pool, verifier: security.auth.verifier }));
  app.use(adminRoutes({ pool: deps.pool, promotions: deps.promotions }));

  if (deps.webDir) app.use(express.static(deps.webDir, { extensions: ['html'] }));

  app.use('/v1', (req) => {
    throw new HttpError(404, 'not_found', `path: no route ${req.method} ${req.originalUrl}`);
  });
  app.use(OPENAI_PATHS, openAIErrorMiddleware);
  app.use(errorMiddleware(deps.logger));
  return app;
}
