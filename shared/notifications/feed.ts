/**
 * Live notifications for one signed-in user, read from their KV stream (stream.ts): what the edge's
 * `notifications.onNotification` subscription yields.
 *
 * - **Connection limit.** Each live connection holds a lease in a per-user sorted set in KV (edges
 *   are many, so the count cannot live in one process): member = connection id, score = lease
 *   expiry. Opening takes a lease only if fewer than `maxConnectionsPerUser` unexpired ones exist;
 *   every poll renews it; closing removes it. A connection whose edge died simply stops renewing,
 *   and its lease lapses after `leaseTtlMs`.
 * - **Resumption.** Entries carry their stream sequence number; a client that reconnects with the
 *   last one it saw gets everything after it (within what the stream keeps). Without one, it gets
 *   what arrives from now on. A cursor beyond the stream's head (the stream expired and restarted)
 *   starts again from its beginning.
 * - **Delivery.** The edge polls KV (one script call that also renews the lease) every
 *   `pollIntervalMs` while idle, and at once again after a full page.
 * - **Residency.** A user's stream, leases included, lives in one KV: their region's own, when the
 *   host chooses per user (`kv` as a function, edge/app.ts), where the worker pushed it.
 */
import type { Logger } from '../log.ts';
import type { Kv } from '../ports/kv.ts';
import type { RegionClaims } from '../regions/residency.ts';
import { entriesOf, recentNotifications, streamKeys, type StreamEntry } from './stream.ts';

/** Whose notifications: the signed-in identity (its region picks the KV when the host has several). */
export type FeedUser = RegionClaims & { username: string };

export interface NotificationFeedOptions {
  /**
   * The KV holding the streams, or the one holding a user's (it may refuse one it cannot place,
   * e.g. with a ResidencyError, logged to `log`).
   */
  kv: Kv | ((user: FeedUser, log?: Logger) => Kv);
  /** Live connections one user may hold across all edges (default 3). */
  maxConnectionsPerUser?: number;
  /** Idle poll interval (default 500 ms). */
  pollIntervalMs?: number;
  /** A lease not renewed for this long is dropped (default 30 s; keep it well above the poll interval). */
  leaseTtlMs?: number;
  /** Most entries per poll (default 100). */
  pageSize?: number;
  /** Wall clock in ms (tests). */
  now?: () => number;
}

/** The user already holds the most live connections allowed. */
export class ConnectionLimitError extends Error {
  override readonly name = 'ConnectionLimitError';
  constructor(readonly limit: number) {
    super(`Too many live notification connections: at most ${limit} per user. Close another tab or window and retry.`);
  }
}

export interface NotificationFeed {
  readonly maxConnectionsPerUser: number;
  /**
   * Takes a connection lease (or throws {@link ConnectionLimitError}) and returns the user's
   * notifications as they arrive. Iterate it to the end or call `return()`: that releases the lease.
   */
  open(user: FeedUser, opts: { lastEventId?: string | null; signal?: AbortSignal; log?: Logger }): Promise<AsyncGenerator<StreamEntry>>;
  /** The newest `limit` notifications, newest first. */
  recent(user: FeedUser, limit: number, log?: Logger): Promise<StreamEntry[]>;
}

const OPEN = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
if n >= tonumber(ARGV[2]) then return { 0, n, head } end
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return { 1, n + 1, head }`;

const POLL = `
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + tonumber(ARGV[5]), ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local head = tonumber(redis.call('GET', KEYS[3]) or '0')
return { head, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2])) }`;

const CLOSE = `return redis.call('ZREM', KEYS[1], ARGV[1])`;

/** Sleeps `ms`, or less when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

const cursorOf = (lastEventId: string | null | undefined): number | null =>
  lastEventId && /^\d{1,15}$/.test(lastEventId) ? Number(lastEventId) : null;

export function createNotificationFeed(opts: NotificationFeedOptions): NotificationFeed {
  const max = opts.maxConnectionsPerUser ?? 3;
  const pollMs = opts.pollIntervalMs ?? 500;
  const ttlMs = opts.leaseTtlMs ?? 30_000;
  const pageSize = opts.pageSize ?? 100;
  const now = opts.now ?? (() => Date.now());
  const { kv: given } = opts;
  const kvOf = typeof given === 'function' ? given : () => given;

  return {
    maxConnectionsPerUser: max,
    async open(user, { lastEventId, signal, log }) {
      const kv = kvOf(user, log);
      const k = streamKeys(user.username);
      const connection = crypto.randomUUID();
      const [ok, , head] = await kv.eval<[number, number, number]>(OPEN, [k.leases, k.seq], [connection, max, now(), ttlMs]);
      if (Number(ok) !== 1) throw new ConnectionLimitError(max);
      let cursor = cursorOf(lastEventId) ?? Number(head);
      return (async function* entries() {
        try {
          while (!signal?.aborted) {
            const [polledHead, flat] = await kv.eval<[number, unknown]>(POLL, [k.stream, k.leases, k.seq], [cursor, pageSize, connection, now(), ttlMs]);
            if (cursor > Number(polledHead)) { cursor = 0; continue; }
            const page = entriesOf(flat);
            for (const entry of page) {
              if (signal?.aborted) return;
              yield entry;
              cursor = entry.seq;
            }
            if (page.length < pageSize) await pause(pollMs, signal);
          }
        } finally {
          await kv.eval(CLOSE, [k.leases], [connection]).catch(() => {
            // KV unreachable: the lease lapses by itself after leaseTtlMs.
          });
        }
      })();
    },
    async recent(user, limit, log) {
      return (await recentNotifications(kvOf(user, log), user.username, limit)).items;
    },
  };
}
