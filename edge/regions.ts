/**
 * The edge's regional stores (data residency): one report bucket per configured region, and the
 * region's sessions KV when `REGION_<ID>_UPSTASH_REDIS_REST_URL`/`_TOKEN` name one, built once at
 * the composition root. In implicit mode the one region is the edge's global report store.
 */
import type { EdgeConfig } from '../shared/config.ts';
import type { ObjectStore } from '../shared/ports/index.ts';
import { createRegionPorts, type EdgeRegionStores, type RegionPorts } from '../shared/regions/ports.ts';
import { createUpstashKv } from './adapters/kv-upstash.ts';
import { createS3ObjectStore } from './adapters/object-store-s3.ts';

export function createEdgeRegions(config: Pick<EdgeConfig, 'regions' | 'objectStore'>, global: ObjectStore): RegionPorts<EdgeRegionStores> {
  return createRegionPorts<EdgeRegionStores>(config.regions, (r) => ({
    id: r.id,
    reports: config.regions.implicit ? global : createS3ObjectStore({
      ...config.objectStore, bucket: r.reports.bucket, endpoint: r.reports.endpoint ?? config.objectStore.endpoint, region: r.reports.s3Region,
    }),
    ...(r.kv ? { kv: createUpstashKv(r.kv) } : {}),
  }));
}
