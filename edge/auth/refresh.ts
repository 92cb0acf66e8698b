/**
 * Transparent access-token refresh, one per session at a time across every edge instance. Requests
 * in one isolate share one promise; across isolates a KV lock (SET NX with an owner token and a
 * TTL) elects one refresher, and the others wait for its result by watching the session's revision.
 * Nobody fails because someone else is refreshing: a waiter only gives up when the session ended
 * or the refresher vanished without a result.
 */
import type { Kv } from '../../shared/ports/kv.ts';
import type { Logger } from '../../shared/log.ts';
import { opsEvents } from '../../shared/metrics/events.ts';
import { identityFromClaims } from './claims.ts';
import { OidcGrantError, type OidcClient } from './oidc.ts';
import type { Session, SessionStore } from './session-store.ts';

export interface RefresherOptions {
  kv: Kv;
  sessions: SessionStore;
  oidc: OidcClient;
  log: Logger;
  now: () => number;
  /** Refresh this many seconds before the access token expires. */
  skewSeconds?: number;
  lockTtlSeconds?: number;
  /** How long a waiter waits for another instance's refresh. */
  waitMs?: number;
}

/** The refresh could not be done now (provider or KV trouble); the session itself is intact. */
export class RefreshUnavailableError extends Error {
  override readonly name = 'RefreshUnavailableError';
}

// Deletes the lock only if we still own it (it may have expired and been taken over).
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createRefresher(opts: RefresherOptions) {
  const skew = opts.skewSeconds ?? 30;
  const lockTtl = opts.lockTtlSeconds ?? 30;
  const waitMs = opts.waitMs ?? 15_000;
  const inFlight = new Map<string, Promise<Session | null>>();
  let refreshes = 0;

  const fresh = (s: Session) => s.record.accessExp - skew > opts.now();

  /** Refreshes with the KV lock held. Returns the new session, or null when the provider ended the grant. */
  async function refreshHolding(s: Session): Promise<Session | null> {
    // Someone may have refreshed between our read and taking the lock.
    const current = await opts.sessions.peek(s.key);
    if (!current) return null;
    if (current.record.rev !== s.record.rev && fresh(current)) return current;
    const tokens = await opts.sessions.tokens(current);
    if (!tokens?.refreshToken) {
      // Sealed with a key no longer in the ring, or never given a refresh token: nothing can renew it.
      await opts.sessions.delete(s.key);
      return null;
    }
    let set;
    try {
      set = await opts.oidc.refresh(tokens.refreshToken);
    } catch (err) {
      opsEvents.sessionRefresh('failed');
      if (err instanceof OidcGrantError) {
        opts.log.info('session ended by the identity provider', { code: err.code });
        await opts.sessions.delete(s.key);
        return null;
      }
      throw new RefreshUnavailableError('could not refresh the access token', { cause: err });
    }
    refreshes += 1;
    opsEvents.sessionRefresh('ok');
    const identity = identityFromClaims(await opts.oidc.verifyAccessToken(set.accessToken));
    const next = await opts.sessions.replaceTokens(current, identity, {
      accessToken: set.accessToken, refreshToken: set.refreshToken ?? tokens.refreshToken,
    }, set.expiresInSeconds, opts.now());
    if (!next) {
      // Logged out while we refreshed: the new tokens must not outlive the session.
      if (set.refreshToken) await opts.oidc.revoke(set.refreshToken).catch(() => {});
      return null;
    }
    return next;
  }

  async function refreshShared(s: Session): Promise<Session | null> {
    const lockKey = `session-lock:${s.key}`;
    const deadline = Date.now() + waitMs;
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      const owner = crypto.randomUUID();
      if (await opts.kv.set(lockKey, owner, { nx: true, ttlSeconds: lockTtl })) {
        try {
          return await refreshHolding(s);
        } finally {
          await opts.kv.eval(RELEASE, [lockKey], [owner]).catch(() => {});
        }
      }
      // Another instance is refreshing: wait for its result rather than failing.
      await sleep(delay);
      const seen = await opts.sessions.peek(s.key);
      if (!seen) return null;
      if (seen.record.rev !== s.record.rev) return seen;
      if (Date.now() > deadline) throw new RefreshUnavailableError('timed out waiting for another refresh of this session');
    }
  }

  return {
    /** Number of refreshes this instance performed at the provider (metrics, tests). */
    get count() { return refreshes; },
    /** True when the session's access token needs no refresh now (callers then skip {@link ensureFresh}'s promise). */
    isFresh: fresh,
    /** The session with a usable access token: as is, refreshed, or null when it has ended. */
    async ensureFresh(s: Session): Promise<Session | null> {
      if (fresh(s)) return s;
      let p = inFlight.get(s.key);
      if (!p) {
        p = refreshShared(s).finally(() => inFlight.delete(s.key));
        inFlight.set(s.key, p);
      }
      return p;
    },
  };
}

export type Refresher = ReturnType<typeof createRefresher>;
