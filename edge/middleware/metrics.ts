/**
 * Request metrics and the scrape endpoint, for the edge and the workers alike (both are Hono apps).
 * The route label is the matched route template (`/reports/:period`), never the raw path, so user
 * ids cannot become label values; requests no route matched share one label.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { MetricsSource, OpsMetrics } from '../../shared/metrics/ops-metrics.ts';
import { constantTimeEqual } from '../auth/tokens.ts';

export const UNMATCHED_ROUTE = '(unmatched)';

/** Counts and times every request into `metrics` (time to the response headers). */
export const httpMetrics = (metrics: Pick<OpsMetrics, 'http'>): MiddlewareHandler =>
  async function httpMetrics(c, next) {
    const started = performance.now();
    try {
      await next();
    } finally {
      const status = c.res.status;
      // After next() Hono's routePath names the handler that answered; '/*' is only a middleware.
      const route = status === 404 && c.req.routePath === '/*' ? UNMATCHED_ROUTE : c.req.routePath;
      metrics.http({ method: c.req.method, route, status, seconds: (performance.now() - started) / 1000 });
    }
  };

export interface MetricsEndpointOptions {
  source: MetricsSource;
  /** `Authorization: Bearer <token>` required when set; absent = open (configuration refuses that in production). */
  token?: string;
}

/** `GET /metrics`: the Prometheus text exposition, behind a bearer token when one is configured. */
export const metricsEndpoint = (opts: MetricsEndpointOptions) =>
  async function metrics(c: Context): Promise<Response> {
    if (opts.token) {
      const presented = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '')?.[1]?.trim() ?? '';
      if (!constantTimeEqual(presented, opts.token)) {
        return c.json({ error: { code: 'UNAUTHORIZED', message: 'A valid metrics token is required' } }, 401, { 'www-authenticate': 'Bearer realm="metrics"' });
      }
    }
    return new Response(await opts.source.render(), { headers: { 'content-type': opts.source.contentType, 'cache-control': 'no-store' } });
  };
