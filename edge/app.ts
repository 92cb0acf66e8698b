/**
 * The edge: a Hono app built only on Web APIs (runs on Deno, Node and edge runtimes).
 * Serves edge procedures itself and forwards worker procedures to the worker pool.
 */
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { isWorkerPath } from '../router/paths.ts';
import { appRouter, edgeRouter } from '../router/root.ts';
import { procedurePaths, serveTrpc, TRPCError, trpcErrorResponse } from '../router/http.ts';
import type { Identity } from '../router/context.ts';
import { checkHealth } from '../shared/health.ts';
import type { Logger } from '../shared/log.ts';
import type { Kv, ObjectStore } from '../shared/ports/index.ts';
import { accessLog } from './middleware/access-log.ts';

export interface EdgeDeps {
  kv: Kv;
  objectStore: ObjectStore;
  log: Logger;
  /** Base URL of the worker pool (its `/trpc` and `/health`). */
  workerUrl: string;
  fetch?: typeof fetch;
  healthTimeoutMs?: number;
}

export type EdgeEnv = { Variables: { requestId: string; log: Logger; identity: Identity | null } };

const FORWARDED_HEADERS = ['content-type', 'accept', 'trpc-accept', 'trpc-batch-mode', 'x-request-id'];

/** Builds the edge application from its ports. */
export function createEdgeApp(deps: EdgeDeps): Hono<EdgeEnv> {
  const doFetch = deps.fetch ?? fetch;
  const app = new Hono<EdgeEnv>();
  const health = () =>
    checkHealth(
      {
        kv: () => deps.kv.ping(),
        objectStore: () => deps.objectStore.ping(),
        worker: async () => {
          const res = await doFetch(new URL('/health', deps.workerUrl), { signal: AbortSignal.timeout(deps.healthTimeoutMs ?? 2000) });
          await res.body?.cancel();
          if (!res.ok) throw new Error(`worker /health answered ${res.status}`);
        },
      },
      deps.healthTimeoutMs,
    );

  app.use(requestId({ generator: () => crypto.randomUUID() }));
  app.use(async (c, next) => {
    c.set('log', deps.log.child({ requestId: c.get('requestId') }));
    c.set('identity', null); // the auth layer fills this from the session cookie
    await next();
  });
  app.use(accessLog());

  app.get('/health', async (c) => {
    const report = await health();
    return c.json({ ...report, host: 'edge' }, report.status === 'ok' ? 200 : 503);
  });

  app.all('/trpc/*', async (c) => {
    const paths = procedurePaths(new URL(c.req.url));
    const toWorker = paths.filter(isWorkerPath);
    if (toWorker.length === 0) {
      return serveTrpc(c.req.raw, {
        router: edgeRouter,
        createContext: () => ({
          requestId: c.get('requestId'), identity: c.get('identity'), log: c.get('log'),
          ports: { kv: deps.kv, objectStore: deps.objectStore }, health, host: 'edge',
        }),
      });
    }
    if (toWorker.length !== paths.length) {
      return trpcErrorResponse(c.req.raw, appRouter, new TRPCError({
        code: 'BAD_REQUEST', message: 'A batch may not mix edge and worker procedures; use createBionicClient, which splits them',
      }));
    }
    return forwardToWorker(c.req.raw, c.get('requestId'), c.get('log'));
  });

  async function forwardToWorker(req: Request, reqId: string, log: Logger): Promise<Response> {
    const incoming = new URL(req.url);
    const target = new URL(incoming.pathname + incoming.search, deps.workerUrl);
    const headers = new Headers();
    for (const h of FORWARDED_HEADERS) {
      const v = req.headers.get(h);
      if (v) headers.set(h, v);
    }
    headers.set('x-request-id', reqId);
    // The auth layer adds `authorization: Bearer <access token>` here; the browser never sends one.
    const retry = req.clone();
    try {
      const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await req.arrayBuffer();
      const res = await doFetch(target, { method: req.method, headers, body });
      const out = new Headers();
      for (const h of ['content-type', 'vary', 'cache-control', 'transfer-encoding']) {
        const v = res.headers.get(h);
        if (v) out.set(h, v);
      }
      return new Response(res.body, { status: res.status, headers: out });
    } catch (err) {
      log.error('worker unreachable', { target: target.origin, err });
      return trpcErrorResponse(retry, appRouter, new TRPCError({ code: 'BAD_GATEWAY', message: 'The worker pool is unavailable' }));
    }
  }

  app.notFound((c) => c.json({ error: { code: 'NOT_FOUND', message: `No route for ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse();
    c.get('log')?.error('unhandled error', { err });
    return c.json({ error: { code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error', requestId: c.get('requestId') } }, 500);
  });
  return app;
}
