/**
 * The edge: a Hono app built only on Web APIs (runs on Deno, Node and edge runtimes).
 * Serves edge procedures itself and forwards worker procedures to the worker pool.
 */
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { isWorkerPath } from '../router/paths.ts';
import { appRouter, edgeRouter } from '../router/root.ts';
import { procedurePaths, serveTrpc, TRPCError, trpcErrorResponse } from '../router/http.ts';
import type { JWTVerifyGetKey } from 'jose';
import type { EdgeAuthConfig } from '../shared/config.ts';
import { checkHealth } from '../shared/health.ts';
import type { Logger } from '../shared/log.ts';
import type { Kv, ObjectStore } from '../shared/ports/index.ts';
import { healthRoutes } from './middleware/health-routes.ts';
import type { Lifecycle } from './middleware/lifecycle.ts';
import { metricsEndpoint } from './middleware/metrics.ts';
import { requestContext, type HeaderReader } from './middleware/request-context.ts';
import { createEdgeMetrics, type MetricsSource, type OpsMetrics } from '../shared/metrics/ops-metrics.ts';
import { createEdgeAuth } from './auth/index.ts';
import type { AuthVariables } from './auth/middleware.ts';
import { refuse } from './auth/respond.ts';
import { DEFAULT_RATE_LIMITS, type RateLimitSettings } from './auth/rate-limit.ts';
import { createEdgeReports } from './reports/index.ts';
import type { ReportsEdgeConfig } from '../shared/reports/config.ts';
import { createNotificationFeed, type NotificationFeedOptions } from '../shared/notifications/feed.ts';
import { notificationRoutes } from './notifications/routes.tsx';
import { telemetryRoutes } from './telemetry/routes.ts';
import type { TelemetryConfig } from '../shared/telemetry/config.ts';
import type { EdgeRegionStores, RegionPorts } from '../shared/regions/ports.ts';

export interface EdgeDeps {
  kv: Kv;
  objectStore: ObjectStore;
  /** Each region's report bucket (data residency, edge/regions.ts); absent: the one implicit region on `objectStore`. */
  regions?: RegionPorts<EdgeRegionStores>;
  log: Logger;
  /** Base URL of the worker pool (its `/trpc` and `/ready`). */
  workerUrl: string;
  fetch?: typeof fetch;
  healthTimeoutMs?: number;
  /** Sign-in (OIDC, sessions, sealed tokens). Absent or null: sign-in is disabled, every caller is anonymous. */
  auth?: EdgeAuthConfig | null;
  /** The edge's public URL (redirect URIs, CSRF origin, return-to); required with `auth`. */
  publicUrl?: string;
  /** Defaults to {@link DEFAULT_RATE_LIMITS}; null turns rate limiting off (routing tests only). */
  rateLimits?: RateLimitSettings | null;
  /** The caller's address, from the runtime (see edge/main.*.ts) or a trusted proxy header. */
  clientIp?: (c: Context) => string | undefined;
  /** Reads a request header the runtime's cheapest way (edge/main.node.ts); absent: through the Web Request. */
  requestHeader?: HeaderReader;
  /** Edge clock in epoch seconds (session timeouts, refresh timing). */
  now?: () => number;
  /** Pins the provider's verification keys (tests); by default they are fetched from its JWKS URL. */
  jwks?: JWTVerifyGetKey;
  /** Report delivery settings (cache size, links, build timeout); defaults when absent. */
  reports?: ReportsEdgeConfig;
  /** Live notifications: per-user connection limit, poll interval (defaults when absent). */
  notifications?: Omit<NotificationFeedOptions, 'kv'>;
  /** Device telemetry ingestion (device key ring, size limit); absent: devices get 503. */
  telemetry?: TelemetryConfig | null;
  /** Where request, procedure and event metrics go; a fresh edge registry when absent. */
  metrics?: OpsMetrics & MetricsSource;
  /** Bearer token for `/metrics`; absent: open (configuration requires one in production). */
  metricsToken?: string;
  /** Shutdown state (edge/main.*.ts): draining flips `/ready` to 503. */
  lifecycle?: Lifecycle;
}

export type EdgeEnv = { Variables: { requestId: string } & AuthVariables };

const FORWARDED_HEADERS = ['content-type', 'accept', 'trpc-accept', 'trpc-batch-mode', 'x-request-id'];

