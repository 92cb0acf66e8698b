/**
 * Each region's personal-data stores, built once at a host's composition root (workers/worker.ts,
 * edge/compose.ts) from `config.regions` and handed down as `ports.regions`. Code below the root
 * never opens a regional connection itself: it asks this table for the region of the identity it
 * serves ({@link RegionPorts.forIdentity}) or of the data it was given ({@link RegionPorts.get}).
 *
 * In implicit mode (`REGIONS` unset) the one region `default` is the host's global stores, so a
 * single-region deployment runs on exactly the connections it always had.
 */
import type { Logger } from '../log.ts';
import type { Kv } from '../ports/kv.ts';
import type { ObjectStore } from '../ports/object-store.ts';
import type { Olap } from '../ports/olap.ts';
import type { Oltp } from '../ports/oltp.ts';
import { DEFAULT_REGION_ID, type Region, type RegionsConfig } from './config.ts';
import { logRefusal, regionOf, ResidencyError, type RegionClaims } from './residency.ts';

/** What the edge holds of a region: its report bucket and, when it has one, its sessions' KV (the edge has no database). */
export interface EdgeRegionStores {
  id: string;
  reports: ObjectStore;
  /** The region's own KV for its people's sessions; absent: they live in the central KV. */
  kv?: Kv;
}

/**
 * What a worker holds of a region: its CRM and telemetry databases, its report bucket, and its
 * ClickHouse database (CRM replicas from CDC, the ETL's per-user statistics).
 */
export interface RegionStores extends EdgeRegionStores {
  crm: Oltp;
  telemetry: Oltp;
  olap: Olap;
}

export interface RegionPorts<S extends EdgeRegionStores = RegionStores> {
  config: RegionsConfig;
  /** The stores of region `id`; a region this host does not serve is a {@link ResidencyError} (`UNKNOWN_REGION`). */
  get(id: string, log?: Logger): S;
  /** The stores of the identity's region (`regionOf`: refused and logged when it has none or an unknown one). */
  forIdentity(identity: RegionClaims, log?: Logger): S;
  /** Every region's stores, in `REGIONS` order. */
  all(): S[];
}

/** Builds the table; `build` makes one region's stores (called once per region, now). */
export function createRegionPorts<S extends EdgeRegionStores>(config: RegionsConfig, build: (region: Region) => S): RegionPorts<S> {
  const stores = new Map(config.regions.map((r) => [r.id, build(r)] as const));
  const get = (id: string, log?: Logger): S => {
    const found = stores.get(id);
    if (found) return found;
    const err = new ResidencyError('UNKNOWN_REGION', null, id, 'region stores');
    logRefusal(err, log);
    throw err;
  };
  return {
    config,
    get,
    forIdentity: (identity, log) => get(regionOf(identity, config, log), log),
    all: () => [...stores.values()],
  };
}

/**
 * The implicit single region (`default`) on one set of stores: what a host without `REGIONS` runs
 * on, and what a component given only global stores (tests, benchmarks) falls back to.
 */
export function singleRegionPorts<S extends EdgeRegionStores>(stores: Omit<S, 'id'>): RegionPorts<S> {
  const config: RegionsConfig = { implicit: true, regions: [{ id: DEFAULT_REGION_ID, reports: { bucket: 'implicit', s3Region: 'implicit' } }] };
  return createRegionPorts<S>(config, () => ({ ...stores, id: DEFAULT_REGION_ID }) as S);
}
