/**
 * Which region holds a subject or a device: asked when a worker acts for someone other than the
 * caller (an admin's build of another user's report, the ETL pre-building reports, an operator
 * naming a customer) or stores what a device sent. Each region's CRM is asked by id —
 * `customers.idp_subject`, `prostheses.chip_id` — so only an id, never a personal attribute,
 * crosses the wire. Ids do not move between regions on their own, so an answer is kept for a
 * while; an id no region knows is asked again next time.
 */
import { TtlCache } from '../../edge/auth/ttl-cache.ts';
import type { OltpQueryable } from '../../shared/ports/oltp.ts';
import type { EdgeRegionStores, RegionPorts } from '../../shared/regions/ports.ts';

const CACHE_ENTRIES = 100_000;
const CACHE_MS = 10 * 60_000;

/** The region whose CRM holds the id, `null` when none does (the implicit region holds everyone). */
export type RegionLocator = (id: string) => Promise<string | null>;

type Regions = RegionPorts<EdgeRegionStores & { crm?: OltpQueryable }>;

function createLocator(regions: Regions, sql: string, now: () => number): RegionLocator {
  const cache = new TtlCache<string>(CACHE_ENTRIES);
  return async function locate(id) {
    if (regions.config.implicit) return regions.config.regions[0]!.id;
    const hit = cache.get(id, now());
    if (hit !== undefined) return hit;
    const found = await Promise.all(regions.all().map(async (r) => (r.crm && (await r.crm.query(sql, [id])).length > 0 ? r.id : null)));
    const region = found.find((r) => r !== null) ?? null;
    if (region) cache.set(id, region, now(), CACHE_MS);
    return region;
  };
}

/** Locates an identity provider subject (a customer's `idp_subject`). */
export const createSubjectLocator = (regions: Regions, now: () => number = Date.now) =>
  createLocator(regions, 'SELECT 1 FROM customers WHERE idp_subject = $1 LIMIT 1', now);

/** Locates a device by chip id: its owner's region. */
export const createChipLocator = (regions: Regions, now: () => number = Date.now) =>
  createLocator(regions, 'SELECT 1 FROM prostheses WHERE chip_id = $1 LIMIT 1', now);
