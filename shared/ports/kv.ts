/**
 * Key-value store: sessions, PKCE state, locks, rate limits, cache versions.
 * Production: Upstash (REST). Embedded: redis-server behind the project's Upstash-REST gateway.
 * Values are strings; callers serialise. TTLs are in seconds.
 */
export interface Kv {
  get(key: string): Promise<string | null>;
  /** Sets a value; `nx` only when absent (returns false if it existed). */
  set(key: string, value: string, opts?: { ttlSeconds?: number; nx?: boolean }): Promise<boolean>;
  del(...keys: string[]): Promise<number>;
  incr(key: string): Promise<number>;
  expire(key: string, ttlSeconds: number): Promise<boolean>;
  /** Runs a Lua script atomically (EVALSHA with EVAL fallback). */
  eval<T = unknown>(script: string, keys: string[], args: (string | number)[]): Promise<T>;
  ping(): Promise<void>;
}
