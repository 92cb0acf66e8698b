/**
 * Sign-in end to end against the real development identity provider, LDAP (slapd) and KV
 * (redis-server behind the Upstash gateway), driven by a cookie-carrying fetch client through the
 * provider's real pages: login → LDAP password → TOTP → callback → /auth/me, then refresh after
 * expiry, then logout (and the refresh token no longer works at the provider).
 */
import { KeyCloak } from 'arctic';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBionicClient } from '../../router/client.ts';
import { CookieClient } from '../support/cookie-client.ts';
import { CLIENT_ID, startAuthStack, type AuthStack } from '../support/auth-stack.ts';

let stack: AuthStack;
beforeAll(async () => { stack = await startAuthStack(); }, 120_000);
afterAll(async () => { await stack?.stop(); }, 60_000);

const SESSION = '__Host-session';
/** A typed tRPC client that carries the cookie jar's session, as a browser page would. */
const trpcFor = (client: CookieClient) => createBionicClient({
  url: `${stack.edgeUrl}/trpc`,
  headers: () => ({ cookie: `${SESSION}=${client.get(SESSION)?.value ?? ''}`, origin: stack.edgeUrl }),
});
const me = (client: CookieClient) => client.request(`${stack.edgeUrl}/auth/me`);

describe('sign-in through the development identity provider', () => {
  it('logs in with LDAP password + TOTP and lands on returnTo with a session cookie', async () => {
    const client = new CookieClient();
    const { final, hops } = await stack.login(client, 'user1', { returnTo: '/auth/me' });
    expect(final.status).toBe(200);
    expect(final.url).toBe(`${stack.edgeUrl}/auth/me`);
    expect(JSON.parse(final.body)).toMatchObject({ username: 'user1', roles: ['prosthesis_user'], region: 'eu' });
    // The callback set the cookie; the IdP saw the LDAP password page and the TOTP page.
    expect(hops.some((h) => h.url.startsWith(`${stack.edgeUrl}/auth/callback?`) && h.status === 302)).toBe(true);
    const cookie = client.get(SESSION)!;
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/', expiresAt: null });
    expect(cookie.raw).not.toMatch(/domain=/i);
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('enrols TOTP on first sign-in (otpauth:// URI and QR code), then asks for codes', async () => {
    const client = new CookieClient();
    expect(stack.idp.totpSecret('user3')).toBeNull();
    const start = await client.follow(`${stack.edgeUrl}/auth/login?returnTo=/auth/me`);
    const enrol = await client.submit(start.final, '/password', { username: 'user3', password: 'bionic-demo' });
    expect(enrol.final.body).toContain('Set up two-step verification');
    expect(enrol.final.body).toMatch(/<svg[\s\S]*<\/svg>/);
    const uri = /href="(otpauth:\/\/totp\/[^"]+)"/.exec(enrol.final.body)![1]!.replace(/&#38;/g, '&');
    const secret = new URL(uri).searchParams.get('secret')!;
    expect(new URL(uri).searchParams.get('issuer')).toBe('BionicPRO');
    const totp = new TOTP({ secret: Secret.fromBase32(secret) });
    const wrong = await client.submit(enrol.final, '/enrol', { code: String((Number(totp.generate()) + 1) % 1_000_000).padStart(6, '0') });
    expect(wrong.final.status).toBe(401);
    const done = await client.submit(wrong.final, '/enrol', { code: totp.generate() });
    expect(done.final.url).toBe(`${stack.edgeUrl}/auth/me`);
    expect(JSON.parse(done.final.body)).toMatchObject({ username: 'user3' });
    expect(stack.idp.totpSecret('user3')).toBe(secret);

    const again = new CookieClient();
    const s2 = await again.follow(`${stack.edgeUrl}/auth/login`);
    const otp = await again.submit(s2.final, '/password', { username: 'user3', password: 'bionic-demo' });
    expect(otp.final.body).toContain('Two-step verification');
    expect(otp.final.body).not.toContain('otpauth://');
  });

  it('serves tRPC with the session identity and forwards worker calls with a bearer token the worker verifies', async () => {
    const client = new CookieClient();
    await stack.login(client, 'operator1');
    const trpc = trpcFor(client);
    await expect(trpc.me.get.query()).resolves.toMatchObject({ username: 'operator1', roles: ['crm_operator'] });
    await expect(trpc.worker.whoami.query()).resolves.toMatchObject({ username: 'operator1', roles: ['crm_operator'], verifiedBy: 'worker' });
  });

  it('a role procedure answers FORBIDDEN to a user without the role and serves one with it', async () => {
    const user = new CookieClient();
    await stack.login(user, 'user2');
    const err = await trpcFor(user).worker.diagnostics.query().catch((e) => e);
    expect(err.data?.code).toBe('FORBIDDEN');
    expect(err.data?.httpStatus).toBe(403);
    const admin = new CookieClient();
    await stack.login(admin, 'admin1');
    await expect(trpcFor(admin).worker.diagnostics.query()).resolves.toMatchObject({ host: 'worker', status: 'ok' });
  });

  it('refreshes an expired access token transparently (one refresh at the provider)', async () => {
    const client = new CookieClient();
    await stack.login(client, 'analyst1');
    const before = await stack.sessionOf(client.get(SESSION)!.value);
    const refreshes = stack.idp.counts().refresh_token;
    stack.advance(before!.record.accessExp - stack.now() + 1); // just past the access token's lifetime
    const res = await me(client);
    expect(res.status).toBe(200);
    await expect(trpcFor(client).worker.whoami.query()).resolves.toMatchObject({ username: 'analyst1' });
    expect(stack.idp.counts().refresh_token).toBe(refreshes + 1);
    const after = await stack.sessionOf(client.get(SESSION)!.value);
    expect(after!.record.rev).toBe(before!.record.rev + 1);
    expect(after!.tokens!.accessToken).not.toBe(before!.tokens!.accessToken);
    expect(after!.tokens!.refreshToken).not.toBe(before!.tokens!.refreshToken); // rotated by the provider
  });

  it('logs out: revokes the refresh token, deletes the session, redirects through end-session', async () => {
    const client = new CookieClient();
    await stack.login(client, 'user1');
    const cookie = client.get(SESSION)!.value;
    const { tokens } = (await stack.sessionOf(cookie))!;
    const revocations = stack.idp.counts().revocations;

    const res = await client.request(`${stack.edgeUrl}/auth/logout`, { method: 'POST', headers: { origin: stack.edgeUrl, 'x-bionic-csrf': '1' } });
    expect(res.status).toBe(303);
    const to = new URL(res.headers.get('location')!);
    expect(to.href.startsWith(`${stack.idp.issuer}/protocol/openid-connect/logout?`)).toBe(true);
    expect(to.searchParams.get('client_id')).toBe(CLIENT_ID);
    expect(to.searchParams.get('post_logout_redirect_uri')).toBe(`${stack.edgeUrl}/auth/logged-out`);
    expect(client.get(SESSION)).toBeUndefined(); // the browser was told to drop it
    expect(stack.idp.counts().revocations).toBe(revocations + 1);
    expect(await stack.sessionOf(cookie)).toBeNull();
    expect((await client.request(`${stack.edgeUrl}/auth/me`, { headers: { cookie: `${SESSION}=${cookie}` } })).status).toBe(401);

    // The provider no longer honours the refresh token.
    const kc = new KeyCloak(stack.idp.issuer, CLIENT_ID, stack.clientSecret, `${stack.edgeUrl}/auth/callback`);
    await expect(kc.refreshAccessToken(tokens!.refreshToken!)).rejects.toMatchObject({ code: 'invalid_grant' });

    // End-session at the provider: confirm, then back to the edge's signed-out page.
    const confirm = await client.follow(to);
    const out = await client.submit(confirm.final, '/logout', { logout: 'yes' });
    expect(out.final.url).toBe(`${stack.edgeUrl}/auth/logged-out`);
    expect(out.final.body).toContain('signed out');
  });

  it('a fresh login after logout asks for the password again (the provider session ended)', async () => {
    const client = new CookieClient();
    await stack.login(client, 'user2');
    const res = await client.request(`${stack.edgeUrl}/auth/logout`, { method: 'POST', headers: { origin: stack.edgeUrl, 'x-bionic-csrf': '1', accept: 'application/json' } });
    expect(res.status).toBe(200);
    const { redirectTo } = JSON.parse(res.body) as { redirectTo: string };
    const confirm = await client.follow(redirectTo);
    await client.submit(confirm.final, '/logout', { logout: 'yes' });
    const again = await client.follow(`${stack.edgeUrl}/auth/login`);
    expect(again.final.body).toContain('name="password"');
  });
});
