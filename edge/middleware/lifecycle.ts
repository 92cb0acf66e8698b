/**
 * A host's lifecycle as its HTTP face sees it: serving, then draining once shutdown begins.
 * Draining flips `/ready` to 503 (load balancers stop sending work) while requests already sent
 * are still answered; on Node each answer then carries `Connection: close`, so keep-alive
 * clients move to another instance instead of reusing a connection that is about to close.
 */
import type { MiddlewareHandler } from 'hono';

export interface Lifecycle {
  readonly draining: boolean;
  /** Starts draining (idempotent). */
  drain(): void;
  readonly middleware: MiddlewareHandler;
}

export function createLifecycle(opts: { closeConnections?: boolean } = {}): Lifecycle {
  let draining = false;
  return {
    get draining() { return draining; },
    drain() { draining = true; },
    middleware: async function lifecycle(c, next) {
      await next();
      // Deno.serve closes connections itself on shutdown; only Node needs the hint.
      if (!draining || !opts.closeConnections) return;
      try { c.res.headers.set('connection', 'close'); } catch {
        // Responses built from a fetch() have immutable headers.
        c.res = new Response(c.res.body, c.res);
        c.res.headers.set('connection', 'close');
      }
    },
  };
}
