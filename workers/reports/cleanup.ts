/**
 * Old report versions age out. On S3 the lifecycle rule in infra/s3/lifecycle.json expires whole
 * objects by age; the embedded store (s3rver) has no lifecycle, so the workers run this job on a
 * cron schedule: every object whose version is not the user's current one, and which is older
 * than the grace period (a reader may have just resolved the old key), is deleted.
 *
 * One run at a time across every worker process: a KV lock elects the runner, the others skip.
 */
import { Cron } from 'croner';
import type { Logger } from '../../shared/log.ts';
import type { Kv, ObjectStore } from '../../shared/ports/index.ts';
import { parseReportKey, REPORTS_PREFIX, reportVersionKey } from '../../shared/reports/keys.ts';

export interface CleanupDeps {
  /** The report bucket(s) to clean: one per region (data residency). */
  objectStore: ObjectStore | readonly ObjectStore[];
  kv: Kv;
  log: Logger;
  /** Non-current objects younger than this stay. */
  olderThanSeconds: number;
  now?: () => number;
}

export interface CleanupResult { scanned: number; deleted: number; skipped: boolean }

const LOCK_KEY = 'reports:cleanup:lock';
const LOCK_TTL_SECONDS = 15 * 60;
// Delete only the lock this run took: a run that outlived its TTL must not free someone else's.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** One cleanup pass (exported for tests and on-demand runs). */
export async function cleanupOldReports(deps: CleanupDeps): Promise<CleanupResult> {
  const now = deps.now ?? Date.now;
  const owner = crypto.randomUUID();
  if (!(await deps.kv.set(LOCK_KEY, owner, { nx: true, ttlSeconds: LOCK_TTL_SECONDS }))) {
    deps.log.info('report cleanup skipped: another worker is running it');
    return { scanned: 0, deleted: 0, skipped: true };
  }
  const cutoff = now() - deps.olderThanSeconds * 1000;
  let scanned = 0;
  let deleted = 0;
  // Listings come in key order, so one user's objects are adjacent: remember one version at a time.
  let user = null as { id: string; current: number | null } | null;
  const stores = Array.isArray(deps.objectStore) ? deps.objectStore as readonly ObjectStore[] : [deps.objectStore as ObjectStore];
  try {
    for (const store of stores) for await (const o of store.list(REPORTS_PREFIX)) {
      scanned += 1;
      const k = parseReportKey(o.key);
      if (!k) continue;
      if (user?.id !== k.userId) {
        const v = await deps.kv.get(reportVersionKey(k.userId));
        user = { id: k.userId, current: v === null ? null : Number(v) };
      }
      // No version in KV: the next reader seeds a newer one, so every stored version is stale.
      const stale = user.current === null || k.version < user.current;
      if (stale && o.lastModified.getTime() < cutoff) {
        await store.delete(o.key);
        deleted += 1;
      }
    }
  } finally {
    await deps.kv.eval(RELEASE, [LOCK_KEY], [owner]).catch(() => {});
  }
  deps.log.info('report cleanup done', { scanned, deleted });
  return { scanned, deleted, skipped: false };
}

/** Schedules {@link cleanupOldReports} (UTC cron); `stop()` waits for a run in progress. */
export function scheduleReportCleanup(cron: string, deps: CleanupDeps) {
  let running: Promise<void> = Promise.resolve();
  const job = new Cron(cron, { timezone: 'UTC', protect: true, unref: true, name: 'reports-cleanup' }, () => {
    running = cleanupOldReports(deps).then(() => {}, (err: unknown) => deps.log.error('report cleanup failed', { err }));
    return running;
  });
  return {
    nextRun: () => job.nextRun(),
    async stop() {
      job.stop();
      await running;
    },
  };
}
