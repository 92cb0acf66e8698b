/**
 * Sliding-window rate limits on the real KV: per client address on the sign-in routes, per session
 * on the API, with X-RateLimit-* headers and 429 + Retry-After once a window is used up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient } from '../support/cookie-client.ts';
import { startAuthStack, type AuthStack } from '../support/auth-stack.ts';

const LOGIN_LIMIT = 6;
const API_LIMIT = 8;
// Hour-long windows: a sliding window reweighs its counts when the test crosses a window boundary,
// which a one-minute window makes likely on a slow machine.
let stack: AuthStack;
beforeAll(async () => {
  stack = await startAuthStack({ rateLimits: { login: { limit: LOGIN_LIMIT, windowSeconds: 3600 }, api: { limit: API_LIMIT, windowSeconds: 3600 } } });
}, 120_000);
afterAll(async () => { await stack?.stop(); }, 60_000);

const SESSION = '__Host-session';

describe('rate limits', () => {
  it('limits API calls per session, not per address, with headers and a tRPC TOO_MANY_REQUESTS', async () => {
    const a = new CookieClient();
    await stack.login(a, 'user1'); // 2 sign-in requests (login, callback) from this address
    const b = new CookieClient();
    await stack.login(b, 'user2'); // 2 more
    const me = (c: CookieClient) => c.request(`${stack.edgeUrl}/auth/me`);
    const first = await me(a);
    expect(first.headers.get('x-ratelimit-limit')).toBe(String(API_LIMIT));
    // The sign-in's last redirect (to /) was this session's first API request.
    const left = Number(first.headers.get('x-ratelimit-remaining'));
    expect(left).toBe(API_LIMIT - 2);
    expect(Number(first.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    for (let i = left; i > 0; i--) {
      const res = await me(a);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-remaining')).toBe(String(i - 1));
    }
    const limited = await me(a);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    const trpc = await a.request(`${stack.edgeUrl}/trpc/me.get`);
    expect(trpc.status).toBe(429);
    expect(trpc.body).toContain('TOO_MANY_REQUESTS');
    // Another session from the same address is unaffected.
    expect((await me(b)).status).toBe(200);
    expect(a.get(SESSION)).toBeDefined(); // being limited does not sign anyone out
  });

  it('limits sign-in attempts per client address (fail closed) with Retry-After', async () => {
    const c = new CookieClient();
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < LOGIN_LIMIT; i++) {
      last = await c.request(`${stack.edgeUrl}/auth/login`);
      statuses.push(last.status);
    }
    // The first test spent 4 of this address's sign-in requests.
    expect(statuses.filter((s) => s === 302)).toHaveLength(LOGIN_LIMIT - 4);
    expect(last!.status).toBe(429);
    expect(last!.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(last!.headers.get('content-type')).toContain('text/html');
    expect(last!.body).toContain('Too many');
    const callback = await c.request(`${stack.edgeUrl}/auth/callback?code=x&state=y`);
    expect(callback.status).toBe(429);
  });
});
