/**
 * Data residency, analytics: CDC runs per region. Embedded PostgreSQL with the central `crm` and
 * `platform` and the regions' `crm_<id>`, chDB and the PostgreSQL bus; the worker's configuration
 * parsed from environment variables only, its region stores (workers/regions/stores.ts) and CDC
 * started as workers/worker.ts starts it (`startRegionalCdc`).
 *
 * Each region's ClickHouse database `FINAL` equals its own CRM exactly, after the initial load and
 * after streamed inserts, updates, key changes and deletes; no region's rows reach another region's
 * database or the central one, and the central CRM is not captured at all. `cdc.status` answers per
 * region (and says which regions there are when none is named), the metrics of the regions live side
 * by side, and a third region added by configuration alone is captured too, while the others resume
 * from their slots.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import postgres from 'postgres';
import type { RouterContext } from '../../router/context.ts';
import { workerRouter } from '../../router/root.ts';
import { createCallerFactory } from '../../router/trpc.ts';
import type { BionicTopics } from '../../shared/bus/topics.ts';
import { parseWorkerConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/log.ts';
import { createClickHouseOlap, type ClickHouseOlap } from '../../workers/adapters/olap-clickhouse.ts';
import { createPostgresOltp, type PostgresOltp } from '../../workers/adapters/oltp-postgres.ts';
import { loadTopicSpecs } from '../../workers/bus/index.ts';
import type { PostgresBus } from '../../workers/bus/postgres-bus.ts';
import { startRegionalCdc, type RegionalCdcHandle } from '../../workers/cdc/regions.ts';
import { addWorkerCollectors } from '../../workers/metrics/collectors.ts';
import { createWorkerRegions, type WorkerRegions } from '../../workers/regions/stores.ts';
import { CdcEvents, diffReplica, openBus, startCdcDatabases, type CdcDatabases } from '../support/cdc-stack.ts';

const log = createLogger({ level: 'warn' });
/** Ids apart per region, as the launcher numbers them: a row's id alone tells whose it is. */
const BASE: Record<string, number> = { ru: 1_000, eu: 2_000, us: 3_000, central: 9_000 };

let db: CdcDatabases;
let central: PostgresOltp;
let olap: ClickHouseOlap;
let bus: PostgresBus<BionicTopics>;
let platform: postgres.Sql;
let stores: WorkerRegions;
let cdc: RegionalCdcHandle;
let registry: Registry;
const events = new Map<string, CdcEvents>();
const eventsOf = (region: string) => events.get(region) ?? events.set(region, new CdcEvents()).get(region)!;
const sqlOf = (region: string) => stores.ports.get(region).crm.sql;

/** The worker's environment for `regions`, as a deployment sets it. */
function workerEnv(regions: string[]): Record<string, string> {
  const env: Record<string, string> = {
    UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:9', UPSTASH_REDIS_REST_TOKEN: 'a-long-enough-token', S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's',
    CRM_DATABASE_URL: db.crmUrl, TELEMETRY_DATABASE_URL: db.pg.databaseUrl('telemetry'), PLATFORM_DATABASE_URL: db.platformUrl, CHDB_PATH: db.chdbPath,
    CDC_HEARTBEAT_MS: '100', CDC_ACK_INTERVAL_MS: '50', REGIONS: regions.join(','),
  };
  for (const id of regions) {
    env[`REGION_${id.toUpperCase()}_CRM_DATABASE_URL`] = db.pg.databaseUrl(`crm_${id}`);
    env[`REGION_${id.toUpperCase()}_TELEMETRY_DATABASE_URL`] = db.pg.databaseUrl(`telemetry_${id}`);
  }
  return env;
}

/**
 * Starts the worker's region stores and CDC for `regions`, as workers/worker.ts does; `seeded` are
 * regions to fill once their databases are migrated, before CDC starts (their first load has rows).
 */
