/**
 * ID and access token verification with tokens made by jose: only a correctly signed token for
 * this client, from this issuer, for this login (nonce), unexpired, with an asymmetric algorithm
 * passes. Everything else is a TokenError that names the reason.
 */
import { base64url, createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenError, verifyAccessToken, verifyIdToken } from './tokens.ts';

const issuer = 'https://sso.example/realms/bionicpro';
const clientId = 'bionic-edge';
const nonce = 'n0nce-value';
let key: CryptoKey;
let other: CryptoKey;
let jwks: ReturnType<typeof createLocalJWKSet>;
let publicJwk: JWK;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  key = pair.privateKey;
  ({ privateKey: other } = await generateKeyPair('RS256'));
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  jwks = createLocalJWKSet({ keys: [publicJwk] });
});

function idToken(claims: Record<string, unknown> = {}, opts: { key?: CryptoKey; kid?: string; alg?: string; exp?: number | string } = {}) {
  const jwt = new SignJWT({ nonce, amr: ['pwd', 'otp'], ...claims })
    .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: opts.kid ?? 'k1' })
    .setIssuer(String(claims.iss ?? issuer)).setAudience((claims.aud as string) ?? clientId).setSubject('user-1')
    .setIssuedAt().setExpirationTime(opts.exp ?? '5m');
  return jwt.sign(opts.key ?? key);
}

const reason = async (p: Promise<unknown>) => {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(TokenError);
  return (err as TokenError).reason;
};
const verifyId = (t: string, n = nonce) => verifyIdToken(t, { jwks, issuer, clientId, nonce: n });

describe('ID token verification', () => {
  it('accepts a valid token and returns its claims', async () => {
    const claims = await verifyId(await idToken());
    expect(claims).toMatchObject({ sub: 'user-1', nonce, amr: ['pwd', 'otp'] });
  });

  it('rejects the wrong audience, issuer and nonce', async () => {
    expect(await reason(verifyId(await idToken({ aud: 'someone-else' })))).toMatch(/aud/);
    expect(await reason(verifyId(await idToken({ iss: 'https://evil.example/realms/bionicpro' })))).toMatch(/iss/);
    expect(await reason(verifyId(await idToken(), 'another-nonce'))).toBe('nonce mismatch');
    expect(await reason(verifyId(await idToken({ nonce: undefined })))).toMatch(/nonce/);
  });

  it('rejects an expired token', async () => {
    const past = Math.floor(Date.now() / 1000) - 3600;
    expect(await reason(verifyId(await idToken({ iat: past - 300 }, { exp: past })))).toBe('expired');
  });

  it('rejects alg "none", a symmetric algorithm and a foreign signature', async () => {
    const payload = { iss: issuer, aud: clientId, sub: 'user-1', nonce, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300 };
    const enc = (o: object) => base64url.encode(JSON.stringify(o));
    const unsigned = `${enc({ alg: 'none', typ: 'JWT' })}.${enc(payload)}.`;
    expect(await reason(verifyId(unsigned))).toBe('algorithm not allowed');
    // HS256 keyed with the public key's bytes — the classic algorithm-confusion forgery.
    const hmacKey = new TextEncoder().encode(JSON.stringify(publicJwk));
    const confused = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(hmacKey);
    expect(await reason(verifyId(confused))).toBe('algorithm not allowed');
    expect(await reason(verifyId(await idToken({}, { key: other })))).toBe('bad signature');
    expect(await reason(verifyId(await idToken({}, { key: other, kid: 'unknown' })))).toBe('unknown signing key');
  });

  it('with several audiences, requires azp to name this client', async () => {
    const multi = await idToken({ aud: [clientId, 'other-api'] as unknown as string });
    expect(await reason(verifyId(multi))).toBe('azp does not name this client');
    await expect(verifyId(await idToken({ aud: [clientId, 'other-api'] as unknown as string, azp: clientId }))).resolves.toBeTruthy();
  });
});

describe('access token verification', () => {
  const at = (aud: string, opts?: { exp?: number | string }) => new SignJWT({ realm_access: { roles: ['admin'] } })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(issuer).setAudience(aud).setSubject('user-1')
    .setIssuedAt().setExpirationTime(opts?.exp ?? '5m').sign(key);

  it('checks the audience is the worker API', async () => {
    await expect(verifyAccessToken(await at('bionic-worker-api'), { jwks, issuer, audience: 'bionic-worker-api' })).resolves.toMatchObject({ sub: 'user-1' });
    expect(await reason(verifyAccessToken(await at(clientId), { jwks, issuer, audience: 'bionic-worker-api' }))).toMatch(/aud/);
  });

  it('honours a pinned clock (expiry is judged at currentDate)', async () => {
    const token = await at('api', { exp: '5m' });
    expect(await reason(verifyAccessToken(token, { jwks, issuer, audience: 'api', currentDate: new Date(Date.now() + 3600_000) }))).toBe('expired');
  });
});
