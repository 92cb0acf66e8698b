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
  /** True while answers should carry `Connection: close` (draining, on a runtime that needs the hint). */
  readonly closing: boolean;
  readonly middleware: MiddlewareHandler;
}

/** Answers carry `Connection: close` while draining (Node): keep-alive clients move elsewhere. */
const closing: MiddlewareHandler = async (c, next) => {
  await next();
  try { c.res.headers.set('connection', 'close'); } catch {
    // Responses built from a fetch() have immutable headers.
    c.res = new Response(c.res.body, c.res);
    c.res.headers.set('connection', 'close');
  }
};

export function createLifecycle(opts: { closeConnections?: boolean } = {}): Lifecycle {
  let draining = false;
  return {
    get draining() { return draining; },
    drain() { draining = true; },
    get closing() { return draining && opts.closeConnections === true; },
    // Not async itself: while serving (always, but for the last seconds) requests pass straight on.
    middleware: function lifecycle(c, next) {
      return draining && opts.closeConnections ? closing(c, next) : next();
    },
  };
}
