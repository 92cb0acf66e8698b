/**
 * Workers trust no caller: every request's `Authorization: Bearer` access token is verified
 * against the identity provider's JWKS (signature, issuer, audience = the worker API, expiry)
 * before its `realm_access.roles` become an Identity. A missing or bad token means anonymous, so
 * authed procedures answer UNAUTHORIZED and role procedures FORBIDDEN — never a pass.
 * The token's `region` claim becomes `Identity.region`: the region the caller's personal data
 * lives in (shared/regions `regionOf`), signed by the identity provider, never taken from a header.
 */
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import type { Identity } from '../../router/context.ts';
import type { JwtAuthConfig } from '../../shared/config.ts';
import type { Logger } from '../../shared/log.ts';
import { ClaimsError, identityFromClaims } from '../../edge/auth/claims.ts';
import { TokenError, verifyAccessToken } from '../../edge/auth/tokens.ts';

export interface JwtAuthenticatorOptions extends JwtAuthConfig {
  log?: Logger;
  /** Pinned keys (tests); by default fetched (and cached) from the realm's JWKS URL. */
  jwks?: JWTVerifyGetKey;
}

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/;

/** Returns the `authenticate` hook for createWorkerApp. */
export function createJwtAuthenticator(opts: JwtAuthenticatorOptions): (req: Request) => Promise<Identity | null> {
  const issuer = opts.issuer.replace(/\/+$/, '');
  const jwks = opts.jwks ?? createRemoteJWKSet(new URL(opts.jwksUrl ?? `${issuer}/protocol/openid-connect/certs`), {
    timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000,
  });
  return async function authenticate(req) {
    const header = req.headers.get('authorization');
    if (!header) return null;
    const token = BEARER.exec(header)?.[1];
    if (!token) {
      opts.log?.warn('malformed authorization header');
      return null;
    }
    try {
      return identityFromClaims(await verifyAccessToken(token, { jwks, issuer, audience: opts.audience }));
    } catch (err) {
      if (err instanceof TokenError || err instanceof ClaimsError) {
        opts.log?.warn('bearer token rejected', { reason: err instanceof TokenError ? err.reason : err.message });
        return null;
      }
      throw err; // JWKS unreachable: a server problem, not an anonymous caller
    }
  };
}
