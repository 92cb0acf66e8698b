/**
 * Report delivery at the edge: the user's current version from KV, then this instance's LRU, then
 * the object store, and on a miss one build for everyone who asks at the same time:
 *
 * - within one edge instance, concurrent readers of a key share one promise;
 * - across instances, a KV lock per (user, version, period) elects one builder. Its value tells
 *   the others what happened: `b:<random>` building, `d:<object key>` done (possibly under a newer
 *   version), `f:<code>:<message>` failed because a dependency is down — the waiters fail with
 *   the same clear error instead of stampeding into builds of their own.
 *
 * Invalidation needs nothing here: a version bump changes every key, so stale entries are never
 * looked up again and age out of the LRU. The version itself is reused for
 * `settings.versionCacheSeconds` (on the edge clock) before KV is asked again, so a hit costs no
 * KV call at all; a bump therefore reaches every reader within that time, not at once.
 */
import type { Logger } from '../../shared/log.ts';
import { opsEvents } from '../../shared/metrics/events.ts';
import type { Kv, ObjectStore } from '../../shared/ports/index.ts';
import type { ReportsEdgeConfig } from '../../shared/reports/config.ts';
import { parseReportKey, readReportVersion, reportObjectKey, reportVersionKey, reportVersionPrefix } from '../../shared/reports/keys.ts';
import { parsePeriod, periodLabel, standardPeriods, utcToday, type ReportPeriod } from '../../shared/reports/period.ts';
import { ReportsError, type ReportSummary, type ServedReport } from '../../shared/reports/ports.ts';
import { reportSchema, type Report } from '../../shared/reports/schema.ts';
import { TtlCache } from '../auth/ttl-cache.ts';
import type { BuildReport } from './builder-client.ts';
import { ByteLru } from './lru.ts';

export interface DeliveryDeps {
  kv: Kv;
  objectStore: ObjectStore;
  log: Logger;
  build: BuildReport;
  settings: ReportsEdgeConfig;
  /** Epoch milliseconds. */
  nowMs?: () => number;
}

/** What a read needs from the request it serves: the reader's token, only asked for on a miss. */
export interface ReadScope {
  accessToken(): Promise<string | null>;
  requestId?: string;
  log?: Logger;
}

// An entry counts as four times its bytes: the bytes, plus the parsed report kept beside them.
const PARSED_OVERHEAD = 4;
const DONE_TTL_SECONDS = 60;
const FAILED_TTL_SECONDS = 3;
const POLL_FIRST_MS = 10;
const POLL_MAX_MS = 250;
const MAX_CACHED_VERSIONS = 10_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

class Entry implements ServedReport {
  private parsed: Report | undefined;
  constructor(readonly key: string, readonly version: number, readonly etag: string, readonly body: Uint8Array) {}
  report(): Report {
    return (this.parsed ??= reportSchema.parse(JSON.parse(dec.decode(this.body))));
  }
}

const unavailable = (what: string, cause: unknown) =>
  new ReportsError('UNAVAILABLE', `${what} is unavailable; please retry shortly`, { cause });

