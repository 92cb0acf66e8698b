/**
 * Reports at the edge, assembled from the edge's ports: delivery (version → LRU → object store →
 * single-flight build), signed links, and the routes. `createEdgeApp` mounts `routes` and puts
 * `forRequest(c)` into the tRPC context as `ports.reports`. See README "Reports".
 *
 * Data residency: each region has its own delivery (bucket, in-process cache, single-flight
 * builds); a request is served by its signed-in user's region's, and download links name the
 * region they were minted in. See README "Data residency".
 */
import type { Context } from 'hono';
import type { Identity } from '../../router/context.ts';
import type { EdgeAuthConfig } from '../../shared/config.ts';
import type { Logger } from '../../shared/log.ts';
import type { Kv, ObjectStore } from '../../shared/ports/index.ts';
import { DEFAULT_REPORTS_EDGE_CONFIG, type ReportsEdgeConfig } from '../../shared/reports/config.ts';
import type { ReportPeriod } from '../../shared/reports/period.ts';
import { ReportsError, type ReportDelivery, type ReportSummary, type ServedReport } from '../../shared/reports/ports.ts';
import { ResidencyError } from '../../shared/regions/residency.ts';
import { singleRegionPorts, type EdgeRegionStores, type RegionPorts } from '../../shared/regions/ports.ts';
import type { Session, SessionStore } from '../auth/session-store.ts';
import { createBuilderClient, type BuildReport } from './builder-client.ts';
import { createReportDelivery, type ReadScope, type ReportDeliveryCore } from './delivery.ts';
import { createLinkSigner, type LinkSigner } from './links.ts';
import { LINK_PATH, reportRoutes } from './routes.tsx';

export interface EdgeReportsOptions {
  kv: Kv;
  /** The implicit region's bucket, used when `regions` is absent. */
  objectStore: ObjectStore;
  /** Each region's report bucket (data residency). */
  regions?: RegionPorts<EdgeRegionStores>;
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

interface RegionDelivery { id: string; store: ObjectStore; core: ReportDeliveryCore }

/** What every request's {@link RequestDelivery} shares: built once per app. */
interface Shared {
  settings: ReportsEdgeConfig;
  regions: RegionPorts<EdgeRegionStores>;
  deliveries: Map<string, RegionDelivery>;
  signer: LinkSigner | null;
  sessions: SessionStore | null;
  publicUrl: string | undefined;
  now: () => number;
}

/**
 * One request's reports: its reader's region, token and logger. Built for every report read (the
 * edge's hottest path), so it is one small object with its methods on the prototype, not a
 * handful of closures.
 */
class RequestDelivery implements ReportDelivery, ReadScope {
  constructor(private readonly shared: Shared, private readonly c: Context<ReqVars>) {}

  get requestId(): string { return this.c.get('requestId'); }
  get log(): Logger { return this.c.get('log'); }

  async accessToken(): Promise<string | null> {
    if (this.c.get('sessionStale')) throw new ReportsError('UNAVAILABLE', 'The identity provider is unavailable; please retry shortly');
    const session = this.c.get('session');
    const { sessions } = this.shared;
    return session && sessions ? (await sessions.tokens(session))?.accessToken ?? null : null;
  }

  /**
   * The signed-in user's region serves every read of this request, whoever's report it is: a
   * privileged reader's request for a user of another region is refused by the builder.
   */
  private regional(): RegionDelivery {
    try {
      return this.shared.deliveries.get(this.shared.regions.forIdentity(this.c.get('identity') ?? {}, this.log).id)!;
    } catch (err) {
      if (err instanceof ResidencyError) throw new ReportsError('FORBIDDEN', err.message, { cause: err });
      throw err;
    }
  }

  async list(owner: string): Promise<ReportSummary[]> {
    return this.regional().core.list(owner);
  }

  get(owner: string, period: ReportPeriod): Promise<ServedReport> {
    // Not async: a hot report's promise is already settled, and wrapping it would cost ticks.
    let region;
    try { region = this.regional(); } catch (err) { return Promise.reject(err); }
    return region.core.get(owner, period, this);
  }

  async link(owner: string, period: ReportPeriod): Promise<{ url: string; expiresAt: string }> {
    const { settings, signer, now } = this.shared;
    const region = this.regional();
    const served = await region.core.get(owner, period, this);
    if (settings.linkMode === 'store') {
      let url: string;
      try { url = await region.store.signedUrl(served.key, settings.linkTtlSeconds); } catch (err) {
        throw new ReportsError('UNAVAILABLE', 'Report storage is unavailable; please retry shortly', { cause: err });
      }
      return { url, expiresAt: new Date((now() + settings.linkTtlSeconds) * 1000).toISOString() };
    }
    if (!signer) throw new ReportsError('NOT_FOUND', 'Download links are not enabled');
    const { token, expiresAt } = await signer.sign(served.key, settings.linkTtlSeconds, region.id);
    return { url: new URL(`${LINK_PATH}${token}`, this.shared.publicUrl ?? this.c.req.url).href, expiresAt: new Date(expiresAt * 1000).toISOString() };
  }

  audit(entry: { action: string; owner: string; period?: string; reason: string }): void {
    const actor = this.c.get('identity');
    // `notice` is written at every log level but silent: audit records never depend on LOG_LEVEL.
    this.log.notice('audit', {
      audit: true, ...entry, actor: actor?.userId ?? null, actorName: actor?.username ?? null, actorRoles: actor?.roles ?? [],
    });
  }
}

export function createEdgeReports(opts: EdgeReportsOptions, auth: { sessions: SessionStore | null }) {
  const settings = opts.reports ?? DEFAULT_REPORTS_EDGE_CONFIG;
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const regions = opts.regions ?? singleRegionPorts<EdgeRegionStores>({ reports: opts.objectStore });
  const build = opts.build ?? createBuilderClient({ workerUrl: opts.workerUrl, fetch: opts.fetch });
  const deliveries = new Map(regions.all().map((r) => [r.id, {
    id: r.id,
    store: r.reports,
    core: createReportDelivery({ kv: opts.kv, objectStore: r.reports, log: opts.log, settings, nowMs: () => now() * 1000, build }),
  }] as const));
  const signer = settings.linkMode === 'edge' && opts.auth ? createLinkSigner(opts.auth.sessionKeys, now) : null;
  const shared: Shared = { settings, regions, deliveries, signer, sessions: auth.sessions, publicUrl: opts.publicUrl, now };
  const forRequest = (c: Context): ReportDelivery => new RequestDelivery(shared, c as Context<ReqVars>);

  const routes = reportRoutes({ delivery: forRequest, regions, signer, now });
  return { routes, forRequest, deliveries, regions };
}

export type EdgeReports = ReturnType<typeof createEdgeReports>;
