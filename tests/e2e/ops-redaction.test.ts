/**
 * Logs never carry credentials: a real sign-in (password + TOTP at the provider, code exchange,
 * sealed session), calls forwarded to the worker with the user's bearer token, a token refresh, a
 * replayed callback (an error path that logs) and a logout — with the edge's, worker's and
 * provider's logs captured at debug level and searched for the actual password, cookie, tokens,
 * authorization code and client secret used in this run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/log.ts';
import { startAuthStack, DEMO_PASSWORD, type AuthStack } from '../support/auth-stack.ts';
import { CookieClient } from '../support/cookie-client.ts';

const lines: string[] = [];
let stack: AuthStack;

beforeAll(async () => {
  stack = await startAuthStack({
    accessTokenTtlSeconds: 60,
    log: createLogger({ level: 'debug', write: (l) => lines.push(l) }),
    idpLog: (msg, fields) => lines.push(`${msg} ${JSON.stringify(fields ?? {})}`),
  });
}, 120_000);
afterAll(async () => { await stack?.stop(); });

describe('log redaction during a real sign-in', () => {
  it('no log line holds the password, session cookie, tokens, code or client secret', async () => {
    const client = new CookieClient();
    const { final, hops } = await stack.login(client, 'user1', { returnTo: '/auth/me' });
    expect(final.status, final.body.slice(0, 300)).toBe(200);
    expect(final.url).toBe(`${stack.edgeUrl}/auth/me`);
    const cookie = client.get('__Host-session')!.value;
    const callback = hops.map((h) => new URL(h.url)).find((u) => u.pathname === '/auth/callback')!;
    const secrets: Record<string, string> = {
      password: DEMO_PASSWORD, cookie, clientSecret: stack.clientSecret,
      code: callback.searchParams.get('code')!, sessionKey: stack.authConfig.sessionKeys[0]!.secret,
    };
    const addTokens = async (tag: string) => {
      const s = await stack.sessionOf(cookie);
      secrets[`${tag}Access`] = s!.tokens!.accessToken;
      secrets[`${tag}Refresh`] = s!.tokens!.refreshToken!;
    };
    await addTokens('first');

    const csrf = { origin: stack.edgeUrl, 'x-bionic-csrf': '1' };
    expect((await client.request(`${stack.edgeUrl}/trpc/worker.whoami`)).status).toBe(200);
    stack.advance(120); // the access token is due (idle timeout not reached): the next call refreshes it at the provider
    expect((await client.request(`${stack.edgeUrl}/trpc/worker.whoami`)).status).toBe(200);
    await addTokens('refreshed');
    expect(secrets.refreshedAccess).not.toBe(secrets.firstAccess);
    // The same code again: the exchange fails and the edge logs why.
    expect((await new CookieClient().request(callback.href)).status).toBeGreaterThanOrEqual(400);
    expect((await client.request(`${stack.edgeUrl}/auth/logout`, { method: 'POST', headers: { ...csrf, accept: 'application/json' } })).status).toBe(200);

    // The capture is real: request lines of the sign-in and of the worker calls are there.
    expect(lines.some((l) => l.includes('"route":"/auth/callback"'))).toBe(true);
    expect(lines.filter((l) => l.includes('"route":"/trpc/*"')).length).toBeGreaterThanOrEqual(4);
    for (const [name, value] of Object.entries(secrets)) {
      expect(value.length, name).toBeGreaterThanOrEqual(8);
      // Whole values, and for JWTs each part (a leak may be a fragment).
      const needles = [value, ...value.split('.').filter((p) => p.length >= 16)];
      for (const needle of needles) expect(lines.filter((l) => l.includes(needle)), name).toEqual([]);
    }
  });
});
