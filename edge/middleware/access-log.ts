import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from '../../shared/log.ts';

/** Writes the access line of an answered request: route template (never raw ids), status, duration. */
export function logAccess(log: Logger, c: Context, route: string, ms: number): void {
  log.info('request', { method: c.req.method, route, status: c.res.status, ms: Math.round(ms * 10) / 10 });
}

/** One JSON line per request (see {@link logAccess}). The edge does this in request-context.ts. */
export const accessLog = (): MiddlewareHandler<{ Variables: { log: Logger } }> =>
  async function accessLog(c, next) {
    const started = performance.now();
    await next();
    logAccess(c.get('log'), c, c.req.routePath, performance.now() - started);
  };
