/**
 * Data residency, ETL and analytics: one ETL job per region, each reading that region's telemetry
 * and CRM (real PostgreSQL databases per region) and writing that region's ClickHouse database
 * (chDB); the report builder reads the region's statistics; the central ClickHouse database gets
 * pseudonymised day rows only, read through `analytics.*`. Regions `ru,eu,us` come from
 * environment variables alone (`us` is named by no code). Expected numbers and pseudonyms are
 * computed here from the readings and with node:crypto, never by the code under test.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { createS3ObjectStore } from '../../edge/adapters/object-store-s3.ts';
import { startPostgres, type PostgresService } from '../../infra/dev/services/postgres.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import { startS3, type S3Service } from '../../infra/dev/services/s3.ts';
import type { RunningService } from '../../infra/dev/services/types.ts';
import { startUpstashGateway } from '../../infra/gateway/upstash-gateway.ts';
import type { Identity, RouterContext } from '../../router/context.ts';
import { workerRouter } from '../../router/root.ts';
import { createCallerFactory } from '../../router/trpc.ts';
import type { ObjectStoreConfig } from '../../shared/config.ts';
import { DEFAULT_ETL_CONFIG } from '../../shared/etl/config.ts';
import type { EtlPerRegion, EtlRegionRunOutcome, EtlStatus } from '../../shared/etl/port.ts';
import { createLogger } from '../../shared/log.ts';
import type { ObjectStore, Olap } from '../../shared/ports/index.ts';
import { parsePeriod } from '../../shared/reports/period.ts';
import { regionsConfigOf, regionsEnv } from '../../shared/regions/index.ts';
import { createClickHouseOlap, type ClickHouseOlap } from '../../workers/adapters/olap-clickhouse.ts';
import { createPostgresOltp, type PostgresOltp } from '../../workers/adapters/oltp-postgres.ts';
import { createAnalyticsService } from '../../workers/analytics/service.ts';
import { migrateAll } from '../../workers/db/migrate.ts';
import { createEtl, etlRegionsOf, type Etl } from '../../workers/etl/index.ts';
import { etlRunEvent } from '../../workers/metrics/etl-run.ts';
import type { EtlRunEvent } from '../../shared/metrics/events.ts';
import { createReportBuilder } from '../../workers/reports/builder.ts';
import { createWorkerRegions, type WorkerRegions } from '../../workers/regions/stores.ts';
import { addCustomer, insertReadings, type TestReading } from '../support/etl-stack.ts';

const KEY = randomBytes(24).toString('base64url');
const IDS = ['ru', 'eu', 'us'] as const;
type Id = (typeof IDS)[number];
const CUSTOMERS: Record<Id, { id: number; subject: string; username: string; chip: string; kind: 'hand' | 'leg' }> = {
  ru: { id: 1, subject: 'sub-ru-7a1c', username: 'user1', chip: 'CHIP-RU1', kind: 'hand' },
  eu: { id: 1, subject: 'sub-eu-93fd', username: 'user1', chip: 'CHIP-EU1', kind: 'leg' },
  us: { id: 1, subject: 'sub-us-0b2e', username: 'user1', chip: 'CHIP-US1', kind: 'hand' },
};
const r = (chip: string, ts: string, kind: TestReading['kind'], o: Partial<TestReading> = {}): TestReading => ({ chip, ts, kind, ...o });
const READINGS: Record<Id, TestReading[]> = {
  ru: [
    r('CHIP-RU1', '2026-03-09T10:00:05Z', 'action', { responseMs: 100, battery: 90, grip: 20 }),
    r('CHIP-RU1', '2026-03-09T10:00:40Z', 'action', { responseMs: 140, battery: 89, grip: 24 }),
    r('CHIP-RU1', '2026-03-09T10:07:00Z', 'error', { errorCode: 'E_MOTOR_STALL', responseMs: 400, battery: 88 }),
    r('CHIP-RU1', '2026-03-10T08:00:00Z', 'action', { responseMs: 90, battery: 70, grip: 18 }),
    // Registered in eu, not in ru: the ru job must not count it (nor find an owner for it).
    r('CHIP-EU1', '2026-03-09T11:00:00Z', 'action', { responseMs: 100, battery: 50 }),
  ],
  eu: [
    r('CHIP-EU1', '2026-03-09T09:00:00Z', 'action', { action: 'step', responseMs: 200, battery: 60 }),
    r('CHIP-EU1', '2026-03-09T09:30:00Z', 'error', { action: 'step', errorCode: 'E_BALANCE', responseMs: 500, battery: 59 }),
  ],
  us: [r('CHIP-US1', '2026-03-10T07:00:00Z', 'action', { responseMs: 120, battery: 80, grip: 30 })],
};

/** The README's definitions for the few metrics checked here, from the readings of one chip. */
function expectedDays(readings: readonly TestReading[], chip: string) {
  const days = new Map<string, TestReading[]>();
  for (const x of readings.filter((x) => x.chip === chip)) days.set(x.ts.slice(0, 10), [...(days.get(x.ts.slice(0, 10)) ?? []), x]);
  return [...days.entries()].sort().map(([day, xs]) => {
    const acts = xs.filter((x) => x.kind !== 'status');
    const errors = xs.filter((x) => x.kind === 'error').length;
    return {
      day, actions: acts.length, errors, error_rate: errors / acts.length,
      active_minutes: new Set(acts.map((x) => x.ts.slice(0, 16))).size,
      battery_min: Math.min(...xs.map((x) => x.battery!)),
    };
  });
}
const pseudonym = (region: string, subject: string) => createHmac('sha256', KEY).update(`${region}:${subject}`).digest('hex').slice(0, 32);

