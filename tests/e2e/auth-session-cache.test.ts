/**
 * The edge's hot path without KV round trips, on the real KV (redis-server behind the gateway):
 * sessions reused in process for SESSION_CACHE_SECONDS (logout and refresh on this instance take
 * effect at once, a revocation elsewhere within the cache time), and the API rate limit reserved
 * in batches across instances (never more than the limit in total, still 429 when spent).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyRing } from '../../edge/auth/seal.ts';
import { createSessionStore, DEFAULT_SESSION_CACHE_SECONDS } from '../../edge/auth/session-store.ts';
import type { Kv } from '../../shared/ports/kv.ts';
import { startAuthStack, type AuthStack } from '../support/auth-stack.ts';

const SESSION = '__Host-session';
const API = { limit: 400, windowSeconds: 3600, batch: 50 };
let stack: AuthStack;
beforeAll(async () => {
  stack = await startAuthStack({ rateLimits: { login: { limit: 1000, windowSeconds: 60 }, api: { limit: 100_000, windowSeconds: 60 } } });
}, 120_000);
afterAll(async () => { await stack?.stop(); }, 60_000);

/** A session written straight into KV, as a sign-in would leave it (the tests need no provider round trips). */
async function newSession(username: string): Promise<string> {
  const store = createSessionStore({ kv: stack.kv, keys: createKeyRing(stack.authConfig.sessionKeys), idleSeconds: stack.authConfig.idleSeconds, absoluteSeconds: stack.authConfig.absoluteSeconds });
  const { id } = await store.create({ userId: `sub-${username}`, username, roles: ['prosthesis_user'] }, { accessToken: 'opaque', refreshToken: null }, 3600, stack.now());
  return `${SESSION}=${id}`;
}

/** The KV port with every call recorded; `eval` calls are named by what their script does. */
function countingKv(calls: string[]): Kv {
  const kv = stack.kv;
  return {
    ...kv,
    get: (k) => { calls.push('get'); return kv.get(k); },
    del: (...k) => { calls.push('del'); return kv.del(...k); },
    eval: (script, keys, args) => {
      calls.push(script.includes('seenAt') ? 'session' : script.includes('INCRBY') ? 'ratelimit' : 'eval');
      return kv.eval(script, keys, args);
    },
  };
}

const me = (app: ReturnType<AuthStack['edgeInstance']>, cookie: string) => app.request(`${stack.edgeUrl}/auth/me`, { headers: { cookie } });
const logout = (app: ReturnType<AuthStack['edgeInstance']>, cookie: string) => app.request(`${stack.edgeUrl}/auth/logout`, {
  method: 'POST', headers: { cookie, origin: stack.edgeUrl, 'x-bionic-csrf': '1', accept: 'application/json' },
});

describe('the in-process session cache', () => {
  it('reads a session from KV once per SESSION_CACHE_SECONDS, and logout on the same instance ends it at once', async () => {
    const cookie = await newSession('cache-a');
    const calls: string[] = [];
    const app = stack.edgeInstance({ kv: countingKv(calls) });
    expect((await me(app, cookie)).status).toBe(200);
    expect(calls.filter((c) => c === 'session')).toHaveLength(1);
    for (let i = 0; i < 5; i++) expect((await me(app, cookie)).status).toBe(200);
    expect(calls.filter((c) => c === 'session')).toHaveLength(1);

    expect((await logout(app, cookie)).status).toBe(200);
    expect((await me(app, cookie)).status).toBe(401);
  });

  it('another instance serves a session revoked elsewhere for at most the cache time', async () => {
    const cookie = await newSession('cache-b');
    let t = stack.now();
    const other = stack.edgeInstance({ now: () => t }); // a clock that moves only when told
    expect((await me(other, cookie)).status).toBe(200);
    expect((await logout(stack.edge, cookie)).status).toBe(200);
    expect((await me(stack.edge, cookie)).status).toBe(401);
    expect((await me(other, cookie)).status).toBe(200); // the documented window
    t += DEFAULT_SESSION_CACHE_SECONDS;
    expect((await me(other, cookie)).status).toBe(401);
  });

  it('with SESSION_CACHE_SECONDS=0 every request asks KV, so a revocation is seen at once', async () => {
    const cookie = await newSession('cache-c');
    const calls: string[] = [];
    const app = stack.edgeInstance({ kv: countingKv(calls), auth: { ...stack.authConfig, sessionCacheSeconds: 0 } });
    for (let i = 0; i < 3; i++) expect((await me(app, cookie)).status).toBe(200);
    expect(calls.filter((c) => c === 'session')).toHaveLength(3);
    expect((await logout(stack.edge, cookie)).status).toBe(200);
    expect((await me(app, cookie)).status).toBe(401);
  });
});

describe('the API rate limit, reserved in batches', () => {
  it('two instances together serve exactly the limit, then both answer 429, with a fraction of the KV calls', async () => {
    const cookie = await newSession('limited');
    const calls: string[] = [];
    const [a, b] = [0, 1].map(() => stack.edgeInstance({ kv: countingKv(calls), rateLimits: { login: { limit: 1000, windowSeconds: 60 }, api: API } }));
    const statuses: number[] = [];
    const remaining: number[] = [];
    for (let i = 0; i < API.limit + 20; i++) {
      const res = await me(i % 2 ? b! : a!, cookie);
      statuses.push(res.status);
      if (res.status === 200) remaining.push(Number(res.headers.get('x-ratelimit-remaining')));
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(API.limit);
    expect(statuses.slice(-6)).toEqual(Array(6).fill(429));
    expect(remaining[0]).toBe(API.limit - 1);
    expect(Math.min(...remaining)).toBe(0);
    // Batches shrink as the window fills (at most a tenth of what is left), so the count is well above limit / batch.
    expect(calls.filter((c) => c === 'ratelimit').length).toBeLessThan(API.limit / 4);
    const refused = await me(a!, cookie);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });
});
