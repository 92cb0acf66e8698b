/**
 * CDC end to end on real services: embedded PostgreSQL (wal_level=logical) for the CRM and the
 * platform bus, chDB in a temp directory, CDC running in this process. Every check compares the CRM's
 * rows with the replica's `FINAL` rows column by column, after CDC acknowledged past the last write.
 */
import { TRPCError } from '@trpc/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cdcRouter } from '../../router/routers/cdc.ts';
import { createCallerFactory, router } from '../../router/trpc.ts';
import type { RouterContext } from '../../router/context.ts';
import { createLogger } from '../../shared/log.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import type { PostgresBus } from '../../workers/bus/postgres-bus.ts';
import type { BionicTopics } from '../../shared/bus/topics.ts';
import { startCdc, type CdcEvent, type CdcHandle } from '../../workers/cdc/index.ts';
import { parseLsn } from '../../workers/cdc/lsn.ts';
import { eventually } from '../contract/bus-support.ts';
import { CdcEvents, diffReplica, openBus, openOlap, startCdcDatabases, type CdcDatabases } from '../support/cdc-stack.ts';
import { seedCrm } from '../support/cdc-workload.ts';

const TABLES = ['customers', 'customer_accounts', 'prosthesis_models', 'prostheses', 'orders', 'order_reservations', 'audit_log', 'cdc_kinds', 'cdc_shapes'];
const log = createLogger({ level: 'warn' });
let db: CdcDatabases;
let olap: Olap;
let bus: PostgresBus<BionicTopics>;
let cdc: CdcHandle;
const events = new CdcEvents();

/** Waits until everything committed so far is in ClickHouse and no snapshot is running. */
async function inStep() {
  await events.acknowledgedPast(await db.walPosition());
  for (;;) {
    const since = events.seen.length;
    const busy = (await cdc.status()).tables.filter((x) => x.status === 'snapshotting' || x.status === 'pending').map((x) => x.table);
    if (busy.length === 0) return;
    const loaded = (e: CdcEvent) => e.type === 'snapshot' && busy.includes(e.table);
    if (!events.seen.slice(since).some(loaded)) await events.until(loaded, `a load of ${busy.join(', ')}`);
  }
}

async function expectReplicasEqual(tables = TABLES) {
  for (const table of tables) {
    const d = await diffReplica(db.crm, olap, table);
    expect({ table, ...d.counts, missing: d.missing, extra: d.extra, different: d.different }).toEqual({ table, missing: [], extra: [], different: [] });
  }
}

const bigText = (seed: number) => Array.from({ length: 700 }, (_, i) => ((seed * 7919 + i * 104729) % 1_000_003).toString(36).padStart(4, '0')).join('') + '-'.repeat(seed % 3);

beforeAll(async () => {
  db = await startCdcDatabases('cdc');
  await db.crm`CREATE TABLE cdc_kinds (
    id bigint PRIMARY KEY, i2 smallint, i4 integer, f4 real, f8 double precision, n numeric(20, 6), nn numeric, b boolean,
    d date, ts timestamp, tstz timestamptz, u uuid, j jsonb, js json, t text, vc varchar(10), arr integer[], iv interval, by bytea, big text)`;
  await db.crm`CREATE TABLE cdc_shapes (id integer PRIMARY KEY, code integer NOT NULL, label text)`;
  await seedCrm(db.crm, { customers: 300, orders: 600 });
  await db.crm`INSERT INTO cdc_kinds SELECT g, g, g * 1000, g / 3.0, g / 7.0, g * 1.5, g::numeric / 9, g % 2 = 0, DATE '2024-02-28' + g,
    TIMESTAMP '2024-05-01 10:20:30.5' + g * interval '1 hour', TIMESTAMPTZ '2024-05-01 10:20:30.123456+02' + g * interval '1 minute',
    gen_random_uuid(), jsonb_build_object('g', g, 'nested', jsonb_build_array(1, 'two')), '{"raw" :  true}', 'line ' || g || E'\\n"quoted"',
    left('v' || g, 10), ARRAY[g, g + 1], g * interval '90 minutes', decode('00ff' || lpad(to_hex(g), 2, '0'), 'hex'), NULL
    FROM generate_series(1, 50) g`;
  await db.crm`UPDATE cdc_kinds SET big = ${bigText(1)} WHERE id = 1`;
  await db.crm`INSERT INTO cdc_shapes SELECT g, g * 10, 'label ' || g FROM generate_series(1, 20) g`;
  olap = await openOlap(db.chdbPath);
  bus = await openBus(db.platformUrl);
  cdc = await startCdc({
    crmUrl: db.crmUrl, olap, bus, log,
    options: { heartbeatMs: 100, ackIntervalMs: 50, statusIntervalMs: 1_000, lagAlertSeconds: 30, batchMax: 500 },
    onEvent: events.push,
  });
  await inStep();
}, 180_000);

