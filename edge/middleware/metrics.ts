/**
 * Request metrics and the scrape endpoint, for the edge and the workers alike (both are Hono apps).
 * The route label is the matched route template (`/reports/:period`), never the raw path, so user
 * ids cannot become label values; requests no route matched share one label.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { MetricsSource, OpsMetrics } from '../../shared/metrics/ops-metrics.ts';
import { constantTimeEqual } from '../auth/tokens.ts';

export const UNMATCHED_ROUTE = '(unmatched)';

/**
 * Counts and times one answered request; `routePath` is Hono's after next(), which names the
 * handler that answered ('/*' is only a middleware). Returns the route label it used.
 */
export function observeRequest(metrics: Pick<OpsMetrics, 'http'>, c: Context, routePath: string, seconds: number): string {
  const status = c.res.status;
  const route = status === 404 && routePath === '/*' ? UNMATCHED_ROUTE : routePath;
  metrics.http({ method: c.req.method, route, status, seconds });
  return route;
}

/** Counts and times every request into `metrics` (time to the response headers). The edge does this in request-context.ts. */
export const httpMetrics = (metrics: Pick<OpsMetrics, 'http'>): MiddlewareHandler =>
  async function httpMetrics(c, next) {
    const started = performance.now();
    try {
      await next();
    } finally {
      observeRequest(metrics, c, c.req.routePath, (performance.now() - started) / 1000);
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
