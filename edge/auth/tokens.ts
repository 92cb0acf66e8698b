/**
 * Token verification with jose against the provider's JWKS. ID tokens: signature, `iss`, `aud`
 * (this client), `exp`, `nonce`, and `azp` when there are several audiences. Access tokens:
 * signature, `iss`, `aud` (the worker API), `exp`. `alg: none` and symmetric algorithms are never
 * accepted: the allow-list holds only the asymmetric algorithms an IdP signs with.
 */
import { errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

export const SIGNING_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** A token failed verification; `reason` is safe to log (it never contains the token). */
export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(readonly reason: string, options?: { cause?: unknown }) {
    super(`token rejected: ${reason}`, options);
  }
}

export interface VerifyOptions {
  jwks: JWTVerifyGetKey;
  issuer: string;
  /** Tests pin the clock; production uses the real one. */
  currentDate?: Date;
  clockToleranceSeconds?: number;
}

async function verify(token: string, opts: VerifyOptions, audience: string, required: string[]): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, opts.jwks, {
      issuer: opts.issuer,
      audience,
      algorithms: SIGNING_ALGORITHMS,
      requiredClaims: ['exp', 'iat', 'sub', ...required],
      clockTolerance: opts.clockToleranceSeconds ?? 30,
      currentDate: opts.currentDate,
    });
    return payload;
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw new TokenError('expired', { cause: err });
    if (err instanceof joseErrors.JWTClaimValidationFailed) throw new TokenError(`claim ${err.claim} ${err.reason}`, { cause: err });
    if (err instanceof joseErrors.JOSEAlgNotAllowed) throw new TokenError('algorithm not allowed', { cause: err });
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new TokenError('bad signature', { cause: err });
    if (err instanceof joseErrors.JWKSNoMatchingKey) throw new TokenError('unknown signing key', { cause: err });
    if (err instanceof joseErrors.JOSEError) throw new TokenError(err.code, { cause: err });
    throw err; // network trouble fetching the JWKS is not the token's fault
  }
}

/** Verifies an ID token issued to `clientId` for the login that used `nonce`. */
export async function verifyIdToken(idToken: string, opts: VerifyOptions & { clientId: string; nonce: string }): Promise<JWTPayload> {
  const payload = await verify(idToken, opts, opts.clientId, ['nonce']);
  if (!constantTimeEqual(String(payload.nonce), opts.nonce)) throw new TokenError('nonce mismatch');
  if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== opts.clientId) {
    throw new TokenError('azp does not name this client');
  }
  return payload;
}

/** Verifies an access token meant for `audience` (the worker API). */
export function verifyAccessToken(token: string, opts: VerifyOptions & { audience: string }): Promise<JWTPayload> {
  return verify(token, opts, opts.audience, []);
}

/** Compares two strings without revealing where they first differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}
