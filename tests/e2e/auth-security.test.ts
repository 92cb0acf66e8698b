/**
 * Attacks on the sign-in, against the real provider, LDAP and KV: token leaks (every response of a
 * whole session is scanned), session fixation, forged / tampered / expired cookies, state and code
 * replay, login CSRF, open redirects, CSRF on logout. (Second factor and passwords: auth-credentials.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SESSION_CACHE_SECONDS } from '../../edge/auth/session-store.ts';
import { CookieClient, type Seen } from '../support/cookie-client.ts';
import { DEMO_PASSWORD, startAuthStack, type AuthStack } from '../support/auth-stack.ts';

let stack: AuthStack;
beforeAll(async () => { stack = await startAuthStack(); }, 120_000);
afterAll(async () => { await stack?.stop(); }, 60_000);

const SESSION = '__Host-session';
/** A browser that stays signed in at the provider, so repeated sign-ins need no new TOTP code. */
const sso = new CookieClient();
const csrf = () => ({ origin: stack.edgeUrl, 'x-bionic-csrf': '1' });
const meWith = (cookie: string) => fetch(`${stack.edgeUrl}/auth/me`, { headers: { cookie: `${SESSION}=${cookie}` } });
const whoamiWith = (cookie: string) => fetch(`${stack.edgeUrl}/trpc/worker.whoami`, { headers: { cookie: `${SESSION}=${cookie}` } });
const isCallback = (u: URL) => u.href.startsWith(`${stack.edgeUrl}/auth/callback`);

/**
 * Runs the provider part of a sign-in and stops before the edge's callback is called. A client
 * already signed in at the provider goes straight through (single sign-on), as a browser would.
 */
