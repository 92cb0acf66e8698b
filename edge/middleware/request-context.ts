/**
 * The edge's per-request common chain in one middleware (one async step instead of four): the
 * request id (the caller's `X-Request-Id` when well-formed, else a fresh UUID; echoed on the
 * answer), the request's child logger, then — once answered — the request metrics and the access
 * line. It runs on every request, so it does only what it must: one header read, a logger child
 * that merges its fields only when something logs, Hono's route path computed once.
 */
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../../shared/log.ts';
import type { OpsMetrics } from '../../shared/metrics/ops-metrics.ts';
import { logAccess } from './access-log.ts';
import { observeRequest } from './metrics.ts';

export const REQUEST_ID_HEADER = 'x-request-id';
// hono/request-id's rule: an id a client sends is kept only when short and plain.
const MAX_ID_LENGTH = 255;
const UNSAFE_ID = /[^\w\-=]/;

export interface RequestContextOptions {
  log: Logger;
  metrics: Pick<OpsMetrics, 'http'>;
}

export const requestContext = (opts: RequestContextOptions): MiddlewareHandler<{ Variables: { requestId: string; log: Logger } }> =>
  async function requestContext(c, next) {
    const started = performance.now();
    let id = c.req.header(REQUEST_ID_HEADER);
    if (!id || id.length > MAX_ID_LENGTH || UNSAFE_ID.test(id)) id = crypto.randomUUID();
    c.set('requestId', id);
    c.header(REQUEST_ID_HEADER, id);
    const log = opts.log.child({ requestId: id });
    c.set('log', log);
    try {
      await next();
    } finally {
      const ms = performance.now() - started;
      const route = c.req.routePath;
      observeRequest(opts.metrics, c, route, ms / 1000);
      // The access line keeps Hono's route path ('/*' for unmatched), as the access-log middleware does.
      logAccess(log, c, route, ms);
    }
  };
