/**
 * The worker's HTTP face: its part of the router at /trpc, /health (liveness), /ready (its
 * dependencies) and /metrics.
 * Node-only host, but the app itself is plain Hono.
 */
import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import type { Identity, Ports } from '../router/context.ts';
import { serveTrpc } from '../router/http.ts';
import { workerRouter } from '../router/root.ts';
import type { HealthReport } from '../shared/health.ts';
import type { Logger } from '../shared/log.ts';
import { accessLog } from '../edge/middleware/access-log.ts';
import { healthRoutes } from '../edge/middleware/health-routes.ts';
import type { Lifecycle } from '../edge/middleware/lifecycle.ts';
import { httpMetrics, metricsEndpoint } from '../edge/middleware/metrics.ts';
import type { MetricsSource, OpsMetrics } from '../shared/metrics/ops-metrics.ts';

export interface WorkerAppDeps {
  ports: Ports;
  log: Logger;
  health(): Promise<HealthReport>;
  /** Verifies `Authorization: Bearer` (JWT via JWKS, added by the auth issue); null = anonymous. */
  authenticate?(req: Request): Promise<Identity | null>;
  /** Request and procedure metrics, served at /metrics (workers/metrics); absent: no /metrics. */
  metrics?: OpsMetrics & MetricsSource;
  /** Bearer token for /metrics; absent: open (configuration requires one in production). */
  metricsToken?: string;
  /** Shutdown state: draining flips /ready to 503. */
  lifecycle?: Lifecycle;
}

export function createWorkerApp(deps: WorkerAppDeps) {
  const app = new Hono<{ Variables: { requestId: string; log: Logger } }>();
  // Keep the edge's request id so one id follows a call across hosts.
  app.use(requestId({ headerName: 'x-request-id', generator: () => crypto.randomUUID() }));
  app.use(async (c, next) => {
    c.set('log', deps.log.child({ requestId: c.get('requestId') }));
    await next();
  });
  app.use(accessLog());
  if (deps.metrics) {
    app.use(httpMetrics(deps.metrics));
    app.get('/metrics', metricsEndpoint({ source: deps.metrics, token: deps.metricsToken }));
  }
  if (deps.lifecycle) app.use(deps.lifecycle.middleware);
  app.route('/', healthRoutes({ host: 'worker', ready: deps.health, lifecycle: deps.lifecycle }));
  app.all('/trpc/*', (c) =>
    serveTrpc(c.req.raw, {
      router: workerRouter,
      createContext: async (req) => ({
        requestId: c.get('requestId'),
        identity: deps.authenticate ? await deps.authenticate(req) : null,
        log: c.get('log'),
        ports: deps.ports,
        health: deps.health,
        host: 'worker',
        metrics: deps.metrics,
      }),
    }),
  );
  app.notFound((c) => c.json({ error: { code: 'NOT_FOUND', message: `No route for ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((err, c) => {
    c.get('log')?.error('unhandled error', { err });
    return c.json({ error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' } }, 500);
  });
  return app;
}
