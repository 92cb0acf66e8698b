/**
 * Reports end to end on real services (see tests/support/reports-stack.ts): single-flight builds
 * across two edge instances, LRU hits, ETag/304, invalidation by version bump, signed links, IDOR,
 * audited privileged reads, and a broken object store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBionicClient } from '../../router/client.ts';
import { DEFAULT_REPORTS_EDGE_CONFIG } from '../../shared/reports/config.ts';
import { bumpReportVersion, readReportVersion, reportVersionPrefix } from '../../shared/reports/keys.ts';
import { reportSchema, type Report } from '../../shared/reports/schema.ts';
import { statRow } from '../support/reports-data.ts';
import { startReportsStack, type ReportsStack, type SignedIn } from '../support/reports-stack.ts';

let stack: ReportsStack;
let user1: SignedIn;
let user2: SignedIn;
let analyst: SignedIn;
const PERIOD = '2025-01';

const days = (n: number) => Array.from({ length: n }, (_, i) => `2025-01-${String(i + 1).padStart(2, '0')}`);

beforeAll(async () => {
  stack = await startReportsStack({ reports: { linkTtlSeconds: 10 } });
  [user1, user2, analyst] = [await stack.signIn('user1'), await stack.signIn('user2'), await stack.signIn('analyst1')];
  await stack.olap.insert('user_prosthesis_stats', [
    ...days(10).map((day, i) => statRow({ user_id: user1.userId, chip_id: 'chip-u1', day, active_minutes: 100 + i, actions: 300, errors: 3 })),
    ...days(3).map((day) => statRow({ user_id: user2.userId, chip_id: 'chip-u2', day, active_minutes: 7, actions: 10, errors: 5 })),
  ]);
}, 180_000);

afterAll(async () => { await stack?.stop(); }, 60_000);

const get = (who: SignedIn, path: string, headers: Record<string, string> = {}) =>
  fetch(`${stack.edgeUrl}${path}`, { headers: { cookie: who.cookie, ...headers }, redirect: 'manual' });
const trpc = (who: SignedIn) => createBionicClient({ url: `${stack.edgeUrl}/trpc`, headers: () => ({ cookie: who.cookie }) });
const json = async (res: Response) => reportSchema.parse(await res.json()) as Report;
/** Moves the edges' clock past the version cache, so every instance asks KV for the version again. */
const versionCacheLapses = () => stack.auth.advance(DEFAULT_REPORTS_EDGE_CONFIG.versionCacheSeconds);
/** `target` with every method call recorded as `<label>.<method>`. */
const counting = <T extends object>(target: T, label: string, calls: string[]): T => new Proxy(target, {
  get: (t, prop) => {
    const v = Reflect.get(t, prop) as unknown;
    return typeof v === 'function' ? (...args: unknown[]) => { calls.push(`${label}.${String(prop)}`); return (v as (...a: unknown[]) => unknown).apply(t, args); } : v;
  },
});