let dir: string;
const services: RunningService[] = [];
let pg: PostgresService;
let s3: S3Service;
let platform: PostgresOltp;
let olap: ClickHouseOlap;
let regions: WorkerRegions;
let etl: Etl;
const runEvents: EtlRunEvent[] = [];
const stores: Record<string, ObjectStore> = {};
let env: Record<string, string>;
let prebuilds: Promise<unknown>[] = [];
const log = createLogger({ level: 'silent' });
const clock = { now: new Date('2026-03-10T12:00:00Z') };
const caller = createCallerFactory(workerRouter);
let ctx: (roles: Identity['roles']) => RouterContext;
let builder: ReturnType<typeof createReportBuilder>;

async function keysIn(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list('')) out.push(o.key);
  return out;
}

const stats = (db: Olap) => db.query<{ user_id: string; chip_id: string; day: string; actions: number; errors: number; error_rate: number; active_minutes: number; battery_min: number }>(
  'SELECT user_id, chip_id, toString(day) AS day, actions, errors, error_rate, active_minutes, battery_min FROM user_prosthesis_stats FINAL ORDER BY user_id, chip_id, day');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bionic-regions-etl-'));
  const token = randomBytes(24).toString('base64url');
  const [redis, s3svc, pgsvc] = await Promise.all([
    startRedis({ dataDir: join(dir, 'redis') }).then((s) => { services.push(s); return s; }),
    startS3({ dataDir: join(dir, 's3'), buckets: ['reports', ...IDS.map((id) => `reports-${id}`)] }).then((s) => { services.push(s); return s; }),
    startPostgres({ dataDir: join(dir, 'pg') }).then((s) => { services.push(s); return s; }),
  ]);
  pg = pgsvc;
  s3 = s3svc;
  const gateway = await startUpstashGateway({ redisUrl: redis.url, token });
  services.push(gateway);
  const kv = createUpstashKv({ url: gateway.url, token });

  // The regions come from the environment alone, as an operator sets them.
  env = { REGIONS: IDS.join(',') };
  await pg.ensureDatabase('platform');
  for (const id of IDS) {
    await pg.ensureDatabase(`crm_${id}`);
    await pg.ensureDatabase(`telemetry_${id}`);
    env[`REGION_${id.toUpperCase()}_CRM_DATABASE_URL`] = pg.databaseUrl(`crm_${id}`);
    env[`REGION_${id.toUpperCase()}_TELEMETRY_DATABASE_URL`] = pg.databaseUrl(`telemetry_${id}`);
  }
  platform = createPostgresOltp(pg.databaseUrl('platform'), { max: 4 });
  olap = await createClickHouseOlap({ user: 'default', password: '', database: 'bionic', chdbPath: join(dir, 'chdb') });
  await migrateAll({ platform, olap });
  const objectStore: ObjectStoreConfig = {
    endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, bucket: 'reports', forcePathStyle: true,
  };
  const central = createS3ObjectStore(objectStore);
  const config = regionsConfigOf(env, 'worker', regionsEnv.REGIONS.parse(env.REGIONS), {
    clickhouseDatabase: 'bionic', reportsBucket: 'reports', s3Endpoint: s3.endpoint, s3Region: s3.region,
  });
  regions = createWorkerRegions({ regions: config, objectStore, oltp: { poolMax: 3 } }, { oltp: { crm: null!, telemetry: null! }, objectStore: central, olap });
  await regions.migrate();
  stores.central = central;
  for (const id of IDS) {
    const s = regions.ports.get(id);
    stores[id] = s.reports;
    const c = CUSTOMERS[id];
    await addCustomer(s.crm, { id: c.id, subject: c.subject, chips: [c.chip] });
    await s.crm.query(`UPDATE prosthesis_models SET kind = $1`, [c.kind]);
    await insertReadings(s.telemetry, READINGS[id]);
  }

  builder = createReportBuilder({ olap, kv, regions: regions.ports, log });
  etl = createEtl({
    regions: etlRegionsOf(regions.ports), platform: platform.sql, config: { ...DEFAULT_ETL_CONFIG, enabled: false }, kv, log,
    now: () => new Date(clock.now), analytics: { key: KEY, centralDatabase: 'bionic' },
    // Pre-builds run in the background: kept so the test can await them instead of sleeping.
    reports: { prebuild: (ids) => { const p = builder.prebuild(ids); prebuilds.push(p); return p; } },
    // What the worker feeds its metrics (bionic_etl_* by region): each run names its own region.
    onRun: (_req, out, region) => { runEvents.push(etlRunEvent(out, region)); },
  });
  const analytics = createAnalyticsService({ olap, regions: etl.service.regions });
  ctx = (roles) => ({
    requestId: 't', identity: { userId: 'u-ml', username: 'analyst1', roles, region: 'ru' }, log, host: 'worker',
    ports: { etl: etl.service, analytics, regions: regions.ports }, health: async () => ({ status: 'ok', dependencies: {} }),
  });
}, 180_000);