async function toCallback(client: CookieClient, username: string, returnTo?: string): Promise<URL> {
  const start = await client.follow(`${stack.edgeUrl}/auth/login${returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(returnTo)}`}`, {}, { stopAt: isCallback });
  if (start.stoppedAt) return start.stoppedAt;
  const pwd = await client.submit(start.final, '/password', { username, password: DEMO_PASSWORD });
  const done = await client.submit(pwd.final, '/otp', { code: await stack.totp(username) }, { stopAt: isCallback });
  if (!done.stoppedAt) throw new Error(`sign-in did not reach the callback: ${done.final.status} ${done.final.body.slice(0, 200)}`);
  return done.stoppedAt;
}

function scan(seen: Seen[], secrets: string[]) {
  const leaks: string[] = [];
  for (const s of seen) {
    const text = `${[...s.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${s.body}`;
    if (/eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\./.test(text)) leaks.push(`JWT in ${s.method} ${s.url}`);
    for (const secret of secrets) if (text.includes(secret)) leaks.push(`token in ${s.method} ${s.url}`);
    if (/access_token|refresh_token|id_token/.test(text)) leaks.push(`token field in ${s.method} ${s.url}`);
  }
  return leaks;
}

describe('tokens never reach the browser', () => {
  it('no response header or body of a whole session contains a token', async () => {
    const client = new CookieClient();
    await stack.login(client, 'user1', { returnTo: '/auth/me' });
    const cookie = client.get(SESSION)!.value;
    const session = (await stack.sessionOf(cookie))!;
    const first = session.tokens!;
    await client.request(`${stack.edgeUrl}/trpc/me.get`);
    await client.request(`${stack.edgeUrl}/trpc/worker.whoami`);
    stack.advance(session.record.accessExp - stack.now() + 1);
    await client.request(`${stack.edgeUrl}/trpc/worker.whoami`); // refreshes
    const second = (await stack.sessionOf(cookie))!.tokens!;
    expect(second.accessToken).not.toBe(first.accessToken);
    await client.request(`${stack.edgeUrl}/auth/logout`, { method: 'POST', headers: csrf() });
    const secrets = [first.accessToken, first.refreshToken!, second.accessToken, second.refreshToken!];
    expect(client.seen.length).toBeGreaterThan(8);
    expect(scan(client.seen, secrets)).toEqual([]);
    // The scanner itself can fail: a response carrying a token is caught.
    expect(scan([{ url: 'x', method: 'GET', status: 200, headers: new Headers(), body: `{"t":"${first.accessToken}"}` }], secrets)).not.toEqual([]);
  });
});

describe('session cookies', () => {
  it('rotates on login: a planted session id is replaced and destroyed (no fixation)', async () => {
    const attacker = new CookieClient();
    await stack.login(attacker, 'user2');
    const planted = attacker.get(SESSION)!.value;
    const victim = new CookieClient();
    victim.set('127.0.0.1', SESSION, planted);
    await stack.login(victim, 'analyst1');
    const issued = victim.get(SESSION)!.value;
    expect(issued).not.toBe(planted);
    expect((await meWith(issued)).status).toBe(200);
    expect((await meWith(planted)).status).toBe(401); // the planted session is gone
  });

  it('treats forged, tampered, malformed and unknown cookies as "not signed in"', async () => {
    const client = new CookieClient();
    await stack.login(client, 'operator1');
    const good = client.get(SESSION)!.value;
    const tampered = good.slice(0, 10) + (good[10] === 'A' ? 'B' : 'A') + good.slice(11);
    for (const bad of [tampered, 'A'.repeat(43), good + 'x', good.slice(1), 'not a session', '', '../../etc/passwd', `${good}%00`]) {
      const res = await meWith(bad);
      expect(res.status, bad).toBe(401);
      expect(res.headers.get('set-cookie')).toBeNull();
      const trpc = await whoamiWith(bad);
      expect(trpc.status, bad).toBe(401);
    }
    expect((await meWith(good)).status).toBe(200);
  });

  it('a session whose sealed tokens were tampered with in KV sends no bearer token to the workers', async () => {
    const client = new CookieClient();
    await stack.login(client, 'analyst1');
    const s = (await stack.sessionOf(client.get(SESSION)!.value))!;
    const parts = s.record.tokens.split('.');
    parts[3] = parts[3]!.slice(0, -4) + (parts[3]!.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    await stack.kv.set(s.key, JSON.stringify({ ...s.record, tokens: parts.join('.') }));
    stack.advance(DEFAULT_SESSION_CACHE_SECONDS); // the edge that signed the user in reuses the session it read
    const res = await whoamiWith(client.get(SESSION)!.value);
    expect(res.status).toBe(401);
  });

  it('expires after the idle timeout and after the absolute timeout despite activity', async () => {
    const idle = new CookieClient();
    await stack.login(idle, 'user2');
    const idleCookie = idle.get(SESSION)!.value;
    stack.advance(stack.authConfig.idleSeconds + 1);
    expect((await meWith(idleCookie)).status).toBe(401);
    expect(await stack.sessionOf(idleCookie)).toBeNull(); // deleted, not just refused

    const busy = new CookieClient();
    await stack.login(busy, 'admin1');
    const busyCookie = busy.get(SESSION)!.value;
    const step = Math.floor(stack.authConfig.idleSeconds / 2);
    for (let t = 0; t + step < stack.authConfig.absoluteSeconds; t += step) {
      stack.advance(step);
      expect((await meWith(busyCookie)).status, `after ${t + step} s`).toBe(200);
    }
    stack.advance(step);
    expect((await meWith(busyCookie)).status).toBe(401);
  });
});

describe('the authorization code flow', () => {
  it('refuses a replayed state (the callback works once)', async () => {
    const client = sso;
    const callback = await toCallback(client, 'user1');
    const login = client.get('__Host-login')!.value;
    expect((await client.request(callback)).status).toBe(302);
    client.set('127.0.0.1', '__Host-login', login); // even with the binding cookie restored
    const replay = await client.request(callback);
    expect(replay.status).toBe(400);
    expect(replay.body).toMatch(/expired or was already used/);
  });

  it('refuses a replayed authorization code under a new state', async () => {
    const client = sso;
    const first = await toCallback(client, 'user1');
    expect((await client.request(first)).status).toBe(302);
    const start = await client.request(`${stack.edgeUrl}/auth/login`);
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    const replay = await client.request(`${stack.edgeUrl}/auth/callback?code=${first.searchParams.get('code')}&state=${state}`);
    expect(replay.status).toBe(400);
    expect(replay.body).toMatch(/invalid or was already used/);
  });

  it('refuses a callback started in another browser (login CSRF)', async () => {
    const callback = await toCallback(sso, 'user1');
    const victim = new CookieClient();
    const res = await victim.request(callback);
    expect(res.status).toBe(400);
    expect(victim.get(SESSION)).toBeUndefined();
  });

  it('never redirects off-site after sign-in (open redirect attempts land on /)', async () => {
    const client = new CookieClient(); // signed in at the provider after the first round
    for (const evil of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', '/\t/evil.example']) {
      const callback = await toCallback(client, 'admin1', evil);
      const res = await client.request(callback);
      expect(res.status).toBe(302);
      expect(res.headers.get('location'), evil).toBe('/');
    }
  });
});

describe('CSRF', () => {
  it('logout needs a same-origin Origin and the custom header', async () => {
    const client = new CookieClient();
    await stack.login(client, 'user1');
    const cookie = client.get(SESSION)!.value;
    for (const headers of [{}, { origin: stack.edgeUrl }, { 'x-bionic-csrf': '1' }, { origin: 'https://evil.example', 'x-bionic-csrf': '1' }] as Record<string, string>[]) {
      const res = await client.request(`${stack.edgeUrl}/auth/logout`, { method: 'POST', headers });
      expect(res.status, JSON.stringify(headers)).toBe(403);
    }
    expect((await meWith(cookie)).status).toBe(200); // still signed in
    expect((await client.request(`${stack.edgeUrl}/auth/logout`, { method: 'POST', headers: csrf() })).status).toBe(303);
    expect((await meWith(cookie)).status).toBe(401);
  });
});
