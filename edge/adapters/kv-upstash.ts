/**
 * KV over the Upstash REST protocol: Upstash in production, the project's gateway in front of
 * redis-server on the embedded stack. Web APIs only (fetch), so it runs on Deno, workers and Node.
 */
import { Redis } from '@upstash/redis';
import type { Kv } from '../../shared/ports/kv.ts';

// Scripts are program constants; the cap only guards against callers that build them dynamically.
const MAX_CACHED_SCRIPTS = 256;

/**
 * Creates the KV adapter. `redis` is the raw client for what the port does not cover
 * (rate limiting, sorted sets, pipelines); it returns strings as stored (no JSON parsing).
 */
export function createUpstashKv(cfg: { url: string; token: string }): Kv & { redis: Redis } {
  const redis = new Redis({
    url: cfg.url,
    token: cfg.token,
    // Values are opaque strings to the port; parsing "123" into a number would change them.
    automaticDeserialization: false,
    // Every value is text the platform wrote (JSON, numbers, ids), so plain JSON strings carry it
    // exactly; base64 (the client's default, for binary values) cost both ends CPU on every call.
    responseEncoding: false,
    enableTelemetry: false,
  });
  const scripts = new Map<string, ReturnType<Redis['createScript']>>();

  return {
    redis,
    async get(key) {
      return (await redis.get<string>(key)) ?? null;
    },
    async set(key, value, opts = {}) {
      const reply = opts.ttlSeconds === undefined
        ? await redis.set(key, value, opts.nx ? { nx: true } : undefined)
        : await redis.set(key, value, opts.nx ? { ex: opts.ttlSeconds, nx: true } : { ex: opts.ttlSeconds });
      return reply === 'OK';
    },
    async del(...keys) {
      return keys.length === 0 ? 0 : await redis.del(...keys);
    },
    async incr(key) {
      return await redis.incr(key);
    },
    async expire(key, ttlSeconds) {
      return (await redis.expire(key, ttlSeconds)) === 1;
    },
    async eval<T = unknown>(script: string, keys: string[], args: (string | number)[]): Promise<T> {
      let s = scripts.get(script);
      if (!s) {
        if (scripts.size >= MAX_CACHED_SCRIPTS) scripts.clear();
        s = redis.createScript(script);
        scripts.set(script, s);
      }
      // EVALSHA first; the client falls back to EVAL (which caches the script) on NOSCRIPT.
      return (await s.exec(keys, args.map(String))) as T;
    },
    async ping() {
      const reply = await redis.ping();
      if (reply !== 'PONG') throw new Error(`KV ping: unexpected reply ${JSON.stringify(reply)}`);
    },
  };
}
