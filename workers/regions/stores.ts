/**
 * The worker's regional stores (data residency): one CRM and one telemetry connection pool, one
 * report bucket, one ClickHouse database (a view of the worker's ClickHouse) and, when configured,
 * the region's own KV (its people's notification streams) per configured region, built once here
 * and handed to the features as `RegionPorts`. In implicit mode the one region is the worker's
 * global stores (no second pool, the global ClickHouse database, no KV of its own).
 */
import type { WorkerConfig } from '../../shared/config.ts';
import type { HealthChecks } from '../../shared/health.ts';
import type { Olap, ObjectStore } from '../../shared/ports/index.ts';
import { createRegionPorts, type RegionPorts, type RegionStores } from '../../shared/regions/ports.ts';
import { createS3ObjectStore } from '../../edge/adapters/object-store-s3.ts';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import type { ClickHouseOlap } from '../adapters/olap-clickhouse.ts';
import { createPostgresOltp, type PostgresOltp } from '../adapters/oltp-postgres.ts';
import { migrateAll, type AppliedMigration, type MigrationLog } from '../db/migrate.ts';

/** A worker region: its stores, with the postgres.js handles the saga and the CDC need. */
export interface WorkerRegionStores extends RegionStores {
  crm: PostgresOltp;
  telemetry: PostgresOltp;
}

export interface WorkerRegions {
  ports: RegionPorts<WorkerRegionStores>;
  /** `crm_<id>`, `telemetry_<id>`, `objectStore_<id>` (and `kv_<id>`) per region; none in implicit mode (the global checks cover it). */
  health(): HealthChecks;
  /**
   * Applies the CRM, telemetry and ClickHouse migrations to every region's databases (implicit mode:
   * nothing more to do).
   */
  migrate(log?: MigrationLog): Promise<AppliedMigration[]>;
  /** Closes the regional pools this module opened. */
  close(): Promise<void>;
}

export function createWorkerRegions(
  config: Pick<WorkerConfig, 'regions' | 'objectStore'> & { oltp: { poolMax: number } },
  global: { oltp: { crm: PostgresOltp; telemetry: PostgresOltp }; objectStore: ObjectStore; olap?: ClickHouseOlap },
): WorkerRegions {
  const { implicit } = config.regions;
  const ports = createRegionPorts<WorkerRegionStores>(config.regions, (r) => implicit
    ? { id: r.id, crm: global.oltp.crm, telemetry: global.oltp.telemetry, reports: global.objectStore, olap: global.olap ?? noOlap(r.id) }
    : {
        id: r.id,
        // The fallback name (`<CLICKHOUSE_DATABASE>_<id>`) is filled in by regionsConfigOf.
        olap: global.olap?.withDatabase(r.clickhouseDatabase!) ?? noOlap(r.id),
        // Required for every listed region on workers (regionsConfigOf refuses start-up otherwise).
        crm: createPostgresOltp(r.crmDatabaseUrl!, { max: config.oltp.poolMax }),
        telemetry: createPostgresOltp(r.telemetryDatabaseUrl!, { max: config.oltp.poolMax }),
        reports: createS3ObjectStore({
          ...config.objectStore, bucket: r.reports.bucket, endpoint: r.reports.endpoint ?? config.objectStore.endpoint, region: r.reports.s3Region,
        }),
        ...(r.kv ? { kv: createUpstashKv(r.kv) } : {}),
      });
  return {
    ports,
    health: () => implicit ? {} : Object.fromEntries(ports.all().flatMap((s) => [
      [`crm_${s.id}`, () => s.crm.ping()],
      [`telemetry_${s.id}`, () => s.telemetry.ping()],
      [`objectStore_${s.id}`, () => s.reports.ping()],
      ...(s.kv ? [[`kv_${s.id}`, () => s.kv!.ping()] as const] : []),
    ])),
    async migrate(log) {
      if (implicit) return [];
      const applied: AppliedMigration[] = [];
      for (const s of ports.all()) {
        applied.push(...await migrateAll({ crm: s.crm, telemetry: s.telemetry, olap: global.olap ? s.olap : undefined }, log));
      }
      return applied;
    },
    async close() {
      if (implicit) return;
      await Promise.allSettled(ports.all().flatMap((s) => [s.crm.close(), s.telemetry.close()]));
    },
  };
}

/** A region's ClickHouse when the worker was given none (tests of other parts): every call says so. */
function noOlap(id: string): Olap {
  const fail = () => Promise.reject(new Error(`no ClickHouse was given to the worker's regions (region ${id})`));
  return { query: fail, command: fail, insert: fail, ping: fail, close: async () => {} };
}
