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
import type { Context, MiddlewareHandler, Next } from 'hono';
import type { Identity } from '../../router/context.ts';
import type { Logger } from '../../shared/log.ts';
import { opsEvents } from '../../shared/metrics/events.ts';
import { addAnswerHeaders } from '../middleware/request-context.ts';
import { readCookie, sessionCookieName, type CookieSettings } from './cookies.ts';
import { rateLimitHeaders, RateLimitUnavailableError, type RateLimitBucket, type RateLimitDecision, type RateLimiter } from './rate-limit.ts';
import { RefreshUnavailableError, type Refresher } from './refresh.ts';
import { refuse } from './respond.ts';
import type { Session, SessionStore } from './session-store.ts';
import { TtlCache } from './ttl-cache.ts';

export type AuthVariables = {
  log: Logger;
  identity: Identity | null;
  session: Session | null;
  /** True when the access token is due but could not be refreshed just now. */
  sessionStale: boolean;
};

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
// Session ids seen lately → their store keys (a SHA-256 each): hashing the cookie again on every
// request of a busy session cost more than the rest of its in-memory path. Short-lived and
// bounded, as the session cache beside it; ids that name no well-formed key are not kept.
const KEY_MEMO_ENTRIES = 10_000;
const KEY_MEMO_SECONDS = 60;

type Looked = { session: Session | null; decision: RateLimitDecision | null; refused?: undefined } | { refused: Response };

export const authMiddleware = (opts: AuthMiddlewareOptions): MiddlewareHandler<{ Variables: AuthVariables }> => {
  const keyMemo = new TtlCache<string>(opts.sessions ? KEY_MEMO_ENTRIES : 0);
  const keyOf = (sessions: SessionStore, cookie: string, now: number): string | null => {
    let key: string | null | undefined = keyMemo.get(cookie, now);
    if (key === undefined && (key = sessions.keyOf(cookie))) keyMemo.set(cookie, key, now, KEY_MEMO_SECONDS);
    return key;
  };

  async function limit(c: Context, bucket: RateLimitBucket, signIn: boolean, id: string): Promise<RateLimitDecision | null> {
    if (!opts.limiter) return null;
    try {
      return await opts.limiter.check(bucket, id);
    } catch (err) {
      if (!(err instanceof RateLimitUnavailableError)) throw err;
      c.get('log').error('rate limit store unavailable', { bucket, err });
      if (signIn) throw err; // fail closed: see the module comment
      return null;
    }
  }

  /** Session and rate limit from KV, side by side (the path a busy session rarely takes); `refused` when KV failed. */
  async function lookUp(c: Context, key: string | null, bucket: RateLimitBucket, signIn: boolean, now: number): Promise<Looked> {
    let address: string | undefined;
    const ip = () => (address ??= opts.clientIp(c));
    try {
      const [session, d] = await Promise.all([
        key ? opts.sessions!.load(key, now) : Promise.resolve(null),
        limit(c, bucket, signIn, key ? `session:${key}` : `ip:${ip()}`),
      ]);
      let decision = d;
      // A cookie that names no session must not buy a fresh bucket: count it against the address too.
      if (key && !session && decision?.success) decision = (await limit(c, bucket, signIn, `ip:${ip()}`)) ?? decision;
      return { session, decision };
    } catch (err) {
      c.get('log').error('session or rate-limit store unavailable', { err });
      return { refused: await refuse(c, 503, signIn ? 'Sign-in is temporarily unavailable. Please try again shortly.' : 'The session store is unavailable. Please try again shortly.', { 'retry-after': '5' }) };
    }
  }

  /** Lets the request in as `session` under `decision` (or refuses it, 429), refreshing a due access token first. */
  function admit(c: Context, next: Next, key: string | null, bucket: RateLimitBucket, session: Session | null, decision: RateLimitDecision | null): Promise<Response | void> {
    const headers = decision ? rateLimitHeaders(decision) : null;
    if (decision && !decision.success) {
      c.get('log').warn('rate limited', { bucket, by: key ? 'session' : 'address' });
      opsEvents.rateLimitRejected(bucket);
      return refuse(c, 429, 'Too many requests. Please slow down and try again later.', headers!);
    }
    if (session && opts.refresher && !opts.refresher.isFresh(session)) return refreshThenEnter(c, next, session, headers);
    return enter(c, next, session, headers);
  }

  function enter(c: Context, next: Next, session: Session | null, headers: Record<string, string> | null): Promise<void> {
    c.set('session', session);
    c.set('identity', session?.identity ?? null);
    // On the answer with the request id (edge/middleware/request-context.ts): no work after next().
    if (headers) addAnswerHeaders(c, headers);
    return next();
  }

  async function refreshThenEnter(c: Context, next: Next, session: Session, headers: Record<string, string> | null): Promise<void> {
    let current: Session | null = session;
    try {
      current = await opts.refresher!.ensureFresh(session);
      // Another instance's refresh (or the end of the session) replaces what this one cached.
      if (current !== session) opts.sessions!.remember(session.key, current, opts.now());
    } catch (err) {
      if (!(err instanceof RefreshUnavailableError)) throw err;
      c.get('log').warn('access token refresh postponed', { err });
      c.set('sessionStale', true);
    }
    return enter(c, next, current, headers);
  }

  async function fromKv(c: Context, next: Next, key: string | null, bucket: RateLimitBucket, signIn: boolean, now: number): Promise<Response | void> {
    const looked = await lookUp(c, key, bucket, signIn, now);
    if (looked.refused) return looked.refused;
    return admit(c, next, key, bucket, looked.session, looked.decision);
  }

  // Not async itself: a busy session is admitted from this instance's memory without a promise of its own.
  return function auth(c, next) {
    c.set('identity', null);
    c.set('session', null);
    c.set('sessionStale', false);
    const path = c.req.path;
    if (UNLIMITED_PATHS.has(path)) return next();
    const signIn = SIGN_IN_PATHS.has(path);
    const now = opts.now();
    const cookie = opts.sessions && !signIn ? readCookie(c, sessionCookieName(opts.cookies)) : undefined;
    const key = cookie && opts.sessions ? keyOf(opts.sessions, cookie, now) : null;
    const bucket: RateLimitBucket = signIn ? 'login' : 'api';
    // The common case, a busy session: both answers are in this instance's memory, no KV and no await.
    const hit = key ? opts.sessions!.cached(key, now) : undefined;
    const quick = hit && opts.limiter ? opts.limiter.local?.(bucket, `session:${key}`) : undefined;
    if (hit && (quick || !opts.limiter)) return admit(c, next, key, bucket, hit, quick ?? null);
    return fromKv(c, next, key, bucket, signIn, now);
  };
};
