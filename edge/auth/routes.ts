/**
 * The BFF's sign-in routes: `GET /auth/login` → the identity provider (PKCE S256, state, nonce) →
 * `GET /auth/callback` → a fresh session cookie; `GET /auth/me`; `POST /auth/logout` → end-session.
 * The browser only ever holds the opaque session cookie: tokens stay sealed in KV.
 */
import { Hono, type Context } from 'hono';
import { generateCodeVerifier, generateState } from 'arctic';
import type { Kv } from '../../shared/ports/kv.ts';
import { hasSecondFactor, identityFromClaims } from './claims.ts';
import { clearCookie, loginCookieName, readCookie, sessionCookieName, writeCookie, type CookieSettings } from './cookies.ts';
import type { AuthVariables } from './middleware.ts';
import { OidcGrantError, type OidcClient } from './oidc.ts';
import { page, refuse } from './respond.ts';
import { safeReturnTo } from './return-to.ts';
import type { KeyRing } from './seal.ts';
import type { SessionStore } from './session-store.ts';
import { constantTimeEqual, TokenError } from './tokens.ts';

export interface AuthRoutesOptions {
  kv: Kv;
  oidc: OidcClient;
  sessions: SessionStore;
  keys: KeyRing;
  cookies: CookieSettings;
  publicOrigin: string;
  now: () => number;
  /** How long a started sign-in may take (PKCE verifier and nonce live this long). */
  loginStateTtlSeconds?: number;
}

interface PendingLogin { verifier: string; nonce: string; returnTo: string }

// Single use even under races: read and delete in one step.
const TAKE = `local v = redis.call('GET', KEYS[1]) if v then redis.call('DEL', KEYS[1]) end return v`;

const html = (c: Context, status: 200 | 400 | 403 | 502 | 503, title: string, message: string) => {
  c.header('cache-control', 'no-store');
  return c.html(page(title, message, { href: '/auth/login', text: 'Sign in again' }), status);
};

