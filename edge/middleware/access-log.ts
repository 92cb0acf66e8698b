import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../../shared/log.ts';

/** One JSON line per request: route template (never raw ids), status, duration. */
export const accessLog = (): MiddlewareHandler<{ Variables: { log: Logger } }> =>
  async function accessLog(c, next) {
    const started = performance.now();
    await next();
    c.get('log').info('request', {
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  };
