import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createJwtAuthenticator } from './verify-jwt.ts';

const issuer = 'https://sso.example/realms/bionicpro';
const audience = 'bionic-worker-api';
let key: CryptoKey;
let authenticate: ReturnType<typeof createJwtAuthenticator>;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  key = pair.privateKey;
  const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' }] });
  authenticate = createJwtAuthenticator({ issuer, audience, jwks });
});

const token = (o: { aud?: string; iss?: string; exp?: string | number; roles?: unknown; region?: string } = {}) =>
  new SignJWT({ preferred_username: 'operator1', realm_access: { roles: o.roles ?? ['crm_operator', 'offline_access'] }, ...(o.region ? { region: o.region } : {}) })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('u-1').setIssuer(o.iss ?? issuer).setAudience(o.aud ?? audience)
    .setIssuedAt().setExpirationTime(o.exp ?? '5m').sign(key);
const req = (authorization?: string) => new Request('http://worker.test/trpc/x', { headers: authorization ? { authorization } : {} });

describe('worker bearer verification', () => {
  it('maps a valid access token to an identity with its realm roles', async () => {
    expect(await authenticate(req(`Bearer ${await token()}`))).toEqual({ userId: 'u-1', username: 'operator1', roles: ['crm_operator'] });
  });

  it('carries the verified region claim, which routes the user\'s personal data', async () => {
    expect(await authenticate(req(`Bearer ${await token({ region: 'ru' })}`))).toEqual({ userId: 'u-1', username: 'operator1', roles: ['crm_operator'], region: 'ru' });
  });

  it('treats missing, malformed, foreign, expired and mis-addressed tokens as anonymous', async () => {
    const past = Math.floor(Date.now() / 1000) - 600;
    for (const header of [
      undefined, 'Basic dXNlcjpwYXNz', 'Bearer', 'Bearer not-a-jwt', `bearer ${await token()}`,
      `Bearer ${await token({ aud: 'bionic-edge' })}`, `Bearer ${await token({ iss: 'https://evil.example/realms/bionicpro' })}`,
      `Bearer ${await token({ exp: past })}`,
    ]) {
      expect(await authenticate(req(header)), String(header).slice(0, 20)).toBeNull();
    }
  });
});
