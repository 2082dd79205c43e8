/**
 * `createApp(deps)`: the express app with every HTTP route of DESIGN.md. No port is opened here;
 * `startServer` does that and attaches socket.io.
 */
import express from 'express';
import type pg from 'pg';
import { runCheckRequest } from '../checkers/check-request.ts';
import { listCheckers } from '../checkers/registry.ts';
import type { PolicySource } from '../policy/types.ts';
import { errorMiddleware, HttpError } from './http-error.ts';
import type { ServerMetrics } from './metrics.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { statsRoutes } from './routes/stats.ts';
import type { Owner, SessionService } from './session-service.ts';

/** Largest JSON body accepted. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface AppDeps {
  pool: pg.Pool;
  policy: PolicySource;
  sessions: SessionService;
  metrics: ServerMetrics;
  /** Static front end to serve at `/`, if any. */
  webDir?: string;
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: MAX_BODY_BYTES }));
  const ownerOf = (): Owner => ({ apiKeyId: null });

  app.get('/healthz', async (_req, res) => {
    let database = 'ok';
    try {
      await deps.pool.query('SELECT 1');
    } catch {
      database = 'unavailable';
    }
    res.status(database === 'ok' ? 200 : 503).json({
      status: database === 'ok' ? 'ok' : 'degraded',
      database,
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

  app.post('/v1/check', (req, res) => {
    res.json(runCheckRequest(req.body));
  });

  app.get('/v1/policy', (_req, res) => {
    res.json({ version: deps.policy.current().version });
  });

  app.use(sessionRoutes({ pool: deps.pool, sessions: deps.sessions, ownerOf }));
  app.use(statsRoutes({ pool: deps.pool }));

  if (deps.webDir) app.use(express.static(deps.webDir, { extensions: ['html'] }));

  app.use('/v1', (req) => {
    throw new HttpError(404, 'not_found', `path: no route ${req.method} ${req.originalUrl}`);
  });
  app.use(errorMiddleware);
  return app;
}
