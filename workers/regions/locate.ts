/**
 * Which region holds a subject: asked when a worker acts for someone other than the caller (an
 * admin's build of another user's report, the ETL pre-building reports, an operator naming a
 * customer). Each region's CRM is asked whether `customers.idp_subject` has it — an id, never a
 * personal attribute, crosses the wire. Subjects do not move between regions on their own, so an
 * answer is kept for a while; a subject no region knows is asked again next time.
 */
import { TtlCache } from '../../edge/auth/ttl-cache.ts';
import type { OltpQueryable } from '../../shared/ports/oltp.ts';
import type { EdgeRegionStores, RegionPorts } from '../../shared/regions/ports.ts';

const CACHE_ENTRIES = 100_000;
const CACHE_MS = 10 * 60_000;

export type SubjectLocator = (subject: string) => Promise<string | null>;

export function createSubjectLocator(
  regions: RegionPorts<EdgeRegionStores & { crm?: OltpQueryable }>,
  now: () => number = Date.now,
): SubjectLocator {
  const cache = new TtlCache<string>(CACHE_ENTRIES);
  return async function locate(subject) {
    if (regions.config.implicit) return regions.config.regions[0]!.id;
    const hit = cache.get(subject, now());
    if (hit !== undefined) return hit;
    const found = await Promise.all(regions.all().map(async (r) =>
      r.crm && (await r.crm.query('SELECT 1 FROM customers WHERE idp_subject = $1 LIMIT 1', [subject])).length > 0 ? r.id : null));
    const region = found.find((r) => r !== null) ?? null;
    if (region) cache.set(subject, region, now(), CACHE_MS);
    return region;
  };
}
