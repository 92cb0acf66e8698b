/**
 * Where reports live and how they are invalidated — the contract between the builder (workers),
 * the ETL (which bumps versions after each load) and the edge (which reads them).
 *
 * - KV `reports:version:<userId>` holds the user's current report version `n`. Bumping it (INCR)
 *   invalidates every report of that user at once, in O(1): readers simply look under `v<n+1>`.
 * - Objects are `reports/<userId>/v<n>/<periodId>.json`; older versions are never read again and
 *   age out (lifecycle rule, or the workers' cleanup job on the embedded store).
 *
 * `userId` is the identity provider's subject (`sub`), the same value `user_prosthesis_stats.user_id` holds.
 */
import type { Kv } from '../ports/kv.ts';

export const REPORTS_PREFIX = 'reports/';

/** Subjects are UUIDs in Keycloak; anything that could escape a key segment is refused. */
const USER_ID = /^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/;
export const isValidUserId = (userId: string) => USER_ID.test(userId);

function checked(userId: string): string {
  if (!isValidUserId(userId)) throw new Error(`not a valid report owner id: ${JSON.stringify(userId)}`);
  return userId;
}

/** KV key of the user's report version. The ETL INCRs it after each load. */
export const reportVersionKey = (userId: string) => `reports:version:${checked(userId)}`;
/** Object key of one report. */
export const reportObjectKey = (userId: string, version: number, periodId: string) =>
  `${REPORTS_PREFIX}${checked(userId)}/v${version}/${periodId}.json`;
/** Prefix of every report of one version (for listing what has been built). */
export const reportVersionPrefix = (userId: string, version: number) => `${REPORTS_PREFIX}${checked(userId)}/v${version}/`;

/** Parses an object key back into its parts; `null` for keys that are not reports. */
export function parseReportKey(key: string): { userId: string; version: number; periodId: string } | null {
  const m = /^reports\/([^/]+)\/v(\d+)\/([A-Za-z0-9_-]+)\.json$/.exec(key);
  return m && isValidUserId(m[1]!) ? { userId: m[1]!, version: Number(m[2]), periodId: m[3]! } : null;
}

/**
 * The user's current version. A user without one gets a version seeded from the clock (SET NX, so
 * concurrent first readers agree): should KV ever lose the key, the new version is still larger
 * than any old one, and objects of a lost version can never be served again as current.
 */
export async function readReportVersion(kv: Kv, userId: string, nowMs: number = Date.now()): Promise<number> {
  const key = reportVersionKey(userId);
  const value = await kv.get(key);
  if (value !== null) return toVersion(value, key);
  await kv.set(key, String(nowMs), { nx: true });
  return toVersion((await kv.get(key)) ?? String(nowMs), key);
}

/** Invalidates every report of the user; returns the new version. */
export async function bumpReportVersion(kv: Kv, userId: string): Promise<number> {
  return kv.incr(reportVersionKey(userId));
}

function toVersion(value: string, key: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${key} holds ${JSON.stringify(value)}, not a version`);
  return n;
}
