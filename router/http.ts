/**
 * Serving the router over fetch, shared by the edge and the workers so both log and shape errors
 * the same way. HTTP status comes from tRPC's error codes in one place.
 */
import { TRPCError } from '@trpc/server';
import type { AnyRouter } from '@trpc/server';
import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import type { RouterContext } from './context.ts';

export const TRPC_ENDPOINT = '/trpc';

export interface ServeTrpcOptions {
  router: AnyRouter;
  createContext: (req: Request, resHeaders: Headers) => RouterContext | Promise<RouterContext>;
}

/** Answers one tRPC HTTP request. Unexpected errors are logged with the request id, never returned. */
export function serveTrpc(req: Request, opts: ServeTrpcOptions): Promise<Response> {
  let ctx: RouterContext | undefined;
  return fetchRequestHandler({
    endpoint: TRPC_ENDPOINT,
    req,
    router: opts.router,
    createContext: async ({ req, resHeaders }) => (ctx = await opts.createContext(req, resHeaders)),
    onError({ error, path }) {
      if (error.code === 'INTERNAL_SERVER_ERROR') ctx?.log.error('procedure failed', { path, err: error.cause ?? error });
    },
  });
}

/**
 * Answers every call in a tRPC request with the same error, shaped exactly as the router would
 * (batch or not, streaming or not) — used when a request cannot reach its procedures at all.
 */
export function trpcErrorResponse(req: Request, router: AnyRouter, error: TRPCError): Promise<Response> {
  return fetchRequestHandler({
    endpoint: TRPC_ENDPOINT,
    req,
    router,
    createContext: () => { throw error; },
  });
}

/** Procedure paths named in a tRPC request URL (`/trpc/a.b,c.d`). */
export function procedurePaths(url: URL): string[] {
  const rest = url.pathname.slice(url.pathname.indexOf(TRPC_ENDPOINT) + TRPC_ENDPOINT.length + 1);
  return decodeURIComponent(rest).split(',').filter(Boolean);
}

export { TRPCError };
