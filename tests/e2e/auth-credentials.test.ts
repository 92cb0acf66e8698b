/**
 * The second factor and the password, against the real provider, LDAP and KV: a user without a
 * second factor cannot finish sign-in; wrong TOTP codes are refused and, repeated, end the sign-in;
 * wrong LDAP passwords are refused and lock the user out after N tries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient } from '../support/cookie-client.ts';
import { DEMO_PASSWORD, startAuthStack, type AuthStack } from '../support/auth-stack.ts';

let stack: AuthStack;
beforeAll(async () => { stack = await startAuthStack({ maxPasswordFailures: 3 }); }, 120_000);
afterAll(async () => { await stack?.stop(); }, 60_000);

const SESSION = '__Host-session';

describe('second factor and credentials', () => {
  it('a user without a second factor cannot finish sign-in, and the tokens are revoked', async () => {
    const client = new CookieClient();
    const revocations = stack.idp.counts().revocations;
    const res = await stack.login(client, 'nomfa1');
    expect(res.final.url.startsWith(`${stack.edgeUrl}/auth/callback`)).toBe(true);
    expect(res.final.status).toBe(403);
    expect(res.final.body).toContain('Two-step verification required');
    expect(client.get(SESSION)).toBeUndefined();
    expect(stack.idp.counts().revocations).toBe(revocations + 1);
  });

  it('a wrong TOTP code is refused; the right one then works; too many wrong codes end the sign-in', async () => {
    const client = new CookieClient();
    const start = await client.follow(`${stack.edgeUrl}/auth/login`);
    const pwd = await client.submit(start.final, '/password', { username: 'user2', password: DEMO_PASSWORD });
    const wrong = await client.submit(pwd.final, '/otp', { code: '000000' });
    expect(wrong.final.status).toBe(401);
    expect(wrong.final.body).toContain('Invalid or already used code');
    const right = await client.submit(wrong.final, '/otp', { code: await stack.totp('user2') });
    expect(right.final.url).toBe(`${stack.edgeUrl}/`); // signed in, on the default return path
    expect(client.get(SESSION)).toBeDefined();

    const other = new CookieClient();
    const s2 = await other.follow(`${stack.edgeUrl}/auth/login`);
    let page = (await other.submit(s2.final, '/password', { username: 'operator1', password: DEMO_PASSWORD })).final;
    for (let i = 0; i < 5 && page.url.includes('/login-actions/'); i++) page = (await other.submit(page, '/otp', { code: '123456' })).final;
    expect(page.url.startsWith(`${stack.edgeUrl}/auth/callback`)).toBe(true);
    expect(page.status).toBe(403);
    expect(other.get(SESSION)).toBeUndefined();
  });

  it('a wrong LDAP password is refused and the account is locked out after N tries', async () => {
    const client = new CookieClient();
    const start = await client.follow(`${stack.edgeUrl}/auth/login`);
    let page = start.final;
    for (let i = 0; i < 3; i++) {
      page = (await client.submit(page, '/password', { username: 'user3', password: 'wrong-password' })).final;
      expect(page.status).toBe(401);
      expect(page.body).toContain('Invalid username or password');
    }
    page = (await client.submit(page, '/password', { username: 'user3', password: DEMO_PASSWORD })).final;
    expect(page.status).toBe(429);
    expect(page.body).toContain('Too many failed sign-in attempts');
    // Unknown users fail exactly like wrong passwords (no user enumeration).
    const unknown = (await client.submit(start.final, '/password', { username: 'nobody', password: 'x' })).final;
    expect(unknown.body).toContain('Invalid username or password');
  });
});
