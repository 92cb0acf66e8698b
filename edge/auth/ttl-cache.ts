/**
 * A small in-process cache whose entries live for a while on the caller's clock and whose size is
 * bounded by a count. It fronts KV reads on the hot path (sessions, report versions, rate-limit
 * reservations): each entry is a copy of something KV holds, so losing one only costs a round trip.
 *
 * Entries are evicted oldest-inserted first: with lifetimes of seconds, recency adds nothing.
 * An entry read on a clock that stepped backwards past its start counts as expired.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; from: number; until: number }>();

  /** `maxEntries` 0 disables the cache: nothing is stored. */
  constructor(readonly maxEntries: number) {}

  /** The value while `from <= now < until`, else undefined (and the stale entry is dropped). */
  get(key: string, now: number): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (now < e.from || now >= e.until) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  /** Keeps `value` for `ttl` (same unit as `now`); a ttl ≤ 0 only drops what was there. */
  set(key: string, value: V, now: number, ttl: number): void {
    this.entries.delete(key);
    if (ttl <= 0 || this.maxEntries <= 0) return;
    this.entries.set(key, { value, from: now, until: now + ttl });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number { return this.entries.size; }
}
