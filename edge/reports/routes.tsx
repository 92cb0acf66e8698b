/**
 * The browser-facing report routes: pages (hono/jsx), `GET /reports/<period>.json` for caching
 * proxies and scripts, CSV export, and signed download links. Everything is the signed-in user's
 * own: no route takes a user id. Other users' reports are only reachable through the audited
 * tRPC procedures (router/routers/reports.ts).
 */
import { Hono, type Context } from 'hono';
import { appRouter } from '../../router/root.ts';
import { procedurePaths, TRPCError, trpcErrorResponse } from '../../router/http.ts';
import type { Identity } from '../../router/context.ts';
import type { Logger } from '../../shared/log.ts';
import type { EdgeRegionStores, RegionPorts } from '../../shared/regions/ports.ts';
import { assertSameRegion, regionOf, ResidencyError } from '../../shared/regions/residency.ts';
import { csvFileName, reportToCsv } from '../../shared/reports/csv.ts';
import { parseReportKey } from '../../shared/reports/keys.ts';
import { parsePeriod, rangePeriod, utcToday, type ReportPeriod } from '../../shared/reports/period.ts';
import { ReportsError, type ReportDelivery, type ServedReport } from '../../shared/reports/ports.ts';
import { ErrorPage, ReportListPage, ReportPage, SignInPage } from '../ui/pages.tsx';
import { conditional, PRIVATE_REVALIDATE, reportJson, STATUS } from './http.ts';
import type { LinkSigner } from './links.ts';

type Env = { Variables: { identity: Identity | null; log: Logger; requestId: string } };

export interface ReportRoutesOptions {
  delivery: (c: Context) => ReportDelivery;
  /** Each region's report bucket: a download link names its region. */
  regions: RegionPorts<EdgeRegionStores>;
  /** Edge-signed download links; null when links are served by the object store or disabled. */
  signer: LinkSigner | null;
  /** Edge clock, epoch seconds. */
  now: () => number;
}

/** Worker procedures only the edge itself may call: never forwarded for clients. */
const INTERNAL_DOMAINS = ['reportsBuilder'];

/** Where the edge serves its signed download links (`<LINK_PATH><token>`). */
export const LINK_PATH = '/report-files/';

const FILE = /^([A-Za-z0-9_-]+?)(?:\.(json|csv))?$/;