export function createReportDelivery(deps: DeliveryDeps) {
  const nowMs = deps.nowMs ?? Date.now;
  const { settings } = deps;
  const lru = new ByteLru<Entry>({ maxBytes: settings.cacheMaxBytes });
  const inflight = new Map<string, Promise<Entry>>();
  const lockTtl = Math.ceil(settings.buildTimeoutMs / 1000) + 5;
  const versions = new TtlCache<number>(settings.versionCacheSeconds > 0 ? MAX_CACHED_VERSIONS : 0);
  const versionReads = new Map<string, Promise<number>>();

  async function kvCall<T>(fn: () => Promise<T>): Promise<T> {
    try { return await fn(); } catch (err) { throw unavailable('The report index (KV)', err); }
  }

  async function fromStore(key: string): Promise<Entry | null> {
    let stored;
    try { stored = await deps.objectStore.get(key); } catch (err) { throw unavailable('Report storage', err); }
    return stored ? remember(key, stored.etag, stored.body) : null;
  }

  function remember(key: string, etag: string, body: Uint8Array): Entry {
    const entry = new Entry(key, parseReportKey(key)?.version ?? 0, etag, body);
    lru.set(key, entry, body.byteLength * PARSED_OVERHEAD);
    return entry;
  }

  /** The owner's current version: reused from this instance for a few seconds, else KV (one call for concurrent readers). */
  function currentVersion(owner: string): Promise<number> {
    const now = nowMs();
    const hit = versions.get(owner, now);
    if (hit !== undefined) return Promise.resolve(hit);
    let p = versionReads.get(owner);
    if (!p) {
      const started = kvCall(() => readReportVersion(deps.kv, owner, now)).then((v) => {
        versions.set(owner, v, now, settings.versionCacheSeconds * 1000);
        return v;
      }).finally(() => { if (versionReads.get(owner) === started) versionReads.delete(owner); });
      versionReads.set(owner, started);
      p = started;
    }
    return p;
  }

  function get(owner: string, period: ReportPeriod, scope: ReadScope): Promise<ServedReport> {
    // A hot report is answered without awaiting anything: version and bytes are both in memory.
    const version = versions.get(owner, nowMs());
    if (version === undefined) return currentVersion(owner).then((v) => lookUp(owner, v, period, scope));
    try { return lookUp(owner, version, period, scope); } catch (err) { return Promise.reject(err); }
  }

  function lookUp(owner: string, version: number, period: ReportPeriod, scope: ReadScope): Promise<Entry> {
    const key = reportObjectKey(owner, version, period.id);
    const hit = lru.get(key);
    if (hit) { opsEvents.reportCache('memory_hit'); return Promise.resolve(hit); }
    let shared = inflight.get(key);
    if (!shared) {
      // Counted once per lookup: readers joining one in flight are not counted again.
      shared = (async () => { const stored = await fromStore(key); opsEvents.reportCache(stored ? 'store_hit' : 'miss'); return stored ?? buildOnce(owner, version, period, scope); })();
      inflight.set(key, shared);
      void shared.finally(() => inflight.delete(key)).catch(() => {});
    }
    return shared;
  }

  async function buildOnce(owner: string, version: number, period: ReportPeriod, scope: ReadScope): Promise<Entry> {
    const lockKey = `reports:build:${owner}:v${version}:${period.id}`;
    const deadline = nowMs() + settings.buildTimeoutMs;
    for (;;) {
      if (await kvCall(() => deps.kv.set(lockKey, `b:${crypto.randomUUID()}`, { nx: true, ttlSeconds: lockTtl }))) {
        return buildHoldingLock(lockKey, owner, period, scope, deadline);
      }
      const state = await waitWhileBuilding(lockKey, deadline);
      if (state === null) continue; // the builder vanished (its lock expired): take over
      if (state.startsWith('d:')) {
        const key = state.slice(2);
        const done = lru.get(key) ?? (await fromStore(key));
        if (done) return done;
        continue;
      }
      const [, code, ...message] = state.split(':');
      throw new ReportsError(code === 'TIMEOUT' ? 'TIMEOUT' : 'UNAVAILABLE', message.join(':') || 'The report could not be built; please retry shortly');
    }
  }

  async function buildHoldingLock(lockKey: string, owner: string, period: ReportPeriod, scope: ReadScope, deadline: number): Promise<Entry> {
    try {
      const accessToken = await scope.accessToken();
      if (!accessToken) throw new ReportsError('UNAUTHORIZED', 'Please sign in again');
      const built = await deps.build({ owner, period, accessToken, requestId: scope.requestId, timeoutMs: Math.max(1000, deadline - nowMs()) });
      opsEvents.reportBuild('ok');
      const entry = remember(built.key, built.etag, enc.encode(built.body));
      await deps.kv.set(lockKey, `d:${built.key}`, { ttlSeconds: DONE_TTL_SECONDS }).catch(() => {});
      return entry;
    } catch (err) {
      opsEvents.reportBuild('failed');
      const e = err instanceof ReportsError ? err : new ReportsError('UNAVAILABLE', 'The report could not be built; please retry shortly', { cause: err });
      (scope.log ?? deps.log).warn('report build failed', { owner, period: period.id, code: e.code, err });
      // Only an outage is everyone's answer; a problem with this reader's token is not.
      const shared = e.code === 'UNAVAILABLE' || e.code === 'TIMEOUT';
      await (shared
        ? deps.kv.set(lockKey, `f:${e.code}:${e.message}`, { ttlSeconds: FAILED_TTL_SECONDS })
        : deps.kv.del(lockKey)).catch(() => {});
      throw e;
    }
  }

  /** Polls the lock until it is no longer `b:…`; null when it disappeared. */
  async function waitWhileBuilding(lockKey: string, deadline: number): Promise<string | null> {
    let delay = POLL_FIRST_MS;
    for (;;) {
      const state = await kvCall(() => deps.kv.get(lockKey));
      if (state === null || !state.startsWith('b:')) return state;
      if (nowMs() + delay > deadline) throw new ReportsError('TIMEOUT', 'Building the report took too long; please retry shortly');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(POLL_MAX_MS, Math.ceil(delay * 1.5));
    }
  }

  async function list(owner: string): Promise<ReportSummary[]> {
    // Listing must not create a version for a user who has none: nothing can be built yet then.
    const stored = await kvCall(() => deps.kv.get(reportVersionKey(owner)));
    const built = new Set<string>();
    try {
      const objects = stored === null ? [] : deps.objectStore.list(reportVersionPrefix(owner, Number(stored)));
      for await (const o of objects) {
        const k = parseReportKey(o.key);
        if (k) built.add(k.periodId);
      }
    } catch (err) {
      throw unavailable('Report storage', err);
    }
    const today = utcToday(nowMs());
    const standard = standardPeriods(today);
    const custom = [...built].filter((id) => !standard.some((p) => p.id === id))
      .map((id) => parsePeriod(id, today)).filter((p): p is ReportPeriod => p !== null)
      .sort((a, b) => (a.from === b.from ? b.to.localeCompare(a.to) : b.from.localeCompare(a.from)));
    return [...standard, ...custom].map((period) => ({ period, label: periodLabel(period), built: built.has(period.id) }));
  }

  return { get, list, cache: lru };
}

export type ReportDeliveryCore = ReturnType<typeof createReportDelivery>;
