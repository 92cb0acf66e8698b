/**
 * Token refresh under concurrency, against the real provider and KV: 20 parallel requests at the
 * moment the access token expires — spread over 20 edge instances that share only KV — cause
 * exactly one refresh at the provider, and every one of them succeeds with the new token.
 */
import { KeyCloak } from 'arctic';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { CookieClient } from '../support/cookie-client.ts';
import { CLIENT_ID, startAuthStack, type AuthStack } from '../support/auth-stack.ts';

let stack: AuthStack;
beforeAll(async () => { stack = await startAuthStack(); }, 120_000);
afterAll(async () => { await stack?.stop(); }, 60_000);

const SESSION = '__Host-session';
const sso = new CookieClient();

async function signedIn(): Promise<string> {
  // The provider remembers `sso` after the first round, so later sign-ins need no new TOTP code.
  const res = await sso.follow(`${stack.edgeUrl}/auth/login`);
  if (res.final.body.includes('name="password"')) await stack.login(sso, 'user1');
  return sso.get(SESSION)!.value;
}
const whoami = (app: ReturnType<AuthStack['edgeInstance']>, cookie: string) =>
  app.request(`${stack.edgeUrl}/trpc/worker.whoami`, { headers: { cookie: `${SESSION}=${cookie}` } });
async function expireAccessToken(cookie: string) {
  const s = (await stack.sessionOf(cookie))!;
  stack.advance(s.record.accessExp - stack.now() + 1);
  return s;
}

describe('refresh at access-token expiry', () => {
  it('20 parallel requests over 20 edge instances: exactly one refresh, no failures', async () => {
    const cookie = await signedIn();
    const before = await expireAccessToken(cookie);
    const refreshes = stack.idp.counts().refresh_token;
    const instances = Array.from({ length: 20 }, () => stack.edgeInstance());
    const responses = await Promise.all(instances.map((app) => whoami(app, cookie)));
    const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ result?: { data?: { json?: { username?: string } } } }>));
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(bodies.every((b) => b.result?.data?.json?.username === 'user1')).toBe(true);
    expect(stack.idp.counts().refresh_token - refreshes).toBe(1);
    const after = (await stack.sessionOf(cookie))!;
    expect(after.record.rev).toBe(before.record.rev + 1);
    expect(after.tokens!.accessToken).not.toBe(before.tokens!.accessToken);
  });

  it('20 parallel requests on one instance share one refresh too', async () => {
    const cookie = await signedIn();
    await expireAccessToken(cookie);
    const refreshes = stack.idp.counts().refresh_token;
    const responses = await Promise.all(Array.from({ length: 20 }, () => whoami(stack.edge, cookie)));
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(stack.idp.counts().refresh_token - refreshes).toBe(1);
  });

  it('a refresh token revoked at the provider ends the session', async () => {
    const cookie = await signedIn();
    const s = await expireAccessToken(cookie);
    const kc = new KeyCloak(stack.idp.issuer, CLIENT_ID, stack.clientSecret, `${stack.edgeUrl}/auth/callback`);
    await kc.revokeToken(s.tokens!.refreshToken!);
    const res = await whoami(stack.edge, cookie);
    expect(res.status).toBe(401);
    expect(await stack.sessionOf(cookie)).toBeNull();
  });

  it('when the provider is unreachable, the session survives and worker calls say SERVICE_UNAVAILABLE', async () => {
    const cookie = await signedIn();
    await expireAccessToken(cookie);
    const cut = stack.edgeInstance({ auth: { ...stack.authConfig, issuer: 'http://127.0.0.1:9/realms/bionicpro' } });
    const res = await whoami(cut, cookie);
    expect(res.status).toBe(503);
    expect(JSON.stringify(await res.json())).toContain('SERVICE_UNAVAILABLE');
    expect((await cut.request(`${stack.edgeUrl}/auth/me`, { headers: { cookie: `${SESSION}=${cookie}` } })).status).toBe(200);
    expect((await whoami(stack.edge, cookie)).status).toBe(200); // the provider is back: refreshed
  });
});

describe('rate limits and an unreachable KV', () => {
  it('KV down: sign-in fails closed with 503, public API calls are still served', async () => {
    const deadKv = createUpstashKv({ url: 'http://127.0.0.1:9', token: 'x'.repeat(24) });
    const app = stack.edgeInstance({ kv: deadKv });
    const login = await app.request(`${stack.edgeUrl}/auth/login`);
    expect(login.status).toBe(503);
    expect(login.headers.get('retry-after')).toBeTruthy();
    const pub = await app.request(`${stack.edgeUrl}/trpc/health.check`);
    expect(pub.status).toBe(200);
    expect(pub.headers.get('x-ratelimit-limit')).toBeNull();
    const withCookie = await app.request(`${stack.edgeUrl}/auth/me`, { headers: { cookie: `${SESSION}=${'A'.repeat(43)}` } });
    expect(withCookie.status).toBe(503);
  });
});
