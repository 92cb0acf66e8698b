/**
 * The edge's OpenID Connect client for a Keycloak realm: arctic's `KeyCloak` for the
 * authorization URL (always S256 PKCE), code exchange, refresh and revocation; jose for token
 * verification against the realm's JWKS; Keycloak's end-session URL for logout.
 */
import { ArcticFetchError, KeyCloak, OAuth2RequestError, type OAuth2Tokens } from 'arctic';
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { verifyAccessToken, verifyIdToken } from './tokens.ts';

export interface OidcSettings {
  /** Realm URL, e.g. `https://sso.example/realms/bionicpro` (also the `iss` of its tokens). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** `aud` of access tokens meant for the worker API. */
  audience: string;
  redirectUri: string;
  postLogoutRedirectUri: string;
  /** Defaults to Keycloak's `<issuer>/protocol/openid-connect/certs`. */
  jwksUrl?: string;
  /** `acr` values that prove a second factor; the first is requested at login (`acr_values`). */
  mfaAcrValues: string[];
  scopes?: string[];
  /** Upper bound for one call to the provider. */
  timeoutMs?: number;
}

export interface TokenSet { accessToken: string; refreshToken: string | null; idToken: string | null; expiresInSeconds: number }

/** The provider says the grant is no good (invalid_grant, …): the login or session is over. */
export class OidcGrantError extends Error {
  override readonly name = 'OidcGrantError';
  constructor(readonly code: string, options?: { cause?: unknown }) { super(`identity provider refused the grant: ${code}`, options); }
}
/** The provider could not be reached or answered nonsense: try again later. */
export class OidcUnavailableError extends Error {
  override readonly name = 'OidcUnavailableError';
}

export interface OidcClient {
  readonly settings: OidcSettings;
  authorizationUrl(state: string, codeVerifier: string, nonce: string): URL;
  exchangeCode(code: string, codeVerifier: string): Promise<TokenSet>;
  refresh(refreshToken: string): Promise<TokenSet>;
  revoke(refreshToken: string): Promise<void>;
  verifyIdToken(idToken: string, nonce: string): Promise<JWTPayload>;
  verifyAccessToken(accessToken: string): Promise<JWTPayload>;
  /** RP-initiated logout by `client_id` (no ID token in the browser's URL bar). */
  endSessionUrl(): URL;
}

export function createOidcClient(settings: OidcSettings, opts: { jwks?: JWTVerifyGetKey } = {}): OidcClient {
  const issuer = settings.issuer.replace(/\/+$/, '');
  const kc = new KeyCloak(issuer, settings.clientId, settings.clientSecret, settings.redirectUri);
  const jwks = opts.jwks ?? createRemoteJWKSet(new URL(settings.jwksUrl ?? `${issuer}/protocol/openid-connect/certs`), {
    timeoutDuration: settings.timeoutMs ?? 10_000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000,
  });
  const scopes = settings.scopes ?? ['openid', 'profile', 'email'];
  const timeoutMs = settings.timeoutMs ?? 10_000;

  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new OidcUnavailableError(`${what}: no answer in ${timeoutMs} ms`)), timeoutMs); }),
      ]);
    } catch (err) {
      if (err instanceof OAuth2RequestError) throw new OidcGrantError(err.code, { cause: err });
      if (err instanceof OidcUnavailableError) throw err;
      throw new OidcUnavailableError(`${what} failed: ${err instanceof ArcticFetchError ? 'provider unreachable' : (err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  const toSet = (t: OAuth2Tokens): TokenSet => {
    const data = t.data as Record<string, unknown>;
    return {
      accessToken: t.accessToken(),
      refreshToken: typeof data.refresh_token === 'string' ? data.refresh_token : null,
      idToken: typeof data.id_token === 'string' ? data.id_token : null,
      expiresInSeconds: typeof data.expires_in === 'number' ? data.expires_in : 300,
    };
  };

  return {
    settings,
    authorizationUrl(state, codeVerifier, nonce) {
      const url = kc.createAuthorizationURL(state, codeVerifier, scopes);
      url.searchParams.set('nonce', nonce);
      if (settings.mfaAcrValues[0]) url.searchParams.set('acr_values', settings.mfaAcrValues[0]);
      return url;
    },
    exchangeCode: (code, verifier) => call('code exchange', async () => toSet(await kc.validateAuthorizationCode(code, verifier))),
    refresh: (rt) => call('token refresh', async () => toSet(await kc.refreshAccessToken(rt))),
    revoke: (rt) => call('token revocation', () => kc.revokeToken(rt)),
    verifyIdToken: (idToken, nonce) => verifyIdToken(idToken, { jwks, issuer, clientId: settings.clientId, nonce }),
    verifyAccessToken: (at) => verifyAccessToken(at, { jwks, issuer, audience: settings.audience }),
    endSessionUrl() {
      const url = new URL(`${issuer}/protocol/openid-connect/logout`);
      url.searchParams.set('client_id', settings.clientId);
      url.searchParams.set('post_logout_redirect_uri', settings.postLogoutRedirectUri);
      return url;
    },
  };
}