afterAll(async () => {
  await etl?.stop();
  await regions?.close();
  await platform?.close();
  await olap?.close();
  for (const s of services.reverse()) await s.stop().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('ETL per region', () => {
  it('etl.run without a region runs every region; each region\'s readings land only in its own ClickHouse database', async () => {
    const out = await caller(ctx(['admin'])).etl.run() as EtlPerRegion<EtlRegionRunOutcome>;
    expect(out.regions.map((o) => [o.region, o.status])).toEqual(IDS.map((id) => [id, 'succeeded']));
    for (const o of out.regions) if (o.status === 'succeeded') expect(o.run.region).toBe(o.region);
    expect(runEvents.map((e) => [e.region, e.status]).sort()).toEqual(IDS.map((id) => [id, 'succeeded']).sort());
    const ru = out.regions.find((o) => o.region === 'ru');
    expect(runEvents.find((e) => e.region === 'ru')?.rowsRead).toBe(ru?.status === 'succeeded' ? ru.run.rowsRead : -1);

    for (const id of IDS) {
      const c = CUSTOMERS[id];
      const want = expectedDays(READINGS[id], c.chip).map((d) => ({ user_id: c.subject, chip_id: c.chip, ...d }));
      expect(await stats(regions.ports.get(id).olap), id).toEqual(want);
    }
    // The eu chip's stray reading in telemetry_ru was not counted anywhere: eu has its own two readings only.
    expect((await stats(regions.ports.get('eu').olap)).reduce((n, s) => n + s.actions, 0)).toBe(2);
    // The central database holds no per-user statistics.
    expect(await stats(olap)).toEqual([]);
    await Promise.all(prebuilds);
  });

  it('records runs per region (job, lock and watermark per region) and lists them by region', async () => {
    const jobs = await platform.query<{ job: string; n: string }>(`SELECT job, count(*) AS n FROM etl_runs GROUP BY job ORDER BY job`);
    expect(jobs.map((j) => j.job)).toEqual(['user_prosthesis_stats:eu', 'user_prosthesis_stats:ru', 'user_prosthesis_stats:us']);
    const all = await caller(ctx(['ml_engineer'])).etl.runs({ limit: 10 });
    expect(all.items.map((r) => r.region).sort()).toEqual(['eu', 'ru', 'us']);
    const ru = await caller(ctx(['ml_engineer'])).etl.runs({ region: 'ru' });
    expect(ru.items.map((r) => r.region)).toEqual(['ru']);
    const status = await caller(ctx(['ml_engineer'])).etl.status() as EtlPerRegion<EtlStatus>;
    expect(status.regions.map((s) => [s.region, s.job, s.watermark])).toEqual(IDS.map((id) => [id, `user_prosthesis_stats:${id}`, clock.now.toISOString()]));
    const one = await caller(ctx(['admin'])).etl.status({ region: 'eu' }) as EtlStatus;
    expect(one).toMatchObject({ region: 'eu', lastSuccess: { region: 'eu', status: 'succeeded' } });
  });

  it('one run at a time per region: a held ru lock skips ru only', async () => {
    const session = await platform.sql.reserve();
    try {
      await session`SELECT pg_advisory_lock(hashtext('bionicpro:etl:user_prosthesis_stats:ru'))`;
      clock.now = new Date('2026-03-10T12:15:00Z');
      const ru = await caller(ctx(['admin'])).etl.run({ region: 'ru' }) as EtlRegionRunOutcome;
      expect(ru).toMatchObject({ region: 'ru', status: 'skipped' });
      const eu = await caller(ctx(['admin'])).etl.run({ region: 'eu' }) as EtlRegionRunOutcome;
      expect(eu).toMatchObject({ region: 'eu', status: 'succeeded', run: { region: 'eu', watermarkBefore: '2026-03-10T12:00:00.000Z' } });
    } finally {
      await session`SELECT pg_advisory_unlock(hashtext('bionicpro:etl:user_prosthesis_stats:ru'))`;
      session.release();
    }
  });

  it('an unknown region is BAD_REQUEST; etl.* stays closed to plain users', async () => {
    for (const call of [() => caller(ctx(['admin'])).etl.run({ region: 'xx' }), () => caller(ctx(['admin'])).etl.runs({ region: 'xx' }), () => caller(ctx(['admin'])).etl.status({ region: 'xx' })]) {
      const err = await call().catch((e) => e);
      expect(err).toBeInstanceOf(TRPCError);
      expect(err.code).toBe('BAD_REQUEST');
      expect(err.message).toContain('Unknown region "xx"');
    }
    expect((await caller(ctx(['prosthesis_user'])).etl.run({ region: 'ru' }).catch((e) => e)).code).toBe('FORBIDDEN');
  });

  it('reports of a region\'s user are pre-built into and built from that region', async () => {
    for (const id of IDS) {
      const keys = await keysIn(stores[id]!);
      expect(keys.length, id).toBeGreaterThan(0);
      expect(keys.every((k) => k.startsWith(`reports/${CUSTOMERS[id].subject}/`)), keys.join()).toBe(true);
    }
    expect(await keysIn(stores.central!)).toEqual([]);
    const built = await builder.build(CUSTOMERS.ru.subject, parsePeriod('2026-03')!, 'ru');
    const report = JSON.parse(built.body) as { totals: { actions: number; errors: number }; devices: { chipId: string; model: { kind: string } | null }[] };
    const want = expectedDays(READINGS.ru, CUSTOMERS.ru.chip);
    expect(report.totals).toMatchObject({ actions: want.reduce((n, d) => n + d.actions, 0), errors: want.reduce((n, d) => n + d.errors, 0) });
    expect(report.devices).toMatchObject([{ chipId: 'CHIP-RU1', model: { kind: 'hand' } }]);
  });
});

describe('cross-region analytics on pseudonyms', () => {
  interface PseudoRow { pseudo_id: string; region: string; day: string; model_kind: string; devices: number; actions: number; errors: number; active_minutes: number }
  // Every column but the version (a re-run's own); dates come back as YYYY-MM-DD.
  const central = () => olap.query<PseudoRow & Record<string, unknown>>('SELECT * EXCEPT (_version) FROM bionic.prosthesis_stats_pseudo FINAL ORDER BY region, day');

  it('the central table holds every region\'s days under HMAC(key, region:subject), and nothing that names a person or device', async () => {
    const rows = await central();
    const want = IDS.flatMap((id) => expectedDays(READINGS[id], CUSTOMERS[id].chip).map((d) => ({
      pseudo_id: pseudonym(id, CUSTOMERS[id].subject), region: id, day: d.day, model_kind: CUSTOMERS[id].kind, devices: 1,
      actions: d.actions, errors: d.errors, active_minutes: d.active_minutes,
    }))).sort((a, b) => (a.region + a.day < b.region + b.day ? -1 : 1));
    expect(rows.map(({ pseudo_id, region, day, model_kind, devices, actions, errors, active_minutes }) =>
      ({ pseudo_id, region, day, model_kind, devices, actions, errors, active_minutes }))).toEqual(want);
    const text = JSON.stringify(rows);
    for (const id of IDS) {
      const c = CUSTOMERS[id];
      for (const secret of [c.subject, c.username, c.chip, KEY]) expect(text).not.toContain(secret);
      expect(pseudonym(id, c.subject)).not.toContain(c.subject);
    }
    const columns = (await olap.query<{ name: string }>(`SELECT name FROM system.columns WHERE database = 'bionic' AND table = 'prosthesis_stats_pseudo'`)).map((c) => c.name);
    expect(columns).not.toContain('user_id');
    expect(columns).not.toContain('chip_id');
    // The subject → pseudonym map stays in the region's own database.
    expect(await regions.ports.get('ru').olap.query('SELECT user_id, pseudo_id FROM user_pseudonyms FINAL'))
      .toEqual([{ user_id: CUSTOMERS.ru.subject, pseudo_id: pseudonym('ru', CUSTOMERS.ru.subject) }]);
    expect(await olap.query('SELECT * FROM bionic.user_pseudonyms')).toEqual([]);
  });

  it('re-running a region gives the same rows (idempotent per window)', async () => {
    const before = await central();
    clock.now = new Date('2026-03-10T12:30:00Z');
    expect((await etl.trigger({ kind: 'manual', triggeredBy: 'test', region: 'ru' })).status).toBe('succeeded');
    await etl.backfill(new Date('2026-03-09'), new Date('2026-03-10'), { region: 'us' });
    expect(await central()).toEqual(before);
    await Promise.all(prebuilds);
  });

  it('analytics.daily and analytics.summary for ML engineers; plain users are refused; bad input is BAD_REQUEST', async () => {
    const ml = caller(ctx(['ml_engineer']));
    const daily = await ml.analytics.daily({ from: '2026-03-01', to: '2026-03-31' });
    expect(daily.truncated).toBe(false);
    expect(daily.rows.map((r) => [r.region, r.day, r.pseudoId]).sort()).toEqual(
      IDS.flatMap((id) => expectedDays(READINGS[id], CUSTOMERS[id].chip).map((d) => [id, d.day, pseudonym(id, CUSTOMERS[id].subject)])).sort());
    const legs = await ml.analytics.daily({ from: '2026-03-09', to: '2026-03-09', modelKind: 'leg', limit: 1 });
    expect(legs.rows).toMatchObject([{ region: 'eu', day: '2026-03-09', modelKind: 'leg', actions: 2, errors: 1, errorRate: 0.5 }]);
    const ru = await ml.analytics.summary({ from: '2026-03-09', to: '2026-03-10', region: 'ru' });
    expect(ru.rows.map((r) => [r.region, r.day, r.users, r.actions])).toEqual(
      expectedDays(READINGS.ru, CUSTOMERS.ru.chip).map((d) => ['ru', d.day, 1, d.actions]));

    const user = await caller(ctx(['prosthesis_user'])).analytics.daily({ from: '2026-03-01', to: '2026-03-02' }).catch((e) => e);
    expect(user.code).toBe('FORBIDDEN');
    for (const input of [{ from: '2026-03-10', to: '2026-03-01' }, { from: '2025-01-01', to: '2026-03-01' }, { from: '2026-02-30', to: '2026-03-01' }, { from: '2026-03-01', to: '2026-03-02', region: 'xx' }]) {
      const err = await ml.analytics.daily(input).catch((e) => e);
      expect(err, JSON.stringify(input)).toBeInstanceOf(TRPCError);
      expect(err.code, JSON.stringify(input)).toBe('BAD_REQUEST');
    }
  });
});

describe('etl CLI with regions', () => {
  function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const childEnv = {
      PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env, MIGRATE_ON_START: 'false',
      UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:9', UPSTASH_REDIS_REST_TOKEN: 'unused-token-0123456789',
      S3_ACCESS_KEY_ID: 'unused', S3_SECRET_ACCESS_KEY: 'unused',
      CRM_DATABASE_URL: pg.databaseUrl('crm_ru'), TELEMETRY_DATABASE_URL: pg.databaseUrl('telemetry_ru'), PLATFORM_DATABASE_URL: pg.databaseUrl('platform'),
      CHDB_PATH: join(dir, 'chdb-cli'),
    };
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'workers/etl/cli.ts', ...args], { cwd: join(import.meta.dirname, '../..'), env: childEnv });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('runs --region lists one region\'s runs; an unknown region is bad usage', async () => {
    const [runs, bad] = await Promise.all([cli('runs', '--region', 'eu', '--json'), cli('status', '--region', 'xx')]);
    expect(runs.code, runs.stderr).toBe(0);
    const items = JSON.parse(runs.stdout) as { region: string }[];
    expect(items.length).toBeGreaterThan(0);
    expect(new Set(items.map((i) => i.region))).toEqual(new Set(['eu']));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown region "xx"');
  });
});