export function authRoutes(opts: AuthRoutesOptions) {
  const { kv, oidc, sessions, keys, cookies } = opts;
  const stateTtl = opts.loginStateTtlSeconds ?? 600;
  const app = new Hono<{ Variables: AuthVariables }>();

  app.get('/login', async (c) => {
    const state = generateState();
    const pending: PendingLogin = {
      verifier: generateCodeVerifier(), nonce: generateState(),
      returnTo: safeReturnTo(c.req.query('returnTo'), opts.publicOrigin),
    };
    const stateKey = `login-state:${state}`;
    await kv.set(stateKey, await keys.seal(JSON.stringify(pending), stateKey), { ttlSeconds: stateTtl });
    writeCookie(c, loginCookieName(cookies), state, cookies, stateTtl);
    c.header('cache-control', 'no-store');
    return c.redirect(oidc.authorizationUrl(state, pending.verifier, pending.nonce).href, 302);
  });

  app.get('/callback', async (c) => {
    const log = c.get('log');
    const state = c.req.query('state') ?? '';
    const browserState = readCookie(c, loginCookieName(cookies)) ?? '';
    clearCookie(c, loginCookieName(cookies), cookies);
    if (!state || !browserState || !constantTimeEqual(state, browserState)) {
      return html(c, 400, 'Sign-in problem', 'This sign-in was not started in this browser, or it has already finished. Please sign in again.');
    }
    const stateKey = `login-state:${state}`;
    const sealed = await kv.eval<string | null>(TAKE, [stateKey], []);
    const opened = sealed ? await keys.open(sealed, stateKey) : null;
    if (!opened) return html(c, 400, 'Sign-in expired', 'This sign-in has expired or was already used. Please sign in again.');
    const pending = JSON.parse(opened) as PendingLogin;

    const error = c.req.query('error');
    if (error) {
      log.info('sign-in refused by the identity provider', { error });
      return html(c, error === 'access_denied' ? 403 : 400, 'Sign-in not completed', error === 'access_denied' ? 'Sign-in was cancelled or refused.' : 'The identity provider could not sign you in.');
    }
    const code = c.req.query('code');
    if (!code) return html(c, 400, 'Sign-in problem', 'The identity provider sent no authorization code.');

    let tokens;
    try {
      tokens = await oidc.exchangeCode(code, pending.verifier);
    } catch (err) {
      if (err instanceof OidcGrantError) {
        log.warn('code exchange refused', { code: err.code });
        return html(c, 400, 'Sign-in problem', 'This sign-in could not be completed (the code is invalid or was already used). Please sign in again.');
      }
      log.error('identity provider unavailable during sign-in', { err });
      return html(c, 503, 'Sign-in unavailable', 'The identity provider is not reachable right now. Please try again shortly.');
    }
    const revokeQuietly = () => (tokens.refreshToken ? oidc.revoke(tokens.refreshToken).catch(() => {}) : Promise.resolve());
    try {
      if (!tokens.idToken) throw new TokenError('no ID token in the token response');
      const idClaims = await oidc.verifyIdToken(tokens.idToken, pending.nonce);
      if (!hasSecondFactor(idClaims, oidc.settings.mfaAcrValues)) {
        log.warn('sign-in without a second factor refused', { amr: idClaims.amr, acr: idClaims.acr });
        await revokeQuietly();
        return html(c, 403, 'Two-step verification required', 'BionicPRO requires a second factor (a one-time code) to sign in. Set up two-step verification with your administrator and try again.');
      }
      const accessClaims = await oidc.verifyAccessToken(tokens.accessToken);
      if (accessClaims.sub !== idClaims.sub) throw new TokenError('access token and ID token name different users');
      const identity = identityFromClaims(accessClaims);
      // Rotation: whatever session this browser presented (planted or old) is discarded.
      const previous = readCookie(c, sessionCookieName(cookies));
      const previousKey = previous ? await sessions.keyFor(previous) : null;
      if (previousKey) await sessions.delete(previousKey);
      const { id } = await sessions.create(identity, { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken }, tokens.expiresInSeconds, opts.now());
      writeCookie(c, sessionCookieName(cookies), id, cookies);
      // The region (from the verified access token) is kept in the session: it routes the user's personal data.
      log.info('signed in', { userId: identity.userId, roles: identity.roles, region: identity.region ?? null });
      c.header('cache-control', 'no-store');
      return c.redirect(pending.returnTo, 302);
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      log.warn('token verification failed at sign-in', { reason: err.reason });
      await revokeQuietly();
      return html(c, 400, 'Sign-in problem', 'The identity provider\'s answer could not be verified. Please sign in again.');
    }
  });

  app.get('/me', (c) => {
    const s = c.get('session');
    c.header('cache-control', 'no-store');
    if (!s) return c.json({ error: { code: 'UNAUTHORIZED', message: 'Not signed in' } }, 401);
    const { userId, username, roles, region } = s.identity;
    return c.json({ userId, username, roles, region: region ?? null, session: { createdAt: s.record.createdAt, absoluteExpiresAt: s.record.absExp } });
  });

  app.post('/logout', async (c) => {
    const s = c.get('session');
    if (s) {
      const tokens = await sessions.tokens(s);
      if (tokens?.refreshToken) {
        await oidc.revoke(tokens.refreshToken).catch((err: unknown) => c.get('log').warn('refresh token revocation failed', { err }));
      }
      await sessions.delete(s.key);
    }
    clearCookie(c, sessionCookieName(cookies), cookies);
    const to = oidc.endSessionUrl().href;
    c.header('cache-control', 'no-store');
    // Script callers (fetch with the CSRF header) cannot follow a cross-origin redirect; they get the URL.
    if ((c.req.header('accept') ?? '').includes('application/json')) return c.json({ redirectTo: to });
    return c.redirect(to, 303);
  });

  app.get('/logged-out', (c) => c.html(page('Signed out', 'You have been signed out of BionicPRO.', { href: '/auth/login', text: 'Sign in again' })));

  return app;
}

/** Mounted instead of {@link authRoutes} when no identity provider is configured. */
export function disabledAuthRoutes() {
  const app = new Hono<{ Variables: AuthVariables }>();
  app.all('*', (c) => refuse(c, 503, 'Sign-in is not configured on this server (OIDC_ISSUER is not set).'));
  return app;
}
