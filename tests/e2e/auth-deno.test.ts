/**
 * The same sign-in with the edge running under Deno (edge/main.deno.ts, configured only through
 * its environment) against the real provider, LDAP, KV and a worker: login → password → TOTP →
 * callback → /auth/me → a forwarded worker call → logout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/dev/free-port.ts';
import { CookieClient } from '../support/cookie-client.ts';
import { startAuthStack, type AuthStack } from '../support/auth-stack.ts';
import { startDenoEdge, type DenoEdge } from '../support/deno-edge.ts';

let stack: AuthStack;
let deno: DenoEdge | undefined;
let denoUrl: string;

beforeAll(async () => {
  const port = await freePort();
  denoUrl = `http://127.0.0.1:${port}`;
  stack = await startAuthStack({ extraEdgeUrls: [denoUrl] });
  deno = await startDenoEdge({ auth: stack, port, publicUrl: denoUrl, workerUrl: stack.workerUrl });
}, 180_000);

afterAll(async () => {
  await deno?.stop();
  await stack?.stop();
}, 60_000);

describe('sign-in with the edge on Deno', () => {
  it('logs in, reaches a worker with the session, and logs out', async () => {
    const client = new CookieClient();
    const start = await client.follow(`${denoUrl}/auth/login?returnTo=/auth/me`);
    const pwd = await client.submit(start.final, '/password', { username: 'user2', password: 'bionic-demo' });
    const done = await client.submit(pwd.final, '/otp', { code: await stack.totp('user2') });
    expect(done.final.url).toBe(`${denoUrl}/auth/me`);
    expect(JSON.parse(done.final.body)).toMatchObject({ username: 'user2', roles: ['prosthesis_user'] });
    const cookie = client.get('__Host-session')!;
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/' });

    const whoami = await client.request(`${denoUrl}/trpc/worker.whoami`);
    expect(whoami.status).toBe(200);
    expect(whoami.body).toContain('"verifiedBy":"worker"');
    expect(whoami.body).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);

    const csrfless = await client.request(`${denoUrl}/auth/logout`, { method: 'POST' });
    expect(csrfless.status).toBe(403);
    const out = await client.request(`${denoUrl}/auth/logout`, { method: 'POST', headers: { origin: denoUrl, 'x-bionic-csrf': '1' } });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toContain('/protocol/openid-connect/logout?');
    expect((await fetch(`${denoUrl}/auth/me`, { headers: { cookie: `__Host-session=${cookie.value}` } })).status).toBe(401);
  });
});