async function startWorkerCdc(regions: string[], seeded: string[]) {
  const config = parseWorkerConfig(workerEnv(regions));
  stores = createWorkerRegions(config, { oltp: { crm: central, telemetry: null! }, objectStore: null!, olap });
  await stores.migrate();
  for (const id of seeded) await seed(sqlOf(id), id);
  registry = new Registry();
  cdc = await startRegionalCdc({
    regions: stores.ports, bus, log, options: { ...config.cdc.options, statusIntervalMs: 1_000 }, registry, topics: await loadTopicSpecs(),
    onEvent: (region, e) => eventsOf(region).push(e),
  });
  addWorkerCollectors(registry, { cdc, bus, groups: () => new Map(), platform, log });
}

async function createRegionDatabases(id: string) {
  await db.pg.ensureDatabase(`crm_${id}`);
  await db.pg.ensureDatabase(`telemetry_${id}`);
}

/** Customers with accounts and devices, models and orders; every name and id marked with `tag`. */
async function seed(sql: postgres.Sql, tag: string) {
  const base = BASE[tag]!;
  await sql`INSERT INTO prosthesis_models (name, kind, manufacturer, price) SELECT 'model-' || g, 'hand', 'BionicPRO', 1000 + g FROM generate_series(1, 3) g`;
  await sql`INSERT INTO customers (id, username, full_name, email, phone, region)
    SELECT ${base}::bigint + g, ${tag} || '-customer-' || g, 'Person ' || ${tag} || ' ' || g, ${tag} || '.' || g || '@example.test', '+1 555 ' || g, ${tag}
    FROM generate_series(1, 20) g`;
  await sql`INSERT INTO customer_accounts (customer_id, balance) SELECT id, 1000 + id FROM customers`;
  await sql`INSERT INTO prostheses (chip_id, model_id, customer_id, serial)
    SELECT ${tag} || '-chip-' || g, 1, ${base}::bigint + g, ${tag} || '-serial-' || g FROM generate_series(1, 10) g`;
  await sql`INSERT INTO orders (id, customer_id, model_id, price)
    SELECT ${base}::bigint + g, ${base}::bigint + 1 + g % 20, 1 + g % 3, 100 + g FROM generate_series(1, 30) g`;
}

/** Waits until everything committed so far is in the region's ClickHouse and no load is running. */
async function inStep(region: string) {
  const ev = eventsOf(region);
  await ev.acknowledgedPast(await db.walPosition());
  for (;;) {
    const since = ev.seen.length;
    const busy = (await cdc.status(region)).tables.filter((t) => t.status !== 'streaming').map((t) => t.table);
    if (busy.length === 0) return;
    const loaded = (e: { type: string; table?: string }) => e.type === 'snapshot' && busy.includes(e.table!);
    if (!ev.seen.slice(since).some(loaded)) await ev.until(loaded, `a load of ${busy.join(', ')} in ${region}`);
  }
}

/** Every captured table of the region's CRM equals its replica in the region's database, row for row. */
async function expectRegionReplicated(region: string) {
  const tables = (await cdc.status(region)).tables.map((t) => t.table);
  expect(tables).toEqual(expect.arrayContaining(['customers', 'orders', 'prostheses', 'customer_accounts', 'prosthesis_models']));
  for (const table of tables) {
    const d = await diffReplica(sqlOf(region), stores.ports.get(region).olap, table);
    expect({ region, table, missing: d.missing, extra: d.extra, different: d.different }).toEqual({ region, table, missing: [], extra: [], different: [] });
  }
}

/** Customers in a region's replica, by the tag their rows were seeded with. */
async function replicaCustomersByTag(region: string): Promise<Record<string, number>> {
  const rows = await stores.ports.get(region).olap.query<{ tag: string; n: string }>(
    "SELECT splitByChar('-', username)[1] AS tag, count() AS n FROM crm_customers FINAL GROUP BY tag ORDER BY tag");
  return Object.fromEntries(rows.map((r) => [r.tag, Number(r.n)]));
}