/** Builds the edge application from its ports. */
export function createEdgeApp(deps: EdgeDeps): Hono<EdgeEnv> {
  const doFetch = deps.fetch ?? fetch;
  const app = new Hono<EdgeEnv>();
  // Regions with a KV of their own keep their people's sessions and notifications there (data residency).
  const regionalKv = new Map((deps.regions?.all() ?? []).flatMap((r) => (r.kv ? [[r.id, r.kv] as const] : [])));
  const health = () =>
    checkHealth(
      {
        kv: () => deps.kv.ping(),
        ...Object.fromEntries([...regionalKv].map(([id, kv]) => [`kv_${id}`, () => kv.ping()])),
        objectStore: () => deps.objectStore.ping(),
        worker: async () => {
          const res = await doFetch(new URL('/ready', deps.workerUrl), { signal: AbortSignal.timeout(deps.healthTimeoutMs ?? 2000) });
          await res.body?.cancel();
          if (!res.ok) throw new Error(`worker /ready answered ${res.status}`);
        },
      },
      deps.healthTimeoutMs,
    );

  const auth = createEdgeAuth({
    kv: deps.kv, regionalKv: (id) => regionalKv.get(id), log: deps.log, publicUrl: deps.publicUrl, config: deps.auth ?? null,
    rateLimits: deps.rateLimits === undefined ? DEFAULT_RATE_LIMITS : deps.rateLimits,
    clientIp: deps.clientIp, now: deps.now, jwks: deps.jwks,
  });

  const metrics = deps.metrics ?? createEdgeMetrics();
  // Request id, logger, metrics, access log and the draining hint: one middleware, on every request (request-context.ts).
  app.use(requestContext({ log: deps.log, metrics, header: deps.requestHeader, lifecycle: deps.lifecycle }));
  app.route('/', healthRoutes({ host: 'edge', ready: health, lifecycle: deps.lifecycle }));
  app.get('/metrics', metricsEndpoint({ source: metrics, token: deps.metricsToken }));
  // Devices sign each upload and hold no cookie: mounted before the browser CSRF and session layers.
  app.route('/telemetry', telemetryRoutes({ config: deps.telemetry, kv: deps.kv, workerUrl: deps.workerUrl, fetch: doFetch }));
  app.use(auth.middleware);
  app.route('/auth', auth.routes);
  const reports = createEdgeReports({ ...deps, fetch: doFetch }, auth);
  app.route('/', reports.routes);
  // A user's notification stream is in their region's KV, where the worker pushed it (data residency).
  const notifications = createNotificationFeed({
    ...deps.notifications, kv: (user, log) => (deps.regions ? regionalKv.get(deps.regions.forIdentity(user, log).id) : undefined) ?? deps.kv,
  });
  app.route('/', notificationRoutes(notifications));

  app.all('/trpc/*', async (c) => {
    const paths = procedurePaths(new URL(c.req.url));
    const toWorker = paths.filter(isWorkerPath);
    if (toWorker.length === 0) {
      return serveTrpc(c.req.raw, {
        router: edgeRouter,
        createContext: () => ({
          requestId: c.get('requestId'), identity: c.get('identity'), log: c.get('log'),
          ports: { kv: deps.kv, objectStore: deps.objectStore, reports: reports.forRequest(c), notifications, regions: reports.regions }, health, host: 'edge', metrics,
        }),
      });
    }
    if (toWorker.length !== paths.length) {
      return trpcErrorResponse(c.req.raw, appRouter, new TRPCError({
        code: 'BAD_REQUEST', message: 'A batch may not mix edge and worker procedures; use createBionicClient, which splits them',
      }));
    }
    // An expired token the provider could not renew would only earn UNAUTHORIZED from the workers.
    if (c.get('sessionStale')) return refuse(c, 503, 'The identity provider is unavailable; please retry shortly', { 'retry-after': '5' });
    const session = c.get('session');
    const tokens = session && auth.sessions ? await auth.sessions.tokens(session) : null;
    return forwardToWorker(c.req.raw, c.get('requestId'), c.get('log'), tokens?.accessToken ?? null);
  });

  async function forwardToWorker(req: Request, reqId: string, log: Logger, accessToken: string | null): Promise<Response> {
    const incoming = new URL(req.url);
    const target = new URL(incoming.pathname + incoming.search, deps.workerUrl);
    const headers = new Headers();
    for (const h of FORWARDED_HEADERS) {
      const v = req.headers.get(h);
      if (v) headers.set(h, v);
    }
    headers.set('x-request-id', reqId);
    // The user's access token travels only edge → worker; the browser never holds one.
    if (accessToken) headers.set('authorization', `Bearer ${accessToken}`);
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
