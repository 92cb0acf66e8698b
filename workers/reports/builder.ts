/**
 * The report builder: reads one user's statistics for one period from ClickHouse (and the models
 * of their devices from the CRM), renders the JSON report, and stores it under the user's current
 * version. The version is read *before* the statistics: the ETL loads first and bumps after, so a
 * report stored under version n always contains at least load n.
 *
 * A report is rendered completely in memory and written with one PUT, which the object store
 * applies atomically: a failure leaves no partial object behind, only a clear UNAVAILABLE error.
 *
 * Data residency: a report is built from its owner's region's statistics (its ClickHouse database,
 * where the ETL of that region loads them) and CRM, and stored in that region's bucket. The caller names the region (the worker-verified identity's, router/routers/reports-builder.ts);
 * the ETL's pre-building lets the builder find it ({@link createSubjectLocator}).
 */
import type { Logger } from '../../shared/log.ts';
import { opsEvents } from '../../shared/metrics/events.ts';
import type { Kv, ObjectStore, Olap } from '../../shared/ports/index.ts';
import type { OltpQueryable } from '../../shared/ports/oltp.ts';
import { singleRegionPorts, type EdgeRegionStores, type RegionPorts } from '../../shared/regions/ports.ts';
import { createSubjectLocator } from '../regions/locate.ts';
import { isValidUserId, readReportVersion, reportObjectKey } from '../../shared/reports/keys.ts';
import { parsePeriod, type ReportPeriod } from '../../shared/reports/period.ts';
import { ReportsError, type BuiltReport, type ReportBuilder } from '../../shared/reports/ports.ts';
import { createModelLookup, type ModelLookup } from './models.ts';
import { queryReportRows } from './query.ts';
import { renderReport } from './render.ts';

/**
 * What the builder uses of a region: its bucket, its ClickHouse database (statistics and CRM
 * replicas; absent: the builder's `olap`), and its CRM for models the replicas do not know.
 */
export type BuilderRegionStores = EdgeRegionStores & { crm?: OltpQueryable; olap?: Olap };

export interface ReportBuilderDeps {
  /** The implicit region's ClickHouse database (single-region hosts, tests, benchmarks); regions bring their own. */
  olap: Olap;
  kv: Kv;
  /** Each region's stores; absent: one implicit region on `objectStore` and `crm`. */
  regions?: RegionPorts<BuilderRegionStores>;
  /** The implicit region's bucket (single-region hosts, tests, benchmarks); required without `regions`. */
  objectStore?: ObjectStore;
  /** The implicit region's CRM. */
  crm?: OltpQueryable;
  log: Logger;
  now?: () => number;
}

export interface WorkerReportBuilder extends ReportBuilder {
  /**
   * Builds the given periods (default: today, this week, this month) for each user, one at a time,
   * so a read right after an ETL load is already a hit. Failures are logged and counted, not thrown.
   */
  prebuild(userIds: Iterable<string>, periods?: readonly string[]): Promise<{ built: number; failed: number }>;
}

/** Runs `fn`, turning any failure into a ReportsError UNAVAILABLE naming `what`. */
async function dependency<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ReportsError) throw err;
    throw new ReportsError('UNAVAILABLE', `The ${what} is unavailable; the report was not built. Please retry shortly.`, { cause: err });
  }
}

export function createReportBuilder(deps: ReportBuilderDeps): WorkerReportBuilder {
  const now = deps.now ?? Date.now;
  if (!deps.regions && !deps.objectStore) throw new Error('createReportBuilder: give regions or an objectStore');
  const regions = deps.regions ?? singleRegionPorts<BuilderRegionStores>({ reports: deps.objectStore!, crm: deps.crm });
  const locator = createSubjectLocator(regions, now);
  const lookups = new Map<string, ModelLookup>();
  const modelsOf = (r: BuilderRegionStores) => {
    let lookup = lookups.get(r.id);
    if (!lookup) lookups.set(r.id, lookup = createModelLookup({ olap: r.olap ?? deps.olap, crm: r.crm, log: deps.log, now }));
    return lookup;
  };
  const locate = (userId: string) => dependency('CRM', () => locator(userId));

  async function build(userId: string, period: ReportPeriod, regionId?: string): Promise<BuiltReport> {
    if (!isValidUserId(userId)) throw new ReportsError('BAD_REQUEST', 'Not a valid user id');
    const started = performance.now();
    const id = regionId ?? await locate(userId);
    if (!id) throw new ReportsError('NOT_FOUND', 'No customer with this id in any region');
    const region = regions.get(id, deps.log);
    const models = modelsOf(region);
    const version = await dependency('key-value store', () => readReportVersion(deps.kv, userId, now()));
    const rows = await dependency('analytics database', () => queryReportRows(region.olap ?? deps.olap, userId, period));
    const chips = await dependency('CRM', () => models(rows.devices.map((d) => d.chip_id)));
    const report = renderReport({ userId, period, version, generatedAt: new Date(now()), ...rows, models: chips });
    const body = JSON.stringify(report);
    const key = reportObjectKey(userId, version, period.id);
    const { etag } = await dependency('report storage', () =>
      region.reports.put(key, body, { contentType: 'application/json', metadata: { 'report-version': String(version) } }));
    deps.log.info('report built', { key, region: region.id, bytes: body.length, days: report.totals.daysWithData, ms: Math.round(performance.now() - started) });
    return { key, version, etag, body };
  }

  return {
    build,
    locate,
    async prebuild(userIds, periods = ['day', 'week', 'month']) {
      let built = 0;
      let failed = 0;
      const today = new Date(now()).toISOString().slice(0, 10);
      for (const userId of userIds) {
        for (const name of periods) {
          const period = parsePeriod(name, today);
          if (!period) throw new Error(`prebuild: not a period: ${name}`);
          try {
            await build(userId, period);
            built += 1;
            opsEvents.reportBuild('ok');
          } catch (err) {
            failed += 1;
            opsEvents.reportBuild('failed');
            deps.log.warn('report prebuild failed', { userId, period: period.id, err });
          }
        }
      }
      return { built, failed };
    },
  };
}
