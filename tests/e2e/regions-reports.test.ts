/**
 * Data residency, reports: built from and stored in their owner's region. Real stores on loopback —
 * s3rver with a bucket per region (and the central one), chDB statistics, KV (redis behind the
 * Upstash gateway), each region's CRM in embedded PostgreSQL — and the real edge delivery and
 * worker procedure wired in process, with the identities a session and a verified token would give.
 *
 * Three regions, `us` being one no code or fixture names. A user of each region reads their report: the objects land only in their region's bucket, the
 * central bucket stays empty. A download link carries its region: a session of another region is
 * refused (403, `residency.refused`); an admin may build another user's report only in their own region.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { createS3ObjectStore } from '../../edge/adapters/object-store-s3.ts';
import { generateKeySpec } from '../../edge/auth/seal.ts';
import type { SessionStore } from '../../edge/auth/session-store.ts';
import { createEdgeRegions } from '../../edge/regions.ts';
import { createEdgeReports } from '../../edge/reports/index.ts';
import { startPostgres, type PostgresService } from '../../infra/dev/services/postgres.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import { startS3, type S3Service } from '../../infra/dev/services/s3.ts';
import type { RunningService } from '../../infra/dev/services/types.ts';
import { startUpstashGateway } from '../../infra/gateway/upstash-gateway.ts';
import type { Identity, RouterContext } from '../../router/context.ts';
import { workerRouter } from '../../router/root.ts';
import { createCallerFactory } from '../../router/trpc.ts';
import type { ObjectStoreConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/log.ts';
import type { Kv, ObjectStore, Olap } from '../../shared/ports/index.ts';
import { parsePeriod } from '../../shared/reports/period.ts';
import { regionsConfigOf, regionsEnv } from '../../shared/regions/index.ts';
import type { ClickHouseOlap } from '../../workers/adapters/olap-clickhouse.ts';
import { createReportBuilder } from '../../workers/reports/builder.ts';
import { createWorkerRegions, type WorkerRegions } from '../../workers/regions/stores.ts';
import { openStatsOlap, statRow } from '../support/reports-data.ts';

const USERS = {
  ru: { userId: 'sub-ru-0001', username: 'user2', roles: ['prosthesis_user'], region: 'ru' },
  eu: { userId: 'sub-eu-0001', username: 'user1', roles: ['prosthesis_user'], region: 'eu' },
  us: { userId: 'sub-us-0001', username: 'user6', roles: ['prosthesis_user'], region: 'us' },
  adminRu: { userId: 'sub-ru-admin', username: 'admin2', roles: ['admin'], region: 'ru' },
  noRegion: { userId: 'sub-none-01', username: 'lost', roles: ['prosthesis_user'] },
} satisfies Record<string, Identity>;
const JAN = parsePeriod('2025-01')!;

let dir: string;
const services: RunningService[] = [];
let s3: S3Service;
let pg: PostgresService;
let kv: Kv;
let olap: Olap;
let regions: WorkerRegions;
const lines: string[] = [];
const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
let edge: Hono;
const stores: Record<string, ObjectStore> = {};

const caller = createCallerFactory(workerRouter);
let workerCtx: (identity: Identity) => RouterContext;

async function keysIn(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list('')) out.push(o.key);
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bionic-regions-reports-'));
  const token = randomBytes(24).toString('base64url');
  const [redis, s3svc, pgsvc] = await Promise.all([
    startRedis({ dataDir: join(dir, 'redis') }).then((s) => { services.push(s); return s; }),
    startS3({ dataDir: join(dir, 's3'), buckets: ['reports', 'reports-ru', 'reports-eu', 'reports-us'] }).then((s) => { services.push(s); return s; }),
    startPostgres({ dataDir: join(dir, 'pg') }).then((s) => { services.push(s); return s; }),
  ]);
  s3 = s3svc;
  pg = pgsvc;
  const gateway = await startUpstashGateway({ redisUrl: redis.url, token });
  services.push(gateway);
  kv = createUpstashKv({ url: gateway.url, token });

  // The regions come from the environment alone, as an operator sets them.
  const env: Record<string, string> = { REGIONS: 'ru,eu,us' };
  for (const id of ['ru', 'eu', 'us']) {
    await pg.ensureDatabase(`crm_${id}`);
    await pg.ensureDatabase(`telemetry_${id}`);
    env[`REGION_${id.toUpperCase()}_CRM_DATABASE_URL`] = pg.databaseUrl(`crm_${id}`);
    env[`REGION_${id.toUpperCase()}_TELEMETRY_DATABASE_URL`] = pg.databaseUrl(`telemetry_${id}`);
  }
  const ids = regionsEnv.REGIONS.parse(env.REGIONS);
  const fallbacks = { reportsBucket: 'reports', s3Endpoint: s3.endpoint, s3Region: s3.region };
  const objectStore: ObjectStoreConfig = {
    endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, bucket: 'reports', forcePathStyle: true,
  };
  const central = createS3ObjectStore(objectStore);
  const workerRegions = regionsConfigOf(env, 'worker', ids, { ...fallbacks, clickhouseDatabase: 'bionic' });
  // Statistics live in each region's ClickHouse database (bionic_<id>), where that region's ETL loads them.
  olap = await openStatsOlap(join(dir, 'chdb'));
  regions = createWorkerRegions({ regions: workerRegions, objectStore, oltp: { poolMax: 2 } }, { oltp: { crm: null!, telemetry: null! }, objectStore: central, olap: olap as ClickHouseOlap });
  await regions.migrate();
  for (const [id, u] of [['ru', USERS.ru], ['eu', USERS.eu], ['us', USERS.us]] as const) {
    await regions.ports.get(id).crm.query(
      `INSERT INTO customers (username, full_name, email, phone, region, idp_subject) VALUES ($1, 'Test Person', $2, '+000', $3, $4)`,
      [u.username, `${u.username}@example.test`, id, u.userId]);
  }
  stores.central = central;
  for (const r of regions.ports.all()) stores[r.id] = r.reports;

  await regions.ports.get('ru').olap.insert('user_prosthesis_stats', [statRow({ user_id: USERS.ru.userId, chip_id: 'chip-ru-1', day: '2025-01-03' })]);
  await regions.ports.get('eu').olap.insert('user_prosthesis_stats', [statRow({ user_id: USERS.eu.userId, chip_id: 'chip-eu-1', day: '2025-01-04' })]);
  await regions.ports.get('us').olap.insert('user_prosthesis_stats', [statRow({ user_id: USERS.us.userId, chip_id: 'chip-us-1', day: '2025-01-05' })]);

  const builder = createReportBuilder({ olap, kv, regions: regions.ports, log });
  workerCtx = (identity) => ({
    requestId: 'test', identity, log, ports: { reportBuilder: builder, regions: regions.ports }, host: 'worker',
    health: async () => ({ status: 'ok', dependencies: {} }),
  });
  const identities = new Map(Object.values(USERS).map((u) => [`token-${u.userId}`, u as Identity]));
  const edgeRegions = createEdgeRegions({ regions: regionsConfigOf(env, 'edge', ids, fallbacks), objectStore }, central);
  const reports = createEdgeReports({
    kv, objectStore: central, regions: edgeRegions, log, workerUrl: 'http://127.0.0.1:9', publicUrl: 'https://edge.test',
    auth: { sessionKeys: [{ kid: 'k1', secret: generateKeySpec('k1').slice(3) }] } as never,
    // The worker's procedure, called as the edge calls it: with the reader's token, verified into their identity.
    build: async (call) => caller(workerCtx(identities.get(call.accessToken)!)).reportsBuilder.build({ userId: call.owner, period: call.period.id }),
  }, { sessions: { tokens: async (s: { identity: Identity }) => ({ accessToken: `token-${s.identity.userId}` }) } as unknown as SessionStore });

  // What the session middleware sets: the signed-in identity (named by a test header here).
  const app = new Hono();
  app.use(async (c, next) => {
    const who = c.req.header('x-test-user') as keyof typeof USERS | undefined;
    const identity = who ? USERS[who] : null;
    c.set('identity' as never, identity as never);
    c.set('session' as never, (identity ? { identity } : null) as never);
    c.set('sessionStale' as never, false as never);
    c.set('log' as never, log as never);
    await next();
  });
  app.get('/t/link', async (c) => c.json(await reports.forRequest(c).link((c.get('identity' as never) as Identity).userId, JAN)));
  app.route('/', reports.routes);
  edge = app;
}, 180_000);

afterAll(async () => {
  await regions?.close();
  await olap?.close();
  for (const s of services.reverse()) await s.stop().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

const as = (who: keyof typeof USERS, path: string) => edge.request(path, { headers: { 'x-test-user': who } });
const refusals = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'residency.refused');

describe('reports stay in their owner\'s region', () => {
  it('each region\'s user reads their report; its objects exist only in their region\'s bucket', async () => {
    for (const who of ['ru', 'eu', 'us'] as const) {
      const res = await as(who, '/reports/2025-01.json');
      expect(res.status, who).toBe(200);
      const report = await res.json() as { userId: string; devices: { chipId: string }[] };
      expect(report.userId).toBe(USERS[who].userId);
      // Built from the statistics in the region's own ClickHouse database.
      expect(report.devices.map((d) => d.chipId)).toEqual([`chip-${who}-1`]);
    }
    for (const id of ['ru', 'eu', 'us'] as const) {
      const keys = await keysIn(stores[id]!);
      expect(keys.length, id).toBeGreaterThan(0);
      expect(keys.every((k) => k.startsWith(`reports/${USERS[id].userId}/`)), keys.join()).toBe(true);
    }
    expect(await keysIn(stores.central!)).toEqual([]);
  });

  it('a second read is served from the region\'s bucket (the listing sees it built)', async () => {
    const res = await as('eu', '/reports/2025-01.json');
    expect(res.status).toBe(200);
    const page = await (await as('eu', '/reports')).text();
    expect(page).toContain('2025-01');
  });

  it('a download link names its region: a session of another region is refused and logged, the owner\'s works', async () => {
    const link = await (await as('eu', '/t/link')).json() as { url: string };
    const path = new URL(link.url).pathname;
    expect((await as('eu', path)).status).toBe(200);
    expect((await edge.request(path)).status).toBe(200);
    const before = refusals().length;
    const cross = await as('ru', path);
    expect(cross.status).toBe(403);
    expect(await cross.text()).toContain('Data residency');
    expect(refusals().slice(before)).toContainEqual(expect.objectContaining({
      reason: 'CROSS_REGION', actorRegion: 'ru', dataRegion: 'eu', what: 'report', subject: USERS.ru.userId,
    }));
  });

  it('an admin builds another user\'s report in their own region only', async () => {
    const admin = caller(workerCtx(USERS.adminRu)).reportsBuilder;
    const own = await admin.build({ userId: USERS.ru.userId, period: '2025-01' });
    expect(own.key.startsWith(`reports/${USERS.ru.userId}/`)).toBe(true);
    expect(await stores.ru!.head(own.key)).not.toBeNull();
    const before = refusals().length;
    await expect(admin.build({ userId: USERS.eu.userId, period: '2025-01' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(refusals().slice(before)).toContainEqual(expect.objectContaining({ reason: 'CROSS_REGION', actorRegion: 'ru', dataRegion: 'eu', what: 'report' }));
    await expect(admin.build({ userId: 'sub-nobody', period: '2025-01' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await keysIn(stores.central!)).toEqual([]);
  });

  it('a user without a region gets no report (403), and nothing is stored', async () => {
    const before = refusals().length;
    const res = await as('noRegion', '/reports/2025-01.json');
    expect(res.status).toBe(403);
    expect(refusals().slice(before)).toContainEqual(expect.objectContaining({ reason: 'NO_REGION', subject: USERS.noRegion.userId }));
    const all = (await Promise.all(Object.values(stores).map(keysIn))).flat();
    expect(all.some((k) => k.includes(USERS.noRegion.userId))).toBe(false);
  });
});
