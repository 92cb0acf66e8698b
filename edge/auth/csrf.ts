/**
 * CSRF defence for everything that changes state (tRPC mutations, logout, any non-safe method):
 * the request must carry a same-origin `Origin` header AND the custom header `x-bionic-csrf: 1`.
 * A cross-site form cannot set a custom header, and a cross-site fetch that sets one needs a CORS
 * preflight this edge never grants. Safe methods (GET, HEAD, OPTIONS) pass untouched.
 */
import type { Env, MiddlewareHandler } from 'hono';
import { CSRF_HEADER } from '../../router/paths.ts';
import { refuse } from './respond.ts';

export { CSRF_HEADER };
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface CsrfOptions {
  /** The edge's public origin (`https://bionic.example`); defaults to the request URL's origin. */
  origin?: string;
}

/** The guard; with `then`, that middleware runs right after it, as one step of the app's chain. */
export const csrf = <E extends Env = Env>(opts: CsrfOptions = {}, then?: MiddlewareHandler<E>): MiddlewareHandler<E> => {
  const after: MiddlewareHandler<E> = then ?? ((_c, next) => next());
  const check: MiddlewareHandler<E> = async (c, next) => {
    const expected = opts.origin ?? new URL(c.req.url).origin;
    const origin = c.req.header('origin');
    if (!origin || origin !== expected) {
      return refuse(c, 403, 'Cross-site request refused: the Origin header must name this site');
    }
    if (c.req.header(CSRF_HEADER) !== '1') {
      return refuse(c, 403, `Request refused: the ${CSRF_HEADER} header is required for changes`);
    }
    return after(c, next);
  };
  // Not async itself: safe methods (most requests) pass straight on, without a promise of their own.
  return function csrf(c, next) {
    return SAFE.has(c.req.method) ? after(c, next) : check(c, next);
  };
};