/** `crm_*` tables of the central ClickHouse database (none: CDC writes only to the regions'). */
const centralReplicas = async () =>
  (await olap.query<{ name: string }>("SELECT name FROM system.tables WHERE database = 'bionic' AND (startsWith(name, 'crm_') OR startsWith(name, 'cdc_')) ORDER BY name"))
    .map((r) => r.name);

const slots = async () => db.crm<{ slot_name: string; database: string }[]>`SELECT slot_name, database FROM pg_replication_slots ORDER BY slot_name`;

const admin = (): RouterContext => ({
  requestId: 't', log, host: 'worker', health: async () => ({ status: 'ok', dependencies: {} }),
  identity: { userId: 'admin', username: 'admin', roles: ['admin'] }, ports: { cdc },
});
const caller = createCallerFactory(workerRouter);

/** `bionic cdc …` as an operator runs it, with the worker's environment (its exit code and output). */
const cdcCli = (args: string[], regions: string[]) => new Promise<{ code: number; out: string; err: string }>((resolve) => {
  execFile(process.execPath, ['bin/bionic.mjs', 'cdc', ...args], {
    cwd: join(import.meta.dirname, '../..'), env: { ...process.env, ...workerEnv(regions), BIONIC_DATA_DIR: db.dir, LOG_LEVEL: 'warn' },
  }, (error, out, err) => resolve({ code: error ? Number(error.code ?? 1) : 0, out, err }));
});

beforeAll(async () => {
  db = await startCdcDatabases('regions-cdc');
  await Promise.all(['ru', 'eu'].map(createRegionDatabases));
  central = createPostgresOltp(db.crmUrl, { max: 2 });
  platform = postgres(db.platformUrl, { max: 2, onnotice: () => {} });
  olap = await createClickHouseOlap({ user: 'default', password: '', database: 'bionic', chdbPath: db.chdbPath });
  bus = await openBus(db.platformUrl);
  await seed(db.crm, 'central');
  await startWorkerCdc(['ru', 'eu'], ['ru', 'eu']);
  await Promise.all(['ru', 'eu'].map(inStep));
}, 180_000);

afterAll(async () => {
  await cdc?.stop();
  await stores?.close();
  await bus?.close();
  await olap?.close();
  await central?.close();
  await platform?.end({ timeout: 5 });
  await db?.stop();
}, 60_000);

