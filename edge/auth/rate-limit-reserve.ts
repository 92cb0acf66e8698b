/**
 * The API's sliding window, paid for in advance: an instance reserves a small batch of requests
 * from the shared window in KV in one round trip and spends it locally, so a busy session costs
 * one KV call per batch instead of one per request. Every request served was counted in KV
 * first, so the instances together never exceed the limit; what a batch leaves unspent when its
 * window ends is lost, which can only make the limit stricter.
 *
 * So that a session spread over many instances is not starved by budget parked elsewhere, batches
 * start at one request and double with use (up to `batch`), and no call takes more than a tenth of
 * what is left in the window: near the limit every request asks KV again, as without batching.
 *
 * The window is `@upstash/ratelimit`'s (same keys, same weighting of the previous window), but its
 * script cannot reserve: with a rate above 1 it adds the whole rate even past the limit and then
 * reports failure. This one grants what is left, within the bounds above.
 */
import type { Kv } from '../../shared/ports/kv.ts';
import { TtlCache } from './ttl-cache.ts';

export interface Reservation { success: boolean; limit: number; remaining: number; /** epoch ms */ reset: number }

// Returns {granted, left after the grant}; grants nothing once the window is spent.
const RESERVE = `local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit, now, window, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local left = limit - math.floor((1 - (now % window) / window) * prev) - cur
local grant = math.min(want, math.max(1, math.floor(left / 10)), left)
if grant <= 0 then return {0, math.max(0, left)} end
if redis.call('INCRBY', KEYS[1], grant) == grant then redis.call('PEXPIRE', KEYS[1], window * 2 + 1000) end
return {grant, left - grant}`;

interface Local { credit: number; left: number; reset: number; /** what the next reservation asks for */ next: number }

export interface ReservingWindowOptions {
  kv: Kv;
  prefix: string;
  limit: number;
  windowSeconds: number;
  /** Most requests reserved per KV call; 1 asks KV for every request. */
  batch: number;
  /** Wraps each KV call (timeouts, error translation). */
  call: <T>(fn: () => Promise<T>) => Promise<T>;
  maxIdentifiers?: number;
  nowMs?: () => number;
}

/** Default largest batch: 5 % of the limit, at most 1000 — small limits keep one KV call per request. */
export const defaultBatch = (limit: number) => Math.max(1, Math.min(1000, Math.floor(limit / 20)));

export function createReservingWindow(opts: ReservingWindowOptions) {
  const windowMs = opts.windowSeconds * 1000;
  const nowMs = opts.nowMs ?? Date.now;
  const local = new TtlCache<Local>(opts.maxIdentifiers ?? 10_000);
  const pending = new Map<string, Promise<Local>>();
  const waiting = new Map<string, number>();

  /** Takes up to `want` requests from the shared window and remembers the result until the window turns. */
  async function reserve(id: string, want: number): Promise<Local> {
    const now = nowMs();
    const current = Math.floor(now / windowMs);
    const key = `${opts.prefix}:${id}`;
    const [granted, left] = await opts.call(() => opts.kv.eval<[number, number]>(
      RESERVE, [`${key}:${current}`, `${key}:${current - 1}`], [opts.limit, now, windowMs, want],
    ));
    const s = { credit: Number(granted), left: Number(left), reset: (current + 1) * windowMs, next: Math.min(opts.batch, Math.max(1, Number(granted) * 2)) };
    local.set(id, s, now, s.reset - now);
    return s;
  }

  const refused = (s: Local): Reservation => ({ success: false, limit: opts.limit, remaining: 0, reset: s.reset });
  const take = (s: Local): Reservation => {
    s.credit -= 1;
    return { success: true, limit: opts.limit, remaining: s.left + s.credit, reset: s.reset };
  };

  return {
    /** The decision when this instance can make it alone (budget in hand, or the window known spent). */
    local(id: string): Reservation | undefined {
      const s = local.get(id, nowMs());
      if (!s) return undefined;
      // With batch 1 a stored grant belongs to the request that asked for it.
      if (s.credit > 0 && opts.batch > 1) return take(s);
      return s.left <= 0 ? refused(s) : undefined;
    },
    async check(id: string): Promise<Reservation> {
      if (opts.batch <= 1) {
        // One KV call per request, as Ratelimit itself; a spent window is refused locally until it turns.
        const known = local.get(id, nowMs());
        const s = known && known.left <= 0 && known.credit <= 0 ? known : await reserve(id, 1);
        return s.credit > 0 ? take(s) : refused(s);
      }
      for (;;) {
        const s = local.get(id, nowMs());
        if (s && s.credit > 0) return take(s);
        if (s && s.left <= 0) return refused(s);
        // Requests arriving meanwhile share the call; it asks for all of them (within a batch) when they are many.
        let p = pending.get(id);
        if (!p) {
          const started = reserve(id, Math.min(opts.batch, Math.max(s?.next ?? 1, (waiting.get(id) ?? 0) + 1)))
            .finally(() => { if (pending.get(id) === started) pending.delete(id); });
          pending.set(id, started);
          p = started;
        }
        waiting.set(id, (waiting.get(id) ?? 0) + 1);
        try { await p; } finally {
          const n = (waiting.get(id) ?? 1) - 1;
          if (n > 0) waiting.set(id, n); else waiting.delete(id);
        }
      }
    },
  };
}
