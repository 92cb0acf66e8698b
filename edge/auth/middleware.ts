/**
 * Per request: find the caller's session from the cookie (refreshing its access token when due)
 * and apply the rate limit of the route — per client address on the sign-in routes, per session
 * (or address, without one) on everything else. A busy session is usually answered from this
 * instance's memory alone: its session for SESSION_CACHE_SECONDS (session-store.ts) and its API
 * budget reserved in batches (rate-limit-reserve.ts). Otherwise session lookup and rate limiting
 * run side by side, so a call costs one KV round trip of latency, not two.
 *
 * KV unreachable: sign-in routes fail closed (503); other routes fail open on the rate limit only —
 * a request with a session cookie still needs KV to find its session and gets 503 without it.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { Identity } from '../../router/context.ts';
import type { Logger } from '../../shared/log.ts';
import { opsEvents } from '../../shared/metrics/events.ts';
import { readCookie, sessionCookieName, type CookieSettings } from './cookies.ts';
import { rateLimitHeaders, RateLimitUnavailableError, type RateLimitBucket, type RateLimitDecision, type RateLimiter } from './rate-limit.ts';
import { RefreshUnavailableError, type Refresher } from './refresh.ts';
import { refuse } from './respond.ts';
import type { Session, SessionStore } from './session-store.ts';

export type AuthVariables = {
  log: Logger;
  identity: Identity | null;
  session: Session | null;
  /** True when the access token is due but could not be refreshed just now. */
  sessionStale: boolean;
  /** `X-RateLimit-*` headers not yet on the response (see {@link takeRateLimitHeaders}). */
  rateLimitHeaders: Record<string, string> | null;
};

/**
 * Hands the request's `X-RateLimit-*` headers to a handler that builds its Response itself, so
 * they go into that Response's own header record: adding them afterwards makes the runtime copy
 * every header of a response it could otherwise write as it is (hot routes: cached reports).
 */
export function takeRateLimitHeaders(c: Context): Record<string, string> {
  const ctx = c as Context<{ Variables: Pick<AuthVariables, 'rateLimitHeaders'> }>;
  const headers = ctx.get('rateLimitHeaders') ?? {};
  ctx.set('rateLimitHeaders', null);
  return headers;
}

export interface AuthMiddlewareOptions {
  sessions: SessionStore | null;
  refresher: Refresher | null;
  limiter: RateLimiter | null;
  cookies: CookieSettings;
  clientIp: (c: Context) => string;
  now: () => number;
}

const SIGN_IN_PATHS = new Set(['/auth/login', '/auth/callback']);
const UNLIMITED_PATHS = new Set(['/health']);

export const authMiddleware = (opts: AuthMiddlewareOptions): MiddlewareHandler<{ Variables: AuthVariables }> =>
  async function auth(c, next) {
    c.set('identity', null);
    c.set('session', null);
    c.set('sessionStale', false);
    c.set('rateLimitHeaders', null);
    if (UNLIMITED_PATHS.has(c.req.path)) return next();
    const log = c.get('log');
    const signIn = SIGN_IN_PATHS.has(c.req.path);
    const cookie = opts.sessions && !signIn ? readCookie(c, sessionCookieName(opts.cookies)) : undefined;
    const key = cookie && opts.sessions ? opts.sessions.keyOf(cookie) : null;
    const bucket: RateLimitBucket = signIn ? 'login' : 'api';
    let address: string | undefined;
    const ip = () => (address ??= opts.clientIp(c));

    const limit = async (id: string): Promise<RateLimitDecision | null> => {
      if (!opts.limiter) return null;
      try {
        return await opts.limiter.check(bucket, id);
      } catch (err) {
        if (!(err instanceof RateLimitUnavailableError)) throw err;
        log.error('rate limit store unavailable', { bucket, err });
        if (signIn) throw err; // fail closed: see the module comment
        return null;
      }
    };

    let session: Session | null = null;
    let decision: RateLimitDecision | null = null;
    // The common case, a busy session: both answers are in this instance's memory, no KV and no await.
    const hit = key ? opts.sessions!.cached(key, opts.now()) : undefined;
    const quick = hit && opts.limiter ? opts.limiter.local?.(bucket, `session:${key}`) : undefined;
    if (hit && (quick || !opts.limiter)) {
      session = hit;
      decision = quick ?? null;
    } else try {
      const [loaded, d] = await Promise.all([
        key ? opts.sessions!.load(key, opts.now()) : Promise.resolve(null),
        limit(key ? `session:${key}` : `ip:${ip()}`),
      ]);
      session = loaded;
      decision = d;
      // A cookie that names no session must not buy a fresh bucket: count it against the address too.
      if (key && !session && decision?.success) decision = (await limit(`ip:${ip()}`)) ?? decision;
    } catch (err) {
      log.error('session or rate-limit store unavailable', { err });
      return refuse(c, 503, signIn ? 'Sign-in is temporarily unavailable. Please try again shortly.' : 'The session store is unavailable. Please try again shortly.', { 'retry-after': '5' });
    }

    const headers = decision ? rateLimitHeaders(decision) : {};
    if (decision && !decision.success) {
      log.warn('rate limited', { bucket, by: key ? 'session' : 'address' });
      opsEvents.rateLimitRejected(bucket);
      return refuse(c, 429, 'Too many requests. Please slow down and try again later.', headers);
    }

    if (session && opts.refresher) {
      try {
        const fresh = await opts.refresher.ensureFresh(session);
        // Another instance's refresh (or the end of the session) replaces what this one cached.
        if (fresh !== session) opts.sessions!.remember(session.key, fresh, opts.now());
        session = fresh;
      } catch (err) {
        if (!(err instanceof RefreshUnavailableError)) throw err;
        log.warn('access token refresh postponed', { err });
        c.set('sessionStale', true);
      }
    }
    c.set('session', session);
    c.set('identity', session?.identity ?? null);
    c.set('rateLimitHeaders', decision ? headers : null);
    await next();
    if (c.get('rateLimitHeaders')) {
      // Responses built from a fetch() may have immutable headers; copy once when needed.
      try { for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v); } catch {
        c.res = new Response(c.res.body, c.res);
        for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
      }
    }
  };
