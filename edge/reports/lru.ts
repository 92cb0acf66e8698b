/**
 * A least-recently-used cache bounded by bytes, for hot reports on one edge instance. Keys carry
 * the user's version, so an invalidation needs no eviction here: the old entries are simply never
 * asked for again and fall off the cold end.
 */
export interface LruOptions {
  /** Total bytes the entries may hold; 0 disables the cache. */
  maxBytes: number;
  /** Larger entries are not cached, so one huge report cannot flush every hot one (default maxBytes / 8). */
  maxEntryBytes?: number;
}

export class ByteLru<V> {
  // A Map iterates in insertion order: re-inserting on a hit moves an entry to the hot end.
  private readonly entries = new Map<string, { value: V; bytes: number }>();
  private total = 0;
  /** The most recently used key (the last in `entries`), or undefined. */
  private newest: string | undefined;
  readonly maxBytes: number;
  readonly maxEntryBytes: number;

  constructor(opts: LruOptions) {
    this.maxBytes = opts.maxBytes;
    this.maxEntryBytes = opts.maxEntryBytes ?? Math.floor(opts.maxBytes / 8);
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    // A hot report read again and again is already the most recent: nothing to reorder.
    if (key !== this.newest) {
      this.entries.delete(key);
      this.entries.set(key, e);
      this.newest = key;
    }
    return e.value;
  }

  /** Stores `value` as `bytes` large; returns false when it is too large to cache. */
  set(key: string, value: V, bytes: number): boolean {
    this.delete(key);
    if (bytes > this.maxEntryBytes || bytes > this.maxBytes) return false;
    this.entries.set(key, { value, bytes });
    this.newest = key;
    this.total += bytes;
    for (const [k, e] of this.entries) {
      if (this.total <= this.maxBytes) break;
      this.entries.delete(k);
      this.total -= e.bytes;
    }
    return true;
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.total -= e.bytes;
    if (key === this.newest) this.newest = undefined;
  }

  get bytes(): number { return this.total; }
  get size(): number { return this.entries.size; }
}
