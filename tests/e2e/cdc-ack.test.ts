/**
 * The slot is acknowledged only up to what is durably in ClickHouse: with the capture running and no
 * sink, changes are published but the slot's confirmed position stays before them (heartbeats keep
 * coming); once a sink runs (here in a separate CDC instance, as a sink-only worker would), the slot
 * moves past them and the replica equals the CRM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BionicTopics } from '../../shared/bus/topics.ts';
import { createLogger } from '../../shared/log.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import type { PostgresBus } from '../../workers/bus/postgres-bus.ts';
import { startCdc, type CdcHandle } from '../../workers/cdc/index.ts';
import { parseLsn } from '../../workers/cdc/lsn.ts';
import { eventually } from '../contract/bus-support.ts';
import { CdcEvents, diffReplica, openBus, openOlap, startCdcDatabases, type CdcDatabases } from '../support/cdc-stack.ts';
import { seedCrm } from '../support/cdc-workload.ts';

const log = createLogger({ level: 'warn' });
const OPTIONS = { heartbeatMs: 50, ackIntervalMs: 20, statusIntervalMs: 60_000, lagAlertSeconds: 0.5 };
let db: CdcDatabases;
let olap: Olap;
let bus: PostgresBus<BionicTopics>;
const handles: CdcHandle[] = [];

const confirmed = async () => parseLsn((await db.crm`SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = 'bionic_cdc'`)[0]!.l as string);

beforeAll(async () => {
  db = await startCdcDatabases('cdc-ack');
  await seedCrm(db.crm, { customers: 20, orders: 20 });
  olap = await openOlap(db.chdbPath);
  bus = await openBus(db.platformUrl);
}, 180_000);

afterAll(async () => {
  for (const h of handles) await h.stop();
  await bus?.close();
  await olap?.close();
  await db?.stop();
}, 60_000);

describe('CDC acknowledgement', () => {
  it('holds the slot before changes the sink has not written, and moves it once they are in ClickHouse', async () => {
    const events = new CdcEvents();
    const capture = await startCdc({ crmUrl: db.crmUrl, olap, bus, log, options: { ...OPTIONS, sink: false }, onEvent: events.push });
    handles.push(capture);
    await events.until((e) => e.type === 'snapshot' && e.table === 'orders', 'the initial load');

    await db.crm`UPDATE orders SET status = 'APPROVED', note = 'held back' WHERE id <= 10`;
    await db.crm`INSERT INTO audit_log (actor, action, entity) VALUES ('ack-test', 'insert', 'x')`;
    const written = await db.walPosition();
    await events.until((e) => e.type === 'published' && parseLsn(e.lsn) >= written && e.events === 0, 'a heartbeat published after the writes');
    const acks = events.seen.filter((e) => e.type === 'acknowledged').length;
    const published = events.seen.filter((e) => e.type === 'published').length;
    // Many acknowledgement rounds and heartbeats later, the slot must still stand before the writes.
    await events.until(() => events.seen.filter((e) => e.type === 'published').length > published + 20, 'twenty more publishes (heartbeats)');
    expect(await confirmed()).toBeLessThan(written);
    expect(events.seen.slice(acks).filter((e) => e.type === 'acknowledged' && parseLsn(e.lsn) >= written)).toEqual([]);
    // Lag grows while nothing is written to ClickHouse, and crosses the alert threshold.
    await eventually(async () => (await capture.status()).alert.lagging, 'the lag alert', 30_000);
    const lagging = await capture.status();
    expect(lagging.lagSeconds).toBeGreaterThan(OPTIONS.lagAlertSeconds);
    expect(lagging.alert.reasons.join()).toMatch(/lag .* s is above 0.5 s/);

    const sink = await startCdc({ crmUrl: db.crmUrl, olap, bus, log, options: { ...OPTIONS, capture: false, tables: ['customers', 'customer_accounts', 'orders', 'prosthesis_models', 'prostheses', 'order_reservations', 'audit_log'] } });
    handles.push(sink);
    await events.acknowledgedPast(written);
    // The server applies a standby status a moment after the capture sent it.
    await eventually(async () => (await confirmed()) > written, 'the slot to move past the writes');
    await eventually(async () => !(await capture.status()).alert.lagging, 'the alert to clear', 30_000);
    for (const table of ['orders', 'audit_log']) {
      const d = await diffReplica(db.crm, olap, table);
      expect({ table, ...d.counts }).toEqual({ table, missing: 0, extra: 0, different: 0 });
    }
  });
});
