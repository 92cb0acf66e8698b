/**
 * The ETL as the worker runs it, per region (data residency): one job per configured region, each
 * reading that region's telemetry and CRM and writing that region's ClickHouse database, with its
 * own lock, watermark, history, schedule and retries (workers/etl/schedule.ts). After a region's
 * load, its day rows go pseudonymised to the central analytics table (workers/analytics) when a
 * pseudonym key is given. This module puts the regions' jobs behind one {@link EtlService}.
 *
 * Without `REGIONS` there is one region, `default`, on the worker's own stores, and its job keeps the
 * name `user_prosthesis_stats`: a single-region deployment carries on with its history and watermark.
 */
import type postgres from 'postgres';
import type { EtlConfig } from '../../shared/etl/config.ts';
import { EtlUnknownRegionError, type EtlService } from '../../shared/etl/port.ts';
import type { Logger } from '../../shared/log.ts';
import type { Kv, Olap, OltpQueryable } from '../../shared/ports/index.ts';
import { DEFAULT_REGION_ID, findRegion } from '../../shared/regions/config.ts';
import type { RegionPorts, RegionStores } from '../../shared/regions/ports.ts';
import { createAnalyticsPublisher } from '../analytics/publish.ts';
import { jobName, listRuns } from './history.ts';
import type { JobOutcome, RunRequest } from './job.ts';
import { createRegionEtl, type BackfillOptions, type RegionEtl, type ReportsPrebuilder } from './schedule.ts';
import { etlSources } from './sources.ts';

export type { BackfillProgress, ReportsPrebuilder } from './schedule.ts';

/** One region's sources and target. */
export interface EtlRegionStores {
  id: string;
  /** The region's ClickHouse database: `user_prosthesis_stats(_hourly)` and, with ETL_CRM_SOURCE=clickhouse, its CRM replicas. */
  olap: Olap;
  /** The region's telemetry database, for the small queries the worker makes itself. */
  telemetry: OltpQueryable;
  /** PostgreSQL URLs ClickHouse reads through `postgresql()`. */
  telemetryUrl: string;
  crmUrl: string;
}

interface EtlCommonDeps {
  platform: postgres.Sql;
  config: EtlConfig;
  kv?: Kv;
  reports?: ReportsPrebuilder;
  log: Logger;
  now?: () => Date;
  /** Pseudonymised analytics: the key (`ANALYTICS_PSEUDONYM_KEY`) and the central ClickHouse database. Absent: not published. */
  analytics?: { key: string; centralDatabase: string };
  /** Called after every run attempt with its outcome (metrics, tests awaiting a retry). */
  onRun?: (req: RunRequest, outcome: JobOutcome, region: string) => void;
}

/** The implicit region's stores given directly (single-region hosts, tests, benchmarks)… */
interface SingleRegionDeps extends EtlCommonDeps, Omit<EtlRegionStores, 'id'> { regions?: undefined }
/** …or every region's (`implicit`: the host has no `REGIONS`, so the one job keeps its old name). */
interface RegionalDeps extends EtlCommonDeps { regions: { implicit: boolean; stores: EtlRegionStores[] } }

export type EtlDeps = SingleRegionDeps | RegionalDeps;

/** The ETL's view of a host's regions: each region's stores with the URLs ClickHouse reads them by. */
export function etlRegionsOf(regions: RegionPorts<RegionStores>): RegionalDeps['regions'] {
  return {
    implicit: regions.config.implicit,
    stores: regions.all().map((s) => {
      // A worker's region always has both URLs (regionsConfigOf refuses start-up otherwise).
      const r = findRegion(regions.config, s.id)!;
      return { id: s.id, olap: s.olap, telemetry: s.telemetry, telemetryUrl: r.telemetryDatabaseUrl!, crmUrl: r.crmDatabaseUrl! };
    }),
  };
}

export interface Etl {
  readonly service: EtlService;
  /** Every region's job, in `REGIONS` order. */
  readonly regions: readonly RegionEtl[];
  /** A region's job; `id` may be omitted when there is one region. */
  region(id?: string): RegionEtl;
  /** Runs one request now in a region (the CLI and tests use it; `service.run` is the manual trigger). */
  trigger(req: RunRequest & { region?: string }): Promise<JobOutcome>;
  /** Recomputes whole UTC days `[first, last]` of a region, `chunkDays` per run, waiting for the lock when busy. */
  backfill(first: Date, last: Date, opts?: BackfillOptions & { region?: string }): Promise<JobOutcome[]>;
  /** Starts every region's schedule (when enabled). */
  start(): void;
  /** Stops scheduling and retries, then waits for the runs and pre-builds in progress. */
  stop(): Promise<void>;
}

/**
 * One job per region (or the implicit one), behind one service. `region` left out means every
 * region for `service.run`/`status`/`runs`, and the only one for `trigger`/`backfill`.
 */
export function createEtl(deps: EtlDeps): Etl {
  const { config } = deps;
  const regional = deps.regions ?? {
    implicit: true,
    stores: [{ id: DEFAULT_REGION_ID, olap: deps.olap, telemetry: deps.telemetry, telemetryUrl: deps.telemetryUrl, crmUrl: deps.crmUrl }],
  };
  const jobs = regional.stores.map((r) => {
    const sources = etlSources({ telemetryUrl: r.telemetryUrl, crmUrl: r.crmUrl, crmSource: config.crmSource, pgAddress: config.pgAddressForClickHouse });
    return createRegionEtl({
      job: jobName(r.id, regional.implicit), region: r.id, olap: r.olap, telemetry: r.telemetry, sources,
      platform: deps.platform, config, kv: deps.kv, reports: deps.reports, log: deps.log, now: deps.now, onRun: deps.onRun,
      analytics: deps.analytics && createAnalyticsPublisher({ olap: r.olap, region: r.id, sources, ...deps.analytics }),
    });
  });
  const ids = jobs.map((j) => j.region);

  /** The named region's job, or every region's when none is named. */
  function pick(id: string | undefined): RegionEtl[] {
    if (id === undefined) return jobs;
    const job = jobs.find((j) => j.region === id);
    if (!job) throw new EtlUnknownRegionError(id, ids);
    return [job];
  }

  function region(id?: string): RegionEtl {
    const found = pick(id);
    if (found.length !== 1) throw new Error(`the ETL runs for several regions (${ids.join(', ')}): name one`);
    return found[0]!;
  }

  const service: EtlService = {
    regions: ids,
    async run({ triggeredBy, region: id }) {
      const outcomes = await Promise.all(pick(id).map(async (j) => {
        const { affectedUserIds: _users, ...out } = await j.trigger({ kind: 'manual', triggeredBy });
        return { ...out, region: j.region };
      }));
      return outcomes.length === 1 ? outcomes[0]! : { regions: outcomes };
    },
    runs: ({ region: id, ...o }) => listRuns(deps.platform, new Map(pick(id).map((j) => [j.job, j.region])), o),
    async status(o = {}) {
      const all = await Promise.all(pick(o.region).map((j) => j.status()));
      return all.length === 1 ? all[0]! : { regions: all };
    },
  };

  return {
    service,
    regions: jobs,
    region,
    trigger: ({ region: id, ...req }) => region(id).trigger(req),
    backfill: (first, last, { region: id, ...opts } = {}) => region(id).backfill(first, last, opts),
    start: () => jobs.forEach((j) => j.start()),
    async stop() {
      await Promise.all(jobs.map((j) => j.stop()));
    },
  };
}
