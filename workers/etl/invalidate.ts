/**
 * After a load: every affected user's reports become stale at once by bumping their version in KV
 * (`reports:version:<userId>`, read by the reports feature to build its object keys), O(1) per user.
 */
import type { Kv } from '../../shared/ports/kv.ts';

export const reportVersionKey = (userId: string) => `reports:version:${userId}`;

// Concurrent INCRs: the Upstash client pipelines them into a few HTTP round trips.
const CONCURRENCY = 200;

/** Bumps each user's report version; throws if any bump fails (the run then fails and is retried). */
export async function invalidateReports(kv: Kv | undefined, userIds: readonly string[]): Promise<void> {
  if (!kv) return;
  for (let i = 0; i < userIds.length; i += CONCURRENCY) {
    await Promise.all(userIds.slice(i, i + CONCURRENCY).map((u) => kv.incr(reportVersionKey(u))));
  }
}