export function reportRoutes(opts: ReportRoutesOptions) {
  const app = new Hono<Env>();
  const today = () => utcToday(opts.now() * 1000);
  // Period names repeat on every read (`month`, `2025-01`); their meaning changes only with the day.
  let parsedOn = '';
  const parsed = new Map<string, ReportPeriod | null>();
  let daySecond = -1;
  let day = '';
  const periodOf = (name: string): ReportPeriod | null => {
    const now = opts.now();
    if (now !== daySecond) { daySecond = now; day = utcToday(now * 1000); }
    if (day !== parsedOn || parsed.size >= 1000) { parsed.clear(); parsedOn = day; }
    let p = parsed.get(name);
    if (p === undefined) parsed.set(name, (p = parsePeriod(name, day)));
    return p;
  };

  app.use('/trpc/*', async (c, next) => {
    const internal = procedurePaths(new URL(c.req.url)).some((p) => INTERNAL_DOMAINS.includes(p.split('.', 1)[0]!));
    if (!internal) return next();
    return trpcErrorResponse(c.req.raw, appRouter, new TRPCError({ code: 'NOT_FOUND', message: 'No such procedure' }));
  });

  app.get('/reports', async (c) => {
    const identity = c.get('identity');
    if (!identity) return c.html(<SignInPage returnTo="/reports" />);
    const from = c.req.query('from');
    const to = c.req.query('to');
    if (from !== undefined || to !== undefined) {
      const range = from && to ? rangePeriod(from, to) : null;
      if (!range) return page(c, 400, 'Invalid range', 'Choose a start date on or before the end date, at most 366 days apart.');
      return c.redirect(`/reports/${range.id}`, 303);
    }
    return guarded(c, async () => c.html(<ReportListPage username={identity.username} today={today()} reports={await opts.delivery(c).list(identity.userId)} />));
  });

  // Outside /reports/ on purpose: beside `/reports/:file` it would keep Hono off its RegExpRouter
  // (the fastest; see README "Reports"), and the cached report is the edge's hottest route.
  app.get(`${LINK_PATH}:token`, async (c) => {
    if (!opts.signer) return c.json({ error: { code: 'NOT_FOUND', message: 'Download links are not served here' } }, 404);
    const check = await opts.signer.verify(c.req.param('token'));
    if (!check.ok) {
      const expired = check.reason === 'expired';
      return c.json({ error: { code: expired ? 'EXPIRED' : 'FORBIDDEN', message: expired ? 'This download link has expired' : 'This download link is not valid' } }, expired ? 410 : 403);
    }
    let store;
    try { store = linkStore(c, check.region); } catch (err) {
      if (!(err instanceof ResidencyError)) throw err;
      return c.json({ error: { code: 'FORBIDDEN', message: err.message } }, 403);
    }
    let stored;
    try { stored = await store.get(check.key); } catch {
      return c.json({ error: { code: 'SERVICE_UNAVAILABLE', message: 'Report storage is unavailable; please retry shortly' } }, 503, { 'retry-after': '5' });
    }
    if (!stored) return c.json({ error: { code: 'NOT_FOUND', message: 'This report is no longer stored' } }, 404);
    const name = `bionicpro-report-${parseReportKey(check.key)?.periodId ?? 'report'}.json`;
    return conditional(c, `"${stored.etag}"`, stored.body as Uint8Array<ArrayBuffer>, {
      'content-type': 'application/json; charset=utf-8', 'content-disposition': `attachment; filename="${name}"`,
      'cache-control': `private, max-age=${Math.max(0, check.expiresAt - opts.now())}`,
    });
  });

  app.get('/reports/:file', async (c) => {
    const m = FILE.exec(c.req.param('file'));
    const period = m ? periodOf(m[1]!) : null;
    const format = m?.[2] ?? 'html';
    const identity = c.get('identity');
    if (!identity) {
      if (format !== 'html') return c.json({ error: { code: 'UNAUTHORIZED', message: 'Sign in first' } }, 401);
      return c.html(<SignInPage returnTo={c.req.path} />, 401);
    }
    if (!period) return notFound(c, format);
    const delivery = opts.delivery(c);
    let served: ServedReport;
    try { served = await delivery.get(identity.userId, period); } catch (err) { return failure(c, err, format); }
    if (format === 'json') return reportJson(c, served);
    const report = served.report();
    if (format === 'csv') {
      return conditional(c, `"csv-${served.etag}"`, reportToCsv(report), {
        'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${csvFileName(report)}"`, 'x-report-version': String(served.version),
      });
    }
    const link = await delivery.link(identity.userId, period).catch(() => undefined);
    c.header('cache-control', PRIVATE_REVALIDATE['cache-control']);
    c.header('vary', PRIVATE_REVALIDATE.vary);
    return c.html(<ReportPage username={identity.username} report={report} link={link} />);
  });

  /**
   * The bucket a link's object is in: the link's region. A signed-in reader must be of that region
   * (a link never carries a report across regions); links minted before regions existed name none
   * and are only good on the implicit region.
   */
  function linkStore(c: Context<Env>, linkRegion: string | undefined) {
    const { config } = opts.regions;
    const region = linkRegion ?? (config.implicit ? config.regions[0]!.id : undefined);
    if (!region) throw new ResidencyError('NO_REGION', null, null, 'report link');
    const identity = c.get('identity');
    if (identity) assertSameRegion(regionOf(identity, config, c.get('log')), region, 'report', c.get('log'), identity.userId);
    return opts.regions.get(region, c.get('log')).reports;
  }

  return app;
}

/** Runs a report read; a {@link ReportsError} becomes its status, as a page or JSON. */
async function guarded(c: Context<Env>, fn: () => Promise<Response>, format = 'html'): Promise<Response> {
  try {
    return await fn();
  } catch (err) {
    return failure(c, err, format);
  }
}

/** The answer to a failed report read: a {@link ReportsError}'s status, as a page or JSON; anything else is rethrown. */
function failure(c: Context<Env>, err: unknown, format: string): Response | Promise<Response> {
  if (!(err instanceof ReportsError)) throw err;
  const status = STATUS[err.code];
  const extra: Record<string, string> = status === 503 || status === 504 ? { 'retry-after': '5', 'cache-control': 'no-store' } : { 'cache-control': 'no-store' };
  if (format !== 'html') return c.json({ error: { code: err.code === 'UNAVAILABLE' ? 'SERVICE_UNAVAILABLE' : err.code, message: err.message } }, status, extra);
  return page(c, status, status >= 500 ? 'Reports are temporarily unavailable' : 'This report cannot be shown', err.message, extra);
}

function page(c: Context<Env>, status: 400 | 401 | 403 | 404 | 503 | 504, title: string, message: string, headers: Record<string, string> = {}) {
  return c.html(<ErrorPage title={title} message={message} username={c.get('identity')?.username} />, status, headers);
}

function notFound(c: Context<Env>, format: string) {
  const message = 'No such report period. Use day, week, month, YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-MM-DD_YYYY-MM-DD.';
  return format === 'html' ? page(c, 404, 'Report not found', message) : c.json({ error: { code: 'NOT_FOUND', message } }, 404);
}

