import { describe, expect, it } from 'vitest';
import { createLogger } from '../shared/log.ts';
import type { Kv, ObjectStore } from '../shared/ports/index.ts';
import { createBionicClient } from '../router/client.ts';
import { createWorkerApp } from '../workers/app.ts';
import { createEdgeApp } from './app.ts';

// Only `ping` matters to these routing tests; the adapters have their own contract suites.
const up = { ping: async () => {} };
const down = { ping: async () => { throw new Error('connection refused'); } };
const log = createLogger({ level: 'silent' });

const worker = createWorkerApp({ ports: {}, log, health: async () => ({ status: 'ok', dependencies: {} }) });
const toWorker: typeof fetch = (input, init) => Promise.resolve(worker.request(String(input), init));

// Sign-in and rate limits need a real KV and identity provider: tests/e2e/auth-*.test.ts cover them.
// Here sign-in is off (every caller anonymous) and limits are off, so only routing is under test.
function edge(opts: { kv?: object; store?: object; fetch?: typeof fetch } = {}) {
  return createEdgeApp({
    kv: (opts.kv ?? up) as Kv, objectStore: (opts.store ?? up) as ObjectStore, log,
    workerUrl: 'http://worker.test', fetch: opts.fetch ?? toWorker, publicUrl: 'http://edge.test', rateLimits: null,
  });
}
const sameOrigin = { origin: 'http://edge.test', 'x-bionic-csrf': '1' };
const clientFor = (app: ReturnType<typeof edge>) =>
  createBionicClient({ url: 'http://edge.test/trpc', fetch: (input, init) => Promise.resolve(app.request(String(input), init)) });

describe('edge app', () => {
  it('routes with Hono\'s RegExpRouter (two clashing routes would drop it for the slower trie router)', async () => {
    const app = edge();
    await app.request('/health');
    expect(app.router.name).toBe('SmartRouter + RegExpRouter');
  });

  it('/health is liveness: 200 without asking any dependency', async () => {
    const res = await edge({ kv: down, store: down }).request('/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', host: 'edge' });
  });

  it('/ready is 200 when every dependency answers, with a request id', async () => {
    const res = await edge().request('/ready');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const body = await res.json();
    expect(body.status).toBe('ok');
    expect(Object.keys(body.dependencies).sort()).toEqual(['kv', 'objectStore', 'worker']);
  });

  it('/ready is 503 and names the dependency that is down', async () => {
    const res = await edge({ kv: down }).request('/ready');
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body.dependencies.kv).toMatchObject({ ok: false, error: 'connection refused' });
    expect(body.dependencies.objectStore.ok).toBe(true);
  });

  it('serves edge procedures and forwards worker procedures through one typed client', async () => {
    const client = clientFor(edge());
    const [e, w] = await Promise.all([client.health.check.query(), client.worker.health.query()]);
    expect(e.host).toBe('edge');
    expect(w.host).toBe('worker');
  });

  it('refuses an authed procedure without a session (UNAUTHORIZED, 401)', async () => {
    const err = await clientFor(edge()).me.get.query().catch((e) => e);
    expect(err.data?.code).toBe('UNAUTHORIZED');
    expect(err.data?.httpStatus).toBe(401);
  });

  it('refuses a batch that mixes edge and worker procedures with BAD_REQUEST', async () => {
    const res = await edge().request('/trpc/health.check,worker.health?batch=1&input={}');
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(JSON.stringify(body)).toContain('may not mix edge and worker procedures');
  });

  it('answers BAD_GATEWAY when the worker pool is unreachable', async () => {
    const app = edge({ fetch: () => Promise.reject(new TypeError('fetch failed')) });
    const err = await clientFor(app).worker.health.query().catch((e) => e);
    expect(err.data?.code).toBe('BAD_GATEWAY');
    expect(err.message).toBe('The worker pool is unavailable');
  });

  it('unknown procedures are NOT_FOUND and unknown routes 404, never 500', async () => {
    expect((await edge().request('/trpc/nope.nothing')).status).toBe(404);
    expect((await edge().request('/trpc/worker.nothing')).status).toBe(404);
    expect((await edge().request('/no/such/page')).status).toBe(404);
  });

  it('bad input to a procedure is a 4xx, not a 500', async () => {
    const res = await edge().request('/trpc/health.check', { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json', ...sameOrigin } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.status).not.toBe(403); // it got past the CSRF guard: the input is what was refused
  });

  it('refuses state-changing requests without a same-origin Origin and the CSRF header (403)', async () => {
    const post = (headers: Record<string, string>) =>
      edge().request('/trpc/health.check', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', ...headers } });
    const attempts: Record<string, string>[] = [{}, { 'x-bionic-csrf': '1' }, { origin: 'http://evil.test', 'x-bionic-csrf': '1' }, { origin: 'http://edge.test' }, { origin: 'null', 'x-bionic-csrf': '1' }];
    for (const headers of attempts) {
      const res = await post(headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(JSON.stringify(await res.json())).toContain('FORBIDDEN');
    }
    const logout = await edge().request('/auth/logout', { method: 'POST' });
    expect(logout.status).toBe(403);
  });

  it('without an identity provider, sign-in answers 503 and nobody is signed in', async () => {
    expect((await edge().request('/auth/login')).status).toBe(503);
    const me = await edge().request('/trpc/me.get', { headers: { cookie: '__Host-session=' + 'a'.repeat(43) } });
    expect(me.status).toBe(401);
  });
});
