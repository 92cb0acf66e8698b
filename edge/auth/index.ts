/**
 * Assembles the edge's auth layer from configuration and ports: OIDC client, key ring, session
 * store, refresher, rate limiter, CSRF guard, per-request middleware and the /auth routes.
 * `createEdgeApp` mounts what this returns; nothing else in the edge knows the pieces.
 */
import type { Context, Hono } from 'hono';
import type { JWTVerifyGetKey } from 'jose';
import type { EdgeAuthConfig } from '../../shared/config.ts';
import type { Logger } from '../../shared/log.ts';
import type { Kv } from '../../shared/ports/kv.ts';
import type { CookieSettings } from './cookies.ts';
import { csrf } from './csrf.ts';
import { authMiddleware, type AuthVariables } from './middleware.ts';
import { createOidcClient, type OidcClient } from './oidc.ts';
import { createRateLimiter, type RateLimitSettings } from './rate-limit.ts';
import { createRefresher, type Refresher } from './refresh.ts';
import { authRoutes, disabledAuthRoutes } from './routes.ts';
import { createKeyRing } from './seal.ts';
import { createSessionStore, DEFAULT_SESSION_CACHE_SECONDS, type SessionStore } from './session-store.ts';

export interface EdgeAuthOptions {
  kv: Kv;
  /** A region's own KV for its people's sessions, when it has one (session-store.ts). */
  regionalKv?: (region: string) => Kv | undefined;
  log: Logger;
  /** The edge's public URL; its origin is the only one allowed for CSRF and return-to (required with `config`). */
  publicUrl?: string;
  /** Absent: sign-in is disabled and every caller is anonymous. */
  config: EdgeAuthConfig | null;
  /** Absent or null: no rate limiting (only for tests that exercise routing). */
  rateLimits?: RateLimitSettings | null;
  /** The caller's address for per-address limits; runtime-specific (see the entry points). */
  clientIp?: (c: Context) => string | undefined;
  /** Edge clock in epoch seconds (session timeouts, token refresh timing); tests move it. */
  now?: () => number;
  /** Tests may pin the verification keys instead of fetching the provider's JWKS. */
  jwks?: JWTVerifyGetKey;
  loginStateTtlSeconds?: number;
}

export interface EdgeAuth {
  /** The per-request layer: the CSRF guard, then the session and the rate limit (middleware.ts). */
  readonly middleware: ReturnType<typeof authMiddleware>;
  readonly routes: Hono<{ Variables: AuthVariables }>;
  readonly sessions: SessionStore | null;
  readonly refresher: Refresher | null;
  readonly oidc: OidcClient | null;
}

export function createEdgeAuth(opts: EdgeAuthOptions): EdgeAuth {
  // Without a configured public URL, CSRF accepts only the request's own origin.
  const publicOrigin = opts.publicUrl ? new URL(opts.publicUrl).origin : undefined;
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const cookies: CookieSettings = { secure: opts.config?.cookieSecure ?? true };
  const limiter = opts.rateLimits ? createRateLimiter(opts.kv, opts.rateLimits) : null;
  const clientIp = (c: Context) => opts.clientIp?.(c) ?? 'unknown';
  // The CSRF guard and the session as one step of the app's chain: every request passes both.
  const guarded = (session: ReturnType<typeof authMiddleware>) => csrf({ origin: publicOrigin }, session);
  if (!opts.config) {
    return {
      routes: disabledAuthRoutes(), sessions: null, refresher: null, oidc: null,
      middleware: guarded(authMiddleware({ sessions: null, refresher: null, limiter, cookies, clientIp, now })),
    };
  }
  const cfg = opts.config;
  if (!opts.publicUrl) throw new Error('createEdgeAuth: publicUrl is required when sign-in is configured');
  const publicUrl = new URL(opts.publicUrl);
  const keys = createKeyRing(cfg.sessionKeys);
  const oidc = createOidcClient({
    issuer: cfg.issuer, clientId: cfg.clientId, clientSecret: cfg.clientSecret, audience: cfg.audience, jwksUrl: cfg.jwksUrl,
    mfaAcrValues: cfg.mfaAcrValues,
    redirectUri: new URL('/auth/callback', publicUrl).href,
    postLogoutRedirectUri: new URL('/auth/logged-out', publicUrl).href,
  }, { jwks: opts.jwks });
  const sessions = createSessionStore({
    kv: opts.kv, regionalKv: opts.regionalKv, keys, idleSeconds: cfg.idleSeconds, absoluteSeconds: cfg.absoluteSeconds,
    cacheSeconds: cfg.sessionCacheSeconds ?? DEFAULT_SESSION_CACHE_SECONDS,
  });
  const refresher = createRefresher({ kv: opts.kv, sessions, oidc, log: opts.log, now });
  return {
    middleware: guarded(authMiddleware({ sessions, refresher, limiter, cookies, clientIp, now })),
    routes: authRoutes({ kv: opts.kv, oidc, sessions, keys, cookies, publicOrigin: publicUrl.origin, now, loginStateTtlSeconds: opts.loginStateTtlSeconds }),
    sessions, refresher, oidc,
  };
}
