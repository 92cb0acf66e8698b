/**
 * Sliding-window rate limits kept in KV, through the `Kv` port's `eval` so any KV adapter works.
 * Sign-in: `@upstash/ratelimit`, one KV call per request. The API: the same window, but reserved
 * in batches so most requests are counted without a round trip (rate-limit-reserve.ts).
 * Ratelimit's own timeout would silently let requests through when KV is slow; it is off, and the
 * caller decides per bucket what an unreachable KV means (see README: login fails closed, the API
 * fails open).
 */
import { Ratelimit } from '@upstash/ratelimit';
import type { Kv } from '../../shared/ports/kv.ts';
import { createReservingWindow, defaultBatch } from './rate-limit-reserve.ts';

export interface RateLimitRule {
  limit: number;
  windowSeconds: number;
  /** API only: requests an instance reserves per KV call (default 5 % of the limit, at most 1000; 1 = every request). */
  batch?: number;
}

/** `login`: per client address on /auth/login and /auth/callback. `api`: per session (or address) elsewhere. */
export interface RateLimitSettings { login: RateLimitRule; api: RateLimitRule; timeoutMs?: number }
export type RateLimitBucket = 'login' | 'api';

export interface RateLimitDecision { success: boolean; limit: number; remaining: number; /** epoch ms */ reset: number }

/** KV did not answer in time or failed; `bucket` tells the caller which policy applies. */
export class RateLimitUnavailableError extends Error {
  override readonly name = 'RateLimitUnavailableError';
}

export interface RateLimiter {
  check(bucket: RateLimitBucket, identifier: string): Promise<RateLimitDecision>;
  /** The decision when it needs no KV call (API budget reserved earlier); undefined otherwise. */
  local?(bucket: RateLimitBucket, identifier: string): RateLimitDecision | undefined;
}

export const DEFAULT_RATE_LIMITS: RateLimitSettings = {
  login: { limit: 20, windowSeconds: 60 },
  api: { limit: 600, windowSeconds: 60 },
  timeoutMs: 2000,
};

export function createRateLimiter(kv: Kv, settings: RateLimitSettings): RateLimiter {
  // Ratelimit tries EVALSHA with its own script hash, then EVAL with the text. The port's `eval`
  // already does EVALSHA-then-EVAL with the text, so the first step is answered locally.
  const redis = {
    evalsha: () => Promise.reject(new Error('NOSCRIPT (answered by the port adapter)')),
    eval: (script: string, keys: string[], args: unknown[]) => kv.eval(script, keys, args.map((a) => String(a))),
  };
  const make = (bucket: RateLimitBucket, rule: RateLimitRule) => new Ratelimit({
    redis: redis as unknown as ConstructorParameters<typeof Ratelimit>[0]['redis'],
    limiter: Ratelimit.slidingWindow(rule.limit, `${rule.windowSeconds} s`),
    prefix: `ratelimit:${bucket}`,
    timeout: 0,
    analytics: false,
    enableTelemetry: false,
    // An instance-local "already blocked until reset" cache spares KV during floods.
    ephemeralCache: new Map(),
  });
  const login = make('login', settings.login);
  const timeoutMs = settings.timeoutMs ?? 2000;

  async function bounded<T>(fn: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new RateLimitUnavailableError(`rate limit store did not answer in ${timeoutMs} ms`)), timeoutMs); }),
      ]);
    } catch (err) {
      if (err instanceof RateLimitUnavailableError) throw err;
      throw new RateLimitUnavailableError('rate limit store failed', { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  const api = createReservingWindow({
    kv, prefix: 'ratelimit:api', limit: settings.api.limit, windowSeconds: settings.api.windowSeconds,
    batch: settings.api.batch ?? defaultBatch(settings.api.limit), call: bounded,
  });

  return {
    local: (bucket, identifier) => (bucket === 'api' ? api.local(identifier) : undefined),
    async check(bucket, identifier) {
      if (bucket === 'api') return api.check(identifier);
      const r = await bounded(() => login.limit(identifier));
      return { success: r.success, limit: r.limit, remaining: r.remaining, reset: r.reset };
    },
  };
}

/** `X-RateLimit-*` headers (reset as epoch seconds) and, when refused, `Retry-After` in seconds. */
export function rateLimitHeaders(d: RateLimitDecision, now = Date.now()): Record<string, string> {
  const h: Record<string, string> = {
    'x-ratelimit-limit': String(d.limit),
    'x-ratelimit-remaining': String(Math.max(0, d.remaining)),
    'x-ratelimit-reset': String(Math.ceil(d.reset / 1000)),
  };
  if (!d.success) h['retry-after'] = String(Math.max(1, Math.ceil((d.reset - now) / 1000)));
  return h;
}