afterAll(async () => {
  await cdc?.stop();
  await bus?.close();
  await olap?.close();
  await db?.stop();
}, 60_000);

describe('CDC: CRM PostgreSQL → bus → ClickHouse', () => {
  it('loads the existing rows with the initial snapshot, every type exact', async () => {
    const status = await cdc.status();
    expect(status.tables.map((t) => t.table).sort()).toEqual([...TABLES].sort());
    expect(status.tables.find((t) => t.table === 'customers')?.snapshotRows).toBe(300);
    expect(status.tables.find((t) => t.table === 'orders')?.snapshotRows).toBe(600);
    await expectReplicasEqual();
  });

  it('streams inserts, updates, primary-key changes, deletes and multi-table transactions', async () => {
    const [c] = await db.crm`INSERT INTO customers (username, full_name, email) VALUES ('fresh', 'Fresh One', 'fresh@example.com') RETURNING id`;
    await db.crm`UPDATE customers SET full_name = 'Renamed', phone = NULL WHERE id BETWEEN 10 AND 60`;
    await db.crm`UPDATE orders SET price = price * 2, status = 'APPROVED' WHERE id % 5 = 0`;
    // Primary-key changes: one row; a batch; a key moving onto a key freed earlier in the same transaction.
    await db.crm`UPDATE customers SET id = 900001 WHERE id = ${c!.id}`;
    await db.crm`UPDATE cdc_shapes SET id = id + 100 WHERE id BETWEEN 10 AND 14`;
    await db.crm.begin(async (tx) => {
      await tx`UPDATE cdc_shapes SET id = 1000 WHERE id = 20`;
      await tx`UPDATE cdc_shapes SET id = 20, label = 'moved in' WHERE id = 19`;
    });
    await db.crm`DELETE FROM orders WHERE id % 7 = 0`;
    await db.crm.begin(async (tx) => {
      const [n] = await tx`INSERT INTO customers (username, full_name, email) VALUES ('multi', 'Multi Table', 'multi@example.com') RETURNING id`;
      await tx`INSERT INTO customer_accounts (customer_id, balance) VALUES (${n!.id}, 42.5)`;
      await tx`INSERT INTO orders (customer_id, model_id, price) VALUES (${n!.id}, 2, 99.99)`;
      await tx`UPDATE prosthesis_models SET price = price + 0.01`;
      await tx`DELETE FROM audit_log`;
      await tx`INSERT INTO audit_log (actor, action, entity, details) VALUES ('t', 'multi', 'customer', ${tx.json({ id: n!.id })})`;
    });
    await db.crm`UPDATE cdc_kinds SET f8 = f8 * -1, tstz = tstz - interval '3 days', j = j || '{"x": null}', arr = arr || 9, b = NOT b WHERE id % 2 = 1`;
    await inStep();
    await expectReplicasEqual();
  });

  it('two updates of one row in one transaction: the later wins', async () => {
    await db.crm.begin(async (tx) => {
      await tx`UPDATE orders SET status = 'APPROVED', note = 'first' WHERE id = 1`;
      await tx`UPDATE orders SET status = 'REJECTED', note = 'second' WHERE id = 1`;
      await tx`UPDATE orders SET price = 1 WHERE id = 2`;
      await tx`DELETE FROM orders WHERE id = 2`;
      await tx`INSERT INTO orders (id, customer_id, model_id, price, note) VALUES (2, 1, 1, 3, 're-inserted')`;
    });
    await inStep();
    const rows = await olap.query<{ id: string; status: string; note: string; price: number }>('SELECT id, status, note, price FROM crm_orders FINAL WHERE id IN (1, 2) ORDER BY id');
    expect(rows).toEqual([{ id: '1', status: 'REJECTED', note: 'second', price: expect.any(Number) }, { id: '2', status: 'DRAFT', note: 're-inserted', price: 3 }]);
    await expectReplicasEqual(['orders']);
  });

  it('truncates, cascading ones included, with changes before and after in the same transaction', async () => {
    await db.crm.begin(async (tx) => {
      await tx`INSERT INTO audit_log (actor, action, entity) VALUES ('t', 'before', 'x')`;
      await tx`TRUNCATE audit_log`;
      await tx`INSERT INTO audit_log (actor, action, entity) VALUES ('t', 'after', 'x')`;
    });
    await db.crm`TRUNCATE cdc_shapes`;
    await db.crm`INSERT INTO cdc_shapes VALUES (1, 1, 'one'), (2, 2, 'two')`;
    await db.crm.begin(async (tx) => {
      await tx`UPDATE orders SET note = 'doomed' WHERE id = 3`;
      await tx`TRUNCATE customers CASCADE`; // also orders, accounts, prostheses, reservations
      await tx`INSERT INTO customers (id, username, full_name, email) VALUES (1, 'again', 'Back Again', 'again@example.com')`;
      await tx`INSERT INTO orders (customer_id, model_id, price) VALUES (1, 1, 10)`;
    });
    await inStep();
    expect((await olap.query<{ n: string }>('SELECT count() AS n FROM crm_customers FINAL'))[0]!.n).toBe('1');
    await expectReplicasEqual();
    await seedCrm(db.crm, { customers: 50, orders: 80 }); // for the tests after this one
    await inStep();
  });

  it('keeps unchanged TOAST values of an update, also across a primary-key change', async () => {
    await db.crm`UPDATE cdc_kinds SET big = ${bigText(2)} WHERE id IN (2, 3)`;
    await inStep();
    // `big` is stored out of line and not part of these updates: pgoutput sends it as "unchanged".
    await db.crm`UPDATE cdc_kinds SET t = 'touched' WHERE id IN (1, 2, 3)`;
    await db.crm`UPDATE cdc_kinds SET id = 1003, i4 = -1 WHERE id = 3`;
    await db.crm.begin(async (tx) => {
      await tx`UPDATE cdc_kinds SET big = ${bigText(4)} WHERE id = 1`;
      await tx`UPDATE cdc_kinds SET t = 'touched twice' WHERE id = 1`;
    });
    await inStep();
    const big = await olap.query<{ id: string; len: string }>('SELECT id, length(big) AS len FROM crm_cdc_kinds FINAL WHERE id IN (1, 2, 1003) ORDER BY id');
    expect(big.map((r) => Number(r.len))).toEqual([bigText(4).length, bigText(2).length, bigText(2).length]);
    await expectReplicasEqual(['cdc_kinds']);
  });

  it('reads unchanged TOAST values only once their transaction is visible (commit in the WAL before the backend finishes)', async () => {
    // A commit waiting for a synchronous standby that never answers is in the WAL, so the slot streams it, but
    // other sessions do not see it yet: the window a committing backend passes through, held open. Only the
    // writer below waits (everyone else commits `local`).
    await db.crm.unsafe(`ALTER SYSTEM SET synchronous_commit = 'local'`);
    await db.crm.unsafe(`ALTER SYSTEM SET synchronous_standby_names = 'bionic_ghost_standby'`);
    await db.crm`SELECT pg_reload_conf()`;
    const writer = await db.crm.reserve();
    try {
      await writer.unsafe(`SET synchronous_commit = on`);
      const [{ pid }] = await writer`SELECT pg_backend_pid() AS pid` as unknown as [{ pid: number }];
      const [{ l }] = await db.crm`SELECT pg_current_wal_lsn()::text AS l` as unknown as [{ l: string }];
      const before = parseLsn(l);
      await writer.unsafe('BEGIN');
      await writer`UPDATE cdc_kinds SET big = ${bigText(5)} WHERE id = 2`;
      await writer`UPDATE cdc_kinds SET t = 'touched while invisible' WHERE id = 2`;
      const commit = writer.unsafe('COMMIT').execute();
      await eventually(async () => (await db.crm`SELECT 1 FROM pg_stat_activity WHERE pid = ${pid} AND wait_event = 'SyncRep'`).length === 1, 'the commit to wait for the standby');
      // Either CDC wrote the change (reading the row as it was: the old behaviour) or it waits for the commit to show.
      const sunk = events.until((e) => e.type === 'sunk' && e.table === 'cdc_kinds' && parseLsn(e.lsn) >= before, 'cdc_kinds written');
      const waiting = eventually(async () => (await db.crm`
        SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%pg_visible_in_snapshot%'`).length > 0,
      'CDC to wait for the transaction to become visible');
      await Promise.race([sunk, waiting]);
      sunk.catch(() => {});
      waiting.catch(() => {});
      await db.crm`SELECT pg_cancel_backend(${pid})`;
      await commit;
    } finally {
      await db.crm`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'`;
      await writer.unsafe('ROLLBACK').catch(() => {});
      writer.release();
      await db.crm.unsafe(`ALTER SYSTEM RESET synchronous_standby_names`);
      await db.crm.unsafe(`ALTER SYSTEM RESET synchronous_commit`);
      await db.crm`SELECT pg_reload_conf()`;
    }
    await inStep();
    const [row] = await olap.query<{ big: string; t: string }>('SELECT big, t FROM crm_cdc_kinds FINAL WHERE id = 2');
    expect(row?.t).toBe('touched while invisible');
    expect(row?.big === bigText(5)).toBe(true);
    await expectReplicasEqual(['cdc_kinds']);
  });

  it('adds a column that appears while streaming, without a restart; existing rows show its default', async () => {
    await db.crm`ALTER TABLE prosthesis_models ADD COLUMN warranty_years integer NOT NULL DEFAULT 2`;
    await db.crm`ALTER TABLE prosthesis_models ADD COLUMN certified_at timestamptz`;
    await db.crm`INSERT INTO prosthesis_models (name, kind, manufacturer, price, warranty_years, certified_at) VALUES ('new-model', 'leg', 'acme', 5, 5, now())`;
    await db.crm`UPDATE prosthesis_models SET certified_at = now() WHERE id = 1`;
    await inStep();
    expect(events.seen.filter((e) => e.type === 'schema' && e.kind === 'added').map((e) => (e as { column: string }).column)).toEqual(['warranty_years', 'certified_at']);
    const rows = await olap.query<{ name: string; warranty_years: number }>('SELECT name, warranty_years FROM crm_prosthesis_models FINAL ORDER BY id');
    expect(rows.filter((r) => r.name !== 'new-model').every((r) => r.warranty_years === 2)).toBe(true);
    expect(rows.find((r) => r.name === 'new-model')?.warranty_years).toBe(5);
    await expectReplicasEqual(['prosthesis_models']);
  });

  it('reports a dropped column in logs and metrics and keeps streaming the table', async () => {
    await db.crm`ALTER TABLE cdc_kinds DROP COLUMN vc`;
    await db.crm`INSERT INTO cdc_kinds (id, i4, t) VALUES (5000, 1, 'after the drop')`;
    await db.crm`UPDATE cdc_kinds SET i2 = -i2 WHERE id <= 10`;
    await inStep();
    expect(events.seen.some((e) => e.type === 'schema' && e.kind === 'dropped' && e.table === 'cdc_kinds' && e.column === 'vc')).toBe(true);
    expect(await cdc.registry.getSingleMetricAsString('cdc_schema_changes_total')).toMatch(/table="cdc_kinds",kind="dropped"} 1/);
    expect((await cdc.status()).tables.find((t) => t.table === 'cdc_kinds')?.status).toBe('streaming');
    await expectReplicasEqual(['cdc_kinds']);
  });

  it('keeps the slot moving while captured tables are idle (heartbeat)', async () => {
    const confirmed = async () => parseLsn((await db.crm`SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = 'bionic_cdc'`)[0]!.l as string);
    const before = await confirmed();
    const acks = events.seen.filter((e) => e.type === 'acknowledged').length;
    await events.until(() => events.seen.filter((e) => e.type === 'acknowledged').length >= acks + 3, 'three more acknowledgements');
    await eventually(async () => (await confirmed()) > before, 'the slot\'s confirmed position to move');
    const status = await cdc.status();
    expect(status.lagSeconds).toBeLessThan(5);
    expect(status.lagBytes).toBeLessThan(1 << 20);
    expect(status.capture.lastHeartbeatAt).not.toBeNull();
  });

  it('reconnects by itself when the replication connection is cut, and loses nothing', async () => {
    const [slot] = await db.crm`SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'bionic_cdc'`;
    const streamed = events.seen.filter((e) => e.type === 'streaming').length;
    await db.crm`INSERT INTO audit_log (actor, action, entity) VALUES ('t', 'before the cut', 'x')`;
    await db.crm`SELECT pg_terminate_backend(${slot!.active_pid})`;
    await db.crm`INSERT INTO audit_log (actor, action, entity) VALUES ('t', 'while cut', 'x')`;
    await events.until(() => events.seen.filter((e) => e.type === 'streaming').length > streamed, 'streaming again');
    await db.crm`INSERT INTO audit_log (actor, action, entity) VALUES ('t', 'after the cut', 'x')`;
    await inStep();
    await expectReplicasEqual(['audit_log']);
    expect(await cdc.registry.getSingleMetricAsString('cdc_reconnects_total')).toMatch(/cdc_reconnects_total\{region="default"\} [1-9]/);
    expect((await cdc.status()).state).toBe('streaming');
  });

  it('idempotent: a second sink replaying every message from the start changes nothing', async () => {
    const replay = await startCdc({ crmUrl: db.crmUrl, olap, bus, log, options: { capture: false, sink: true, sinkGroup: 'replay-all', tables: TABLES, statusIntervalMs: 60_000 } });
    try {
      const topics = TABLES.map((t) => `crm.public.${t}`);
      await eventually(async () => (await bus.lag('replay-all', topics)).every((p) => p.lag === 0 && p.committedOffset !== null), 'the replay to catch up', 60_000);
    } finally {
      await replay.stop();
    }
    await expectReplicasEqual();
  });

  it('quarantines a table whose column changes type, keeps the others going, and rebuilds it on resync', async () => {
    await db.crm`ALTER TABLE cdc_shapes ALTER COLUMN code TYPE text USING 'code-' || code`;
    await db.crm`INSERT INTO cdc_shapes VALUES (50, 'code-50', 'after the change')`;
    await db.crm`UPDATE customers SET full_name = 'Still flowing' WHERE id = 1`;
    await inStep();
    const status = await cdc.status();
    const shapes = status.tables.find((t) => t.table === 'cdc_shapes')!;
    expect(shapes.status).toBe('quarantined');
    expect(shapes.reason).toMatch(/code: Int32 .*→ String.*cdc resync cdc_shapes/);
    expect(status.alert.lagging).toBe(true);
    expect(await cdc.registry.getSingleMetricAsString('cdc_table_quarantined')).toMatch(/table="cdc_shapes"} 1/);
    await expectReplicasEqual(['customers']);

    await db.crm`SELECT pg_logical_emit_message(true, 'bionic.cdc.signal', ${JSON.stringify({ type: 'resync', table: 'cdc_shapes', id: 'test' })})`;
    await db.crm`UPDATE cdc_shapes SET label = 'while rebuilding' WHERE id = 1`;
    await events.until((e) => e.type === 'snapshot' && e.table === 'cdc_shapes' && events.seen.some((x) => x.type === 'schema' && x.kind === 'rebuilt'), 'the rebuilt snapshot');
    await inStep();
    expect((await cdc.status()).tables.find((t) => t.table === 'cdc_shapes')?.status).toBe('streaming');
    await expectReplicasEqual(['cdc_shapes']);
  });

  it('repairs a replica that diverged with an in-place resync', async () => {
    const [{ id }] = await db.crm`SELECT min(id)::int AS id FROM customers` as unknown as [{ id: number }];
    await olap.command(`INSERT INTO crm_customers (id, username, full_name, email, region, created_at, updated_at, _version, _deleted)
      VALUES (777777, 'ghost', 'Ghost', 'g@x', 'eu', now64(6), now64(6), 1, 0)`);
    await olap.command(`INSERT INTO crm_customers (id, username, full_name, email, region, created_at, updated_at, _version, _deleted)
      SELECT id, username, 'Corrupted', email, region, created_at, updated_at, _version + 1, 0 FROM crm_customers FINAL WHERE id = ${id}`);
    expect((await diffReplica(db.crm, olap, 'customers')).counts).toEqual({ missing: 0, extra: 1, different: 1 });
    const snapshots = events.seen.filter((e) => e.type === 'snapshot' && e.table === 'customers').length;
    await db.crm`SELECT pg_logical_emit_message(true, 'bionic.cdc.signal', ${JSON.stringify({ type: 'resync', table: 'customers', id: 'repair' })})`;
    await events.until(() => events.seen.filter((e) => e.type === 'snapshot' && e.table === 'customers').length > snapshots, 'the repairing snapshot');
    await inStep();
    await expectReplicasEqual(['customers']);
  });

  it('serves cdc.status to admins only', async () => {
    const caller = createCallerFactory(router({ cdc: cdcRouter }));
    const ctx = (roles: RouterContext['identity'] extends infer I ? I extends { roles: infer R } ? R : never : never, withCdc = true): RouterContext => ({
      requestId: 't', log, host: 'worker', health: async () => ({ status: 'ok', dependencies: {} }),
      identity: { userId: 'u', username: 'u', roles }, ports: withCdc ? { cdc } : {},
    });
    const s = await caller(ctx(['admin'])).cdc.status();
    if ('regions' in s) throw new Error('one region answers its own status');
    expect(s.region).toBe('default');
    expect(s.slot).toMatchObject({ name: 'bionic_cdc', exists: true, active: true });
    expect(s.state).toBe('streaming');
    expect(typeof s.retainedWalBytes).toBe('number');
    const denied = await caller(ctx(['crm_operator'])).cdc.status().catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(TRPCError);
    expect((denied as TRPCError).code).toBe('FORBIDDEN');
    expect(((await caller(ctx(['admin'], false)).cdc.status().catch((e: unknown) => e)) as TRPCError).code).toBe('PRECONDITION_FAILED');
  });
});
