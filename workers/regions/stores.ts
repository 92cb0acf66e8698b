/**
 * The worker's regional stores (data residency): one CRM and one telemetry connection pool and one
 * report bucket per configured region, built once here and handed to the features as
 * `RegionPorts`. In implicit mode the one region is the worker's global stores (no second pool).
 */
import type { WorkerConfig } from '../../shared/config.ts';
import type { HealthChecks } from '../../shared/health.ts';
import type { ObjectStore } from '../../shared/ports/index.ts';
import { createRegionPorts, type RegionPorts, type RegionStores } from '../../shared/regions/ports.ts';
import { createS3ObjectStore } from '../../edge/adapters/object-store-s3.ts';
import { createPostgresOltp, type PostgresOltp } from '../adapters/oltp-postgres.ts';
import { migrateAll, type AppliedMigration, type MigrationLog } from '../db/migrate.ts';

/** A worker region: its stores, with the postgres.js handles the saga and the CDC need. */
export interface WorkerRegionStores extends RegionStores {
  crm: PostgresOltp;
  telemetry: PostgresOltp;
}

export interface WorkerRegions {
  ports: RegionPorts<WorkerRegionStores>;
  /** `crm_<id>`, `telemetry_<id>`, `objectStore_<id>` per region; none in implicit mode (the global checks cover it). */
  health(): HealthChecks;
  /** Applies the CRM and telemetry migrations to every region's databases (implicit mode: nothing more to do). */
  migrate(log?: MigrationLog): Promise<AppliedMigration[]>;
  /** Closes the regional pools this module opened. */
  close(): Promise<void>;
}

export function createWorkerRegions(
  config: Pick<WorkerConfig, 'regions' | 'objectStore'> & { oltp: { poolMax: number } },
  global: { oltp: { crm: PostgresOltp; telemetry: PostgresOltp }; objectStore: ObjectStore },
): WorkerRegions {
  const { implicit } = config.regions;
  const ports = createRegionPorts<WorkerRegionStores>(config.regions, (r) => implicit
    ? { id: r.id, crm: global.oltp.crm, telemetry: global.oltp.telemetry, reports: global.objectStore }
    : {
        id: r.id,
        // Required for every listed region on workers (regionsConfigOf refuses start-up otherwise).
        crm: createPostgresOltp(r.crmDatabaseUrl!, { max: config.oltp.poolMax }),
        telemetry: createPostgresOltp(r.telemetryDatabaseUrl!, { max: config.oltp.poolMax }),
        reports: createS3ObjectStore({
          ...config.objectStore, bucket: r.reports.bucket, endpoint: r.reports.endpoint ?? config.objectStore.endpoint, region: r.reports.s3Region,
        }),
      });
  return {
    ports,
    health: () => implicit ? {} : Object.fromEntries(ports.all().flatMap((s) => [
      [`crm_${s.id}`, () => s.crm.ping()],
      [`telemetry_${s.id}`, () => s.telemetry.ping()],
      [`objectStore_${s.id}`, () => s.reports.ping()],
    ])),
    async migrate(log) {
      if (implicit) return [];
      const applied: AppliedMigration[] = [];
      for (const s of ports.all()) applied.push(...await migrateAll({ crm: s.crm, telemetry: s.telemetry }, log));
      return applied;
    },
    async close() {
      if (implicit) return;
      await Promise.allSettled(ports.all().flatMap((s) => [s.crm.close(), s.telemetry.close()]));
    },
  };
}
