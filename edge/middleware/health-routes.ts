/**
 * `/health` and `/ready`, the same on the edge and the workers:
 *
 * - `GET /health` — liveness: the process is up and its event loop answers. It calls no
 *   dependency, so an outage elsewhere never gets a healthy process restarted.
 * - `GET /ready` — readiness: every dependency checked in parallel with a timeout
 *   (shared/health.ts); 200 `"status":"ok"`, or 503 naming each failing dependency with its error
 *   and latency — and 503 `"status":"draining"` as soon as shutdown begins.
 */
import { Hono } from 'hono';
import type { HealthReport } from '../../shared/health.ts';
import type { Lifecycle } from './lifecycle.ts';

export interface HealthRoutesOptions {
  host: 'edge' | 'worker';
  /** The dependency check (also served as the `health.check` / `worker.health` procedures). */
  ready(): Promise<HealthReport>;
  lifecycle?: Pick<Lifecycle, 'draining'>;
}

export function healthRoutes(opts: HealthRoutesOptions): Hono {
  const started = Date.now();
  const app = new Hono();
  app.get('/health', (c) => c.json({ status: 'ok', host: opts.host, uptimeSeconds: Math.round((Date.now() - started) / 1000) }));
  app.get('/ready', async (c) => {
    if (opts.lifecycle?.draining) return c.json({ status: 'draining', host: opts.host, dependencies: {} }, 503);
    const report = await opts.ready();
    return c.json({ ...report, host: opts.host }, report.status === 'ok' ? 200 : 503);
  });
  return app;
}