describe('CDC per region', () => {
  it("replicates each region's CRM into its own ClickHouse database only, never the central CRM", async () => {
    for (const id of ['ru', 'eu']) await expectRegionReplicated(id);
    expect(await replicaCustomersByTag('ru')).toEqual({ ru: 20 });
    expect(await replicaCustomersByTag('eu')).toEqual({ eu: 20 });
    expect(await centralReplicas()).toEqual([]);
    // One slot per region, on its own CRM; none on the central one.
    expect(await slots()).toEqual([{ slot_name: 'bionic_cdc_eu', database: 'crm_eu' }, { slot_name: 'bionic_cdc_ru', database: 'crm_ru' }]);
  });

  it("streams each region's inserts, updates, key changes and deletes into its own database", async () => {
    for (const id of ['ru', 'eu']) {
      const sql = sqlOf(id);
      const base = BASE[id]!;
      await sql.begin(async (tx) => {
        await tx`INSERT INTO customers (id, username, full_name, email, region) VALUES (${base + 21}, ${`${id}-customer-21`}, 'New One', ${`${id}.21@example.test`}, ${id})`;
        await tx`INSERT INTO customer_accounts (customer_id, balance) VALUES (${base + 21}, 5)`;
        await tx`INSERT INTO orders (id, customer_id, model_id, price) VALUES (${base + 100}, ${base + 21}, 2, 77.5)`;
      });
      await sql`UPDATE orders SET status = 'APPROVED', price = price + 1 WHERE id % 3 = 0`;
      await sql`UPDATE customers SET full_name = 'Renamed ' || id, phone = NULL WHERE id % 4 = 0`;
      await sql`INSERT INTO customers (id, username, full_name, email, region) VALUES (${base + 22}, ${`${id}-customer-22`}, 'Moving', ${`${id}.22@example.test`}, ${id})`;
      await sql`UPDATE customers SET id = ${base + 500} WHERE id = ${base + 22}`;
      await sql`DELETE FROM orders WHERE id % 5 = 0`;
      await sql`INSERT INTO audit_log (actor, action, entity) SELECT ${id}, 'test', 'order' FROM generate_series(1, 5)`;
      await sql`DELETE FROM audit_log WHERE id % 2 = 0`;
    }
    await Promise.all(['ru', 'eu'].map(inStep));
    for (const id of ['ru', 'eu']) await expectRegionReplicated(id);
    expect(await replicaCustomersByTag('ru')).toEqual({ ru: 22 });
    expect(await replicaCustomersByTag('eu')).toEqual({ eu: 22 });
    expect(await centralReplicas()).toEqual([]);
    // The changes went over each region's own topics; the central family carries nothing.
    const topics = await platform<{ name: string; partitions: number; messages: number }[]>`
      SELECT t.name, t.partitions, (SELECT count(*)::int FROM bus_messages m WHERE m.topic_id = t.id) AS messages
      FROM bus_topics t WHERE t.name LIKE 'crm%' ORDER BY t.name`;
    const messages = (prefix: string) => topics.filter((t) => t.name.startsWith(prefix)).reduce((n, t) => n + t.messages, 0);
    expect(messages('crm_ru.public.')).toBeGreaterThan(0);
    expect(messages('crm_eu.public.')).toBeGreaterThan(0);
    expect(messages('crm.public.')).toBe(0);
    // Partitions as infra/kafka/topics.json gives crm.public.orders.
    expect(topics.find((t) => t.name === 'crm_eu.public.orders')?.partitions).toBe(12);
    // Each region's sink is its own consumer group (the slot is acknowledged by its offsets only).
    const groups = (await platform<{ name: string }[]>`SELECT name FROM bus_groups WHERE name LIKE 'cdc%' ORDER BY name`).map((g) => g.name);
    expect(groups).toEqual(['cdc-sink-eu', 'cdc-sink-ru']);
  });

  it('answers cdc.status per region, every region\'s when none is named', async () => {
    for (const id of ['ru', 'eu']) {
      const s = await caller(admin()).cdc.status({ region: id });
      if ('regions' in s) throw new Error('cdc.status with a region answered every region');
      expect(s).toMatchObject({ region: id, state: 'streaming', slot: { name: `bionic_cdc_${id}`, exists: true, active: true } });
      expect(s.tables.every((t) => t.status === 'streaming')).toBe(true);
    }
    const all = await caller(admin()).cdc.status();
    expect('regions' in all && all.regions.map((s) => [s.region, s.slot.name, s.state])).toEqual([['ru', 'bionic_cdc_ru', 'streaming'], ['eu', 'bionic_cdc_eu', 'streaming']]);
    const unknown = await caller(admin()).cdc.status({ region: 'us' }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(TRPCError);
    expect(unknown).toMatchObject({ code: 'BAD_REQUEST', message: 'CDC does not run for region "us" (regions: ru, eu)' });
    const denied = await caller({ ...admin(), identity: { userId: 'op', username: 'op', roles: ['crm_operator'] } }).cdc.status({ region: 'ru' }).catch((e: unknown) => e);
    expect(denied).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('keeps the metrics of the regions apart in one registry', async () => {
    const text = await registry.metrics();
    for (const id of ['ru', 'eu']) {
      expect(text).toMatch(new RegExp(`^cdc_lag_seconds\\{region="${id}"\\} `, 'm'));
      expect(text).toMatch(new RegExp(`^cdc_changes_total\\{region="${id}",table="orders",op="u"\\} [1-9]`, 'm'));
      expect(text).toMatch(new RegExp(`^cdc_snapshot_rows_total\\{region="${id}",table="customers"\\} 20$`, 'm'));
      expect(text).toMatch(new RegExp(`^bionic_cdc_lag_seconds\\{slot="bionic_cdc_${id}"\\} `, 'm'));
    }
    expect(text).not.toMatch(/region="default"/);
  });

  it('the CLI acts on the region --region names, shows every region\'s status without it, and refuses to guess for changes', async () => {
    const [none, unknown, status, every] = await Promise.all([
      cdcCli(['drop-slot'], ['ru', 'eu']), cdcCli(['drop-slot', '--region', 'us'], ['ru', 'eu']), cdcCli(['status', '--json', '--region', 'ru'], ['ru', 'eu']),
      cdcCli(['status', '--json'], ['ru', 'eu']),
    ]);
    expect(none).toMatchObject({ code: 2, err: expect.stringContaining('--region is required: CDC runs for several regions (ru, eu)') });
    expect(every.code, every.err).toBe(0);
    expect((JSON.parse(every.out) as { region: string; slot: { name: string } }[]).map((x) => [x.region, x.slot.name]))
      .toEqual([['ru', 'bionic_cdc_ru'], ['eu', 'bionic_cdc_eu']]);
    expect(unknown).toMatchObject({ code: 2, err: expect.stringContaining('CDC does not run for region "us"') });
    expect(status.code, status.err).toBe(0);
    const s = JSON.parse(status.out) as { region: string; slot: { name: string; active: boolean }; publication: string[] };
    expect(s).toMatchObject({ region: 'ru', slot: { name: 'bionic_cdc_ru', active: true } });
    expect(s.publication).toContain('orders');
    // A resync of one region's table: that region's capture reloads it; the other region is untouched.
    const loads = (id: string) => eventsOf(id).seen.filter((e) => e.type === 'snapshot' && e.table === 'orders').length;
    const [ru, eu] = [loads('ru'), loads('eu')];
    const reloaded = eventsOf('eu').until((e) => e.type === 'snapshot' && e.table === 'orders', 'the resync of eu orders');
    const resync = await cdcCli(['resync', 'orders', '--region', 'eu', '--wait'], ['ru', 'eu']);
    expect(resync.code, resync.err).toBe(0);
    await reloaded;
    await inStep('eu');
    await expectRegionReplicated('eu');
    expect([loads('ru'), loads('eu')]).toEqual([ru, eu + 1]);
    // Nothing was dropped by the refused command.
    expect((await slots()).map((x) => x.slot_name)).toEqual(['bionic_cdc_eu', 'bionic_cdc_ru']);
  });

  it('captures a region added by configuration alone; the others resume from their slots', async () => {
    await cdc.stop();
    // Written while no CDC runs: the slot holds it.
    await sqlOf('ru')`UPDATE orders SET status = 'REJECTED' WHERE id = ${BASE.ru! + 1}`;
    await stores.close();
    await createRegionDatabases('us');
    await startWorkerCdc(['ru', 'eu', 'us'], ['us']);
    await sqlOf('us')`UPDATE orders SET status = 'APPROVED' WHERE id % 2 = 0`;
    await Promise.all(['ru', 'eu', 'us'].map(inStep));
    for (const id of ['ru', 'eu', 'us']) await expectRegionReplicated(id);
    expect(await replicaCustomersByTag('us')).toEqual({ us: 20 });
    expect(await replicaCustomersByTag('ru')).toEqual({ ru: 22 });
    const [rejected] = await stores.ports.get('ru').olap.query<{ status: string }>(`SELECT status FROM crm_orders FINAL WHERE id = ${BASE.ru! + 1}`);
    expect(rejected?.status).toBe('REJECTED');
    expect(await centralReplicas()).toEqual([]);
    expect((await slots()).map((s) => s.slot_name)).toEqual(['bionic_cdc_eu', 'bionic_cdc_ru', 'bionic_cdc_us']);
    expect(await caller(admin()).cdc.status({ region: 'us' })).toMatchObject({ region: 'us', slot: { name: 'bionic_cdc_us', active: true } });
    const all = await caller(admin()).cdc.status();
    expect('regions' in all && all.regions.map((r) => r.region)).toEqual(['ru', 'eu', 'us']);
  });
});
