/**
 * Reports at the edge, assembled from the edge's ports: delivery (version → LRU → object store →
 * single-flight build), signed links, and the routes. `createEdgeApp` mounts `routes` and puts
 * `forRequest(c)` into the tRPC context as `ports.reports`. See README "Reports".
 */
import type { Context } from 'hono';
import type { Identity } from '../../router/context.ts';
import type { EdgeAuthConfig } from '../../shared/config.ts';
import type { Logger } from '../../shared/log.ts';
import type { Kv, ObjectStore } from '../../shared/ports/index.ts';
import { DEFAULT_REPORTS_EDGE_CONFIG, type ReportsEdgeConfig } from '../../shared/reports/config.ts';
import { ReportsError, type ReportDelivery } from '../../shared/reports/ports.ts';
import type { Session, SessionStore } from '../auth/session-store.ts';
import { createBuilderClient, type BuildReport } from './builder-client.ts';
import { createReportDelivery } from './delivery.ts';
import { createLinkSigner } from './links.ts';
import { reportRoutes } from './routes.tsx';

export interface EdgeReportsOptions {
  kv: Kv;
  objectStore: ObjectStore;
  log: Logger;
  workerUrl: string;
  fetch?: typeof fetch;
  reports?: ReportsEdgeConfig;
  /** Sign-in configuration: its key ring also signs download links. */
  auth?: EdgeAuthConfig | null;
  publicUrl?: string;
  /** Edge clock, epoch seconds. */
  now?: () => number;
  /** Replaces the call to the workers (tests). */
  build?: BuildReport;
}

type ReqVars = { Variables: { identity: Identity | null; session: Session | null; sessionStale: boolean; log: Logger; requestId: string } };

export function createEdgeReports(opts: EdgeReportsOptions, auth: { sessions: SessionStore | null }) {
  const settings = opts.reports ?? DEFAULT_REPORTS_EDGE_CONFIG;
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const delivery = createReportDelivery({
    kv: opts.kv, objectStore: opts.objectStore, log: opts.log, settings, nowMs: () => now() * 1000,
    build: opts.build ?? createBuilderClient({ workerUrl: opts.workerUrl, fetch: opts.fetch }),
  });
  const signer = settings.linkMode === 'edge' && opts.auth ? createLinkSigner(opts.auth.sessionKeys, now) : null;

  async function accessToken(c: Context<ReqVars>): Promise<string | null> {
    if (c.get('sessionStale')) throw new ReportsError('UNAVAILABLE', 'The identity provider is unavailable; please retry shortly');
    const session = c.get('session');
    return session && auth.sessions ? (await auth.sessions.tokens(session))?.accessToken ?? null : null;
  }

  function forRequest(c: Context): ReportDelivery {
    const ctx = c as Context<ReqVars>;
    const scope = { accessToken: () => accessToken(ctx), requestId: ctx.get('requestId'), log: ctx.get('log') };
    return {
      list: (owner) => delivery.list(owner),
      get: (owner, period) => delivery.get(owner, period, scope),
      async link(owner, period) {
        const served = await delivery.get(owner, period, scope);
        if (settings.linkMode === 'store') {
          let url: string;
          try { url = await opts.objectStore.signedUrl(served.key, settings.linkTtlSeconds); } catch (err) {
            throw new ReportsError('UNAVAILABLE', 'Report storage is unavailable; please retry shortly', { cause: err });
          }
          return { url, expiresAt: new Date((now() + settings.linkTtlSeconds) * 1000).toISOString() };
        }
        if (!signer) throw new ReportsError('NOT_FOUND', 'Download links are not enabled');
        const { token, expiresAt } = await signer.sign(served.key, settings.linkTtlSeconds);
        return { url: new URL(`/reports/files/${token}`, opts.publicUrl ?? c.req.url).href, expiresAt: new Date(expiresAt * 1000).toISOString() };
      },
      audit(entry) {
        const actor = ctx.get('identity');
        // `notice` is written at every log level but silent: audit records never depend on LOG_LEVEL.
        ctx.get('log').notice('audit', {
          audit: true, ...entry, actor: actor?.userId ?? null, actorName: actor?.username ?? null, actorRoles: actor?.roles ?? [],
        });
      },
    };
  }

  const routes = reportRoutes({ delivery: forRequest, objectStore: opts.objectStore, signer, now });
  return { routes, forRequest, delivery };
}

export type EdgeReports = ReturnType<typeof createEdgeReports>;
