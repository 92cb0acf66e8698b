/**
 * The worker's HTTP face: its part of the router at /trpc and its own /health.
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

export interface WorkerAppDeps {
  ports: Ports;
  log: Logger;
  health(): Promise<HealthReport>;
  /** Verifies `Authorization: Bearer` (JWT via JWKS, added by the auth issue); null = anonymous. */
  authenticate?(req: Request): Promise<Identity | null>;
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
  app.get('/health', async (c) => {
    const report = await deps.health();
    return c.json({ ...report, host: 'worker' }, report.status === 'ok' ? 200 : 503);
  });
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