describe('report delivery', () => {
  it('builds a miss exactly once for 20 concurrent first requests over two edge instances, then serves hits without the store', async () => {
    stack.builds.length = 0;
    const path = `/reports/${PERIOD}.json`;
    const responses = await Promise.all([
      ...Array.from({ length: 10 }, () => get(user1, path)),
      ...Array.from({ length: 10 }, () => stack.edgeB.request(path, { headers: { cookie: user1.cookie } })),
    ]);
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(stack.builds).toEqual([{ owner: user1.userId, period: PERIOD }]);
    const bodies = await Promise.all(responses.map((r) => r.text()));
    expect(new Set(bodies).size).toBe(1);
    expect(new Set(responses.map((r) => r.headers.get('etag'))).size).toBe(1);
    const report = reportSchema.parse(JSON.parse(bodies[0]!));
    expect(report.userId).toBe(user1.userId);
    expect(report.totals).toMatchObject({ activeMinutes: 1045, actions: 3000, errors: 30, errorRate: 0.01, daysWithData: 10 });

    // Both instances now hold it in memory: no object-store round trip, no build.
    stack.proxy.resetCounts();
    const [again, againB] = [await get(user1, path), await stack.edgeB.request(path, { headers: { cookie: user1.cookie } })];
    expect([again.status, againB.status]).toEqual([200, 200]);
    expect(await again.text()).toBe(bodies[0]);
    expect(stack.proxy.counts).toEqual({});
    expect(stack.builds).toHaveLength(1);
  });

  it('answers 304 to a matching If-None-Match, privately cacheable', async () => {
    const first = await get(user1, `/reports/${PERIOD}.json`);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(first.headers.get('cache-control')).toContain('private');
    expect(first.headers.get('vary')).toContain('Cookie');
    expect(Number(first.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(0); // the session's limit applies here too
    const cached = await get(user1, `/reports/${PERIOD}.json`, { 'if-none-match': etag });
    expect(cached.status).toBe(304);
    expect(await cached.text()).toBe('');
    expect(cached.headers.get('etag')).toBe(etag);
    expect((await get(user1, `/reports/${PERIOD}.json`, { 'if-none-match': '"other"' })).status).toBe(200);

    const csv = await get(user1, `/reports/${PERIOD}.csv`);
    expect(csv.headers.get('content-disposition')).toBe(`attachment; filename="bionicpro-report-${PERIOD}.csv"`);
    expect((await csv.text()).trim().split('\r\n')).toHaveLength(32); // header + 31 days
    expect((await get(user1, `/reports/${PERIOD}.csv`, { 'if-none-match': csv.headers.get('etag')! })).status).toBe(304);
  });

  it('rebuilds with the new numbers after a version bump (as the ETL does after a load)', async () => {
    const before = await get(user1, `/reports/${PERIOD}.json`);
    const etag = before.headers.get('etag')!;
    const old = await json(before);
    const builds = stack.builds.length;
    await stack.olap.insert('user_prosthesis_stats', [statRow({ user_id: user1.userId, chip_id: 'chip-u1', day: '2025-01-20', active_minutes: 500, actions: 1000, errors: 0 })]);
    const version = await bumpReportVersion(stack.auth.kv, user1.userId);
    versionCacheLapses(); // the edge reuses the version it read for REPORTS_VERSION_CACHE_SECONDS
    const after = await get(user1, `/reports/${PERIOD}.json`, { 'if-none-match': etag });
    expect(after.status).toBe(200);
    expect(after.headers.get('x-report-version')).toBe(String(version));
    expect(after.headers.get('etag')).not.toBe(etag);
    const fresh = await json(after);
    expect(fresh.version).toBe(version);
    expect(fresh.totals.activeMinutes).toBe(old.totals.activeMinutes + 500);
    expect(fresh.daily.find((d) => d.day === '2025-01-20')?.activeMinutes).toBe(500);
    expect(stack.builds.length).toBe(builds + 1);
  });

  it('sees a version bump at once with REPORTS_VERSION_CACHE_SECONDS=0, and on every instance once the cache time has passed', async () => {
    const path = `/reports/${PERIOD}.json`;
    const uncached = stack.edgeWith({ versionCacheSeconds: 0 });
    const read = async (app: typeof uncached) => {
      const res = await app.request(path, { headers: { cookie: user1.cookie } });
      expect(res.status).toBe(200);
      return Number(res.headers.get('x-report-version'));
    };
    const before = await read(stack.edgeB);
    expect(await read(uncached)).toBe(before);
    const version = await bumpReportVersion(stack.auth.kv, user1.userId);
    expect(await read(uncached)).toBe(version);
    versionCacheLapses();
    expect(await read(stack.edgeB)).toBe(version);
  });

  it('serves a cached report without any KV or object-store call', async () => {
    const path = `/reports/${PERIOD}.json`;
    const calls: string[] = [];
    const edge = stack.auth.edgeInstance({
      kv: counting(stack.auth.kv, 'kv', calls), objectStore: counting(stack.store, 'store', calls),
      workerUrl: stack.workerUrl, publicUrl: stack.edgeUrl,
    });
    expect((await edge.request(path, { headers: { cookie: user1.cookie } })).status).toBe(200);
    // The first read looks up the session, reserves rate-limit budget, reads the version and the object.
    expect(calls).toEqual(expect.arrayContaining(['kv.eval', 'kv.get', 'store.get']));
    // The rate-limit batch grows with use (1, 2, 4, … requests per KV call): after 40 reads the
    // current one covers the next ten.
    for (let i = 0; i < 39; i++) expect((await edge.request(path, { headers: { cookie: user1.cookie } })).status).toBe(200);
    calls.length = 0;
    for (let i = 0; i < 10; i++) expect((await edge.request(path, { headers: { cookie: user1.cookie } })).status).toBe(200);
    expect(calls).toEqual([]);
  });

  it('serves reports.list and reports.get over tRPC', async () => {
    const api = trpc(user1);
    const got = await api.reports.get.query({ period: PERIOD });
    expect(got.report.userId).toBe(user1.userId);
    expect(got.etag).toBeTruthy();
    const list = await api.reports.list.query();
    expect(list.find((r) => r.period.id === PERIOD)).toMatchObject({ built: true });
    expect(list.map((r) => r.period.kind).slice(0, 5)).toEqual(['day', 'week', 'week', 'month', 'month']);
    const bad = await api.reports.get.query({ period: '2025-13' }).catch((e) => e);
    expect(bad.data?.code).toBe('BAD_REQUEST');
  });
});

describe('signed download links', () => {
  it('open the one report without a session, expire, and cannot be turned to another user\'s key', async () => {
    const { url, expiresAt } = await trpc(user1).reports.link.query({ period: PERIOD });
    expect(new URL(url).origin).toBe(stack.edgeUrl);
    expect(Date.parse(expiresAt) - stack.auth.now() * 1000).toBeLessThanOrEqual(10_000);
    const direct = await fetch(url);
    expect(direct.status).toBe(200);
    expect(direct.headers.get('content-disposition')).toContain('attachment');
    expect((await json(direct)).userId).toBe(user1.userId);

    // Point the signed payload at user2's report: the MAC no longer matches.
    const token = url.split('/').pop()!;
    const [kid, payload, mac] = token.split('.') as [string, string, string];
    const claims = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/')));
    const user2Version = await readReportVersion(stack.auth.kv, user2.userId);
    const forged = btoa(JSON.stringify({ ...claims, k: `${reportVersionPrefix(user2.userId, user2Version)}${PERIOD}.json` })).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const tampered = await fetch(`${stack.edgeUrl}/report-files/${kid}.${forged}.${mac}`);
    expect(tampered.status).toBe(403);
    expect(await tampered.text()).not.toContain(user2.userId);

    stack.auth.advance(11);
    const expired = await fetch(url);
    expect(expired.status).toBe(410);
    expect((await expired.json()).error.message).toMatch(/expired/);
  });

  it('are the object store\'s presigned URLs with REPORTS_LINK_MODE=store', async () => {
    const edge = stack.edgeWith({ linkMode: 'store', linkTtlSeconds: 30 });
    const api = createBionicClient({ url: `${stack.edgeUrl}/trpc`, headers: () => ({ cookie: user1.cookie }), fetch: (input, init) => Promise.resolve(edge.request(String(input), init)) });
    const { url, expiresAt } = await api.reports.link.query({ period: PERIOD });
    const u = new URL(url);
    const version = await readReportVersion(stack.auth.kv, user1.userId);
    // Path-style: /<bucket>/<key>; S3 verifies the signature and expiry (s3rver does not, so only the target is checked here).
    expect(decodeURIComponent(u.pathname)).toBe(`/reports/${reportVersionPrefix(user1.userId, version)}${PERIOD}.json`);
    expect(u.searchParams.get('X-Amz-Expires')).toBe('30');
    expect(u.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.parse(expiresAt) - stack.auth.now() * 1000).toBeLessThanOrEqual(30_000);
    expect((await edge.request('/report-files/anything')).status).toBe(404);
  });
});

describe('access control', () => {
  it('gives every user only their own report: no route or procedure reaches another user\'s data', async () => {
    const own = await json(await get(user2, `/reports/${PERIOD}.json`));
    expect(own.userId).toBe(user2.userId);
    expect(own.totals.activeMinutes).toBe(21);

    const api = trpc(user2);
    const other = await api.reports.getForUser.query({ userId: user1.userId, period: PERIOD, reason: 'curious about user1' }).catch((e) => e);
    expect(other.data?.code).toBe('FORBIDDEN');
    expect(JSON.stringify(other)).not.toContain('chip-u1');
    expect((await api.reports.listForUser.query({ userId: user1.userId, reason: 'curious about user1' }).catch((e) => e)).data?.code).toBe('FORBIDDEN');

    // The builder is not reachable through the edge's forwarding...
    const forwarded = await fetch(`${stack.edgeUrl}/trpc/reportsBuilder.build`, {
      method: 'POST', headers: { cookie: user2.cookie, origin: stack.edgeUrl, 'x-bionic-csrf': '1', 'content-type': 'application/json' },
      body: JSON.stringify({ json: { userId: user1.userId, period: PERIOD } }),
    });
    expect(forwarded.status).toBe(404);
    // ...and the worker itself refuses a build of someone else's report with user2's token.
    const builds = stack.builds.length;
    const token = (await stack.auth.sessionOf(user2.cookie.split('=')[1]!))!.tokens!.accessToken;
    const atWorker = createBionicClient({ url: `${stack.workerUrl}/trpc`, headers: () => ({ authorization: `Bearer ${token}` }) });
    const refused = await atWorker.reportsBuilder.build.mutate({ userId: user1.userId, period: PERIOD }).catch((e) => e);
    expect(refused.data?.code).toBe('FORBIDDEN');
    expect(stack.builds.length).toBe(builds);

    const anonymous = await fetch(`${stack.edgeUrl}/reports/${PERIOD}.json`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).not.toContain('chip-u');
  });

  it('lets an ml_engineer read another user\'s report only through the audited procedures', async () => {
    stack.edgeLogs.length = 0;
    const api = trpc(analyst);
    const got = await api.reports.getForUser.query({ userId: user1.userId, period: PERIOD, reason: 'ticket ML-42: latency drift' });
    expect(got.report.userId).toBe(user1.userId);
    const list = await api.reports.listForUser.query({ userId: user1.userId, reason: 'ticket ML-42: latency drift' });
    expect(list.some((r) => r.period.id === PERIOD && r.built)).toBe(true);
    const audit = stack.edgeLogs.map((l) => JSON.parse(l)).filter((l) => l.audit === true);
    expect(audit).toEqual([
      expect.objectContaining({ msg: 'audit', action: 'reports.read_other', actor: analyst.userId, actorName: 'analyst1', owner: user1.userId, period: PERIOD, reason: 'ticket ML-42: latency drift' }),
      expect.objectContaining({ action: 'reports.list_other', actor: analyst.userId, owner: user1.userId }),
    ]);
    const noReason = await api.reports.getForUser.query({ userId: user1.userId, period: PERIOD, reason: '' }).catch((e) => e);
    expect(noReason.data?.code).toBe('BAD_REQUEST');
  });
});

describe('pages', () => {
  it('render the list, a report with SVG charts, and a sign-in link for visitors', async () => {
    expect((await get(user1, `/reports/${PERIOD}.json`)).status).toBe(200); // built under the current version
    const list = await (await get(user1, '/reports')).text();
    expect(list).toContain(`<a class="report-link" href="/reports/${PERIOD}">January 2025</a>`);
    expect(list).toContain('<form class="range card" method="get" action="/reports">');
    expect(list).toContain('id="notifications"');
    const page = await get(user1, `/reports/${PERIOD}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    for (const id of ['chart-usage', 'chart-errors', 'chart-latency', 'chart-battery']) expect(html).toContain(`<svg id="${id}"`);
    expect(html.match(/<rect class="bar"/g)).toHaveLength(11); // 10 days + 20 Jan
    expect(html).toContain(`href="/reports/${PERIOD}.csv"`);
    const range = await get(user1, '/reports?from=2025-01-03&to=2025-01-09');
    expect(range.status).toBe(303);
    expect(range.headers.get('location')).toBe('/reports/2025-01-03_2025-01-09');
    const visitor = await fetch(`${stack.edgeUrl}/reports`);
    expect(await visitor.text()).toContain('href="/auth/login?returnTo=%2Freports"');
  });
});

describe('object store outages', () => {
  it('answers a clear 503 and stores no partial report, then recovers', async () => {
    const version = await bumpReportVersion(stack.auth.kv, user1.userId);
    versionCacheLapses();
    try {
      stack.proxy.mode = 'down';
      const down = await get(user1, `/reports/${PERIOD}.json`);
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toBe('5');
      expect((await down.json()).error).toEqual({ code: 'SERVICE_UNAVAILABLE', message: 'Report storage is unavailable; please retry shortly' });
      const page = await get(user1, `/reports/${PERIOD}`);
      expect(page.status).toBe(503);
      expect(await page.text()).toContain('Report storage is unavailable');

      // Reads work but the upload breaks half-way: the build fails and nothing is left behind.
      stack.proxy.mode = 'cut-writes';
      const cut = await get(user1, `/reports/${PERIOD}.json`);
      expect(cut.status).toBe(503);
      expect((await cut.json()).error.message).toMatch(/storage is unavailable/i);
      const stored = [];
      for await (const o of stack.store.list(reportVersionPrefix(user1.userId, version))) stored.push(o.key);
      expect(stored).toEqual([]);
    } finally {
      stack.proxy.mode = 'pass';
    }
    // The failure is remembered for a few seconds (no build storm), then the next read builds.
    await expect.poll(async () => (await get(user1, `/reports/${PERIOD}.json`)).status, { timeout: 20_000, interval: 500 }).toBe(200);
  });
});
