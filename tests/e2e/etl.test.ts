/**
 * The ETL against real services: embedded PostgreSQL (CRM, telemetry, platform), chDB reading them
 * through postgresql(), KV through the Upstash-REST gateway. Expected metrics are computed here in
 * plain JavaScript from the readings (and a few anchored by hand), never by the code under test.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TRPCError } from '@trpc/server';
import { createCallerFactory } from '../../router/trpc.ts';
import { workerRouter } from '../../router/root.ts';
import type { RouterContext } from '../../router/context.ts';
import { DEFAULT_ETL_CONFIG, type EtlConfig } from '../../shared/etl/config.ts';
import { createLogger } from '../../shared/log.ts';
import type { Olap } from '../../shared/ports/index.ts';
import { createEtl, type Etl } from '../../workers/etl/index.ts';
import type { JobOutcome } from '../../workers/etl/job.ts';
import { reportVersionKey } from '../../workers/etl/invalidate.ts';
import { createPostgresOltp } from '../../workers/adapters/oltp-postgres.ts';
import { storeBatch } from '../../workers/telemetry/store.ts';
import { addCustomer, insertReadings, startEtlStack, type EtlStack, type TestReading } from '../support/etl-stack.ts';

const log = createLogger({ level: 'silent' });
const OWNERS: Record<string, string> = { 'CHIP-A1': 'sub-alice', 'CHIP-A2': 'sub-alice', 'CHIP-B1': 'sub-bob' };

const r = (chip: string, ts: string, kind: TestReading['kind'], o: Partial<TestReading> = {}): TestReading => ({ chip, ts, kind, ...o });
const READINGS: TestReading[] = [
  // Alice's hand: errors, a reading in the day's last millisecond, latencies with a long tail.
  r('CHIP-A1', '2026-03-09T10:00:05Z', 'action', { responseMs: 100, battery: 90, grip: 20 }),
  r('CHIP-A1', '2026-03-09T10:00:40Z', 'action', { responseMs: 120, battery: 89, grip: 22.5 }),
  r('CHIP-A1', '2026-03-09T10:05:00Z', 'error', { errorCode: 'E_MOTOR_STALL', responseMs: 300, battery: 88 }),
  r('CHIP-A1', '2026-03-09T10:30:00Z', 'status', { battery: 87 }),
  r('CHIP-A1', '2026-03-09T11:15:10Z', 'action', { action: 'pinch', responseMs: 80, battery: 85, grip: 3.2 }),
  r('CHIP-A1', '2026-03-09T11:15:50Z', 'error', { errorCode: 'E_SENSOR_TIMEOUT', responseMs: 1600, battery: 84 }),
  r('CHIP-A1', '2026-03-09T11:16:00Z', 'error', { errorCode: 'E_MOTOR_STALL', responseMs: 250, battery: 84 }),
  r('CHIP-A1', '2026-03-09T23:59:59.999Z', 'action', { responseMs: 90, battery: 50, grip: 18 }),
  // Midnight belongs to the new day; an action without a latency counts as an action only.
  r('CHIP-A1', '2026-03-10T00:00:00Z', 'action', { responseMs: 110, battery: 100, grip: 25 }),
  r('CHIP-A1', '2026-03-10T09:10:00Z', 'action', { battery: 99, grip: 21 }),
  r('CHIP-A1', '2026-03-10T09:10:30Z', 'status', { battery: 99 }),
  // Alice's leg: no grip force; a day with status readings only.
  r('CHIP-A2', '2026-03-09T08:00:00Z', 'action', { action: 'step', responseMs: 200, battery: 70 }),
  r('CHIP-A2', '2026-03-09T08:00:30Z', 'action', { action: 'step', responseMs: 220, battery: 70 }),
  r('CHIP-A2', '2026-03-09T08:01:00Z', 'error', { action: 'step', errorCode: 'E_BALANCE', responseMs: 500, battery: 69 }),
  r('CHIP-A2', '2026-03-10T06:00:00Z', 'status', { battery: 95 }),
  r('CHIP-A2', '2026-03-10T07:00:00Z', 'status', { battery: 94 }),
  // Bob: a reading without battery; four error codes with ties for the top three.
  r('CHIP-B1', '2026-03-09T12:00:00Z', 'status', {}),
  r('CHIP-B1', '2026-03-09T12:30:00Z', 'action', { responseMs: 95, battery: 60, grip: 30.1 }),
  r('CHIP-B1', '2026-03-10T10:00:00Z', 'error', { errorCode: 'E_B', responseMs: 100, battery: 55 }),
  r('CHIP-B1', '2026-03-10T10:00:10Z', 'error', { errorCode: 'E_A', responseMs: 110, battery: 55 }),
  r('CHIP-B1', '2026-03-10T10:01:00Z', 'error', { errorCode: 'E_B', responseMs: 120, battery: 54 }),
  r('CHIP-B1', '2026-03-10T10:02:00Z', 'error', { errorCode: 'E_A', responseMs: 130, battery: 54 }),
  r('CHIP-B1', '2026-03-10T10:03:00Z', 'error', { errorCode: 'E_D', responseMs: 140, battery: 53 }),
  r('CHIP-B1', '2026-03-10T10:04:00Z', 'error', { errorCode: 'E_C', responseMs: 150, battery: 53 }),
  r('CHIP-B1', '2026-03-10T10:05:00Z', 'action', { responseMs: 90, battery: 52, grip: 19.9 }),
  // Not counted: a customer without an identity-provider subject, and a chip nobody owns.
  // Carol's device, linked to her subject later: its history spans days before the link.
  r('CHIP-C1', '2026-03-07T08:30:00Z', 'action', { responseMs: 140, battery: 90 }),
  r('CHIP-C1', '2026-03-09T10:00:00Z', 'action', { responseMs: 100, battery: 80 }),
  r('CHIP-ZZ', '2026-03-09T10:00:00Z', 'action', { responseMs: 100, battery: 80 }),
];

interface Stat {
  user_id: string; chip_id: string; day: string; active_minutes: number; actions: number; errors: number; error_rate: number;
  latency_p50_ms: number | null; latency_p95_ms: number | null; battery_min: number | null; battery_avg: number | null;
  grip_force_avg: number | null; top_error_codes: string[];
}

/** numpy's default percentile: linear interpolation at rank p·(n−1). */
function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  const h = (s.length - 1) * p;
  const lo = Math.floor(h);
  return s[lo]! + (h - lo) * ((s[lo + 1] ?? s[lo]!) - s[lo]!);
}
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** The metrics as README defines them, straight from the readings. */
function expectedStats(readings: readonly TestReading[], owners: Record<string, string>): Stat[] {
  const groups = new Map<string, TestReading[]>();
  for (const x of readings) {
    const user = owners[x.chip];
    if (!user) continue;
    const key = `${user}|${x.chip}|${new Date(x.ts).toISOString().slice(0, 10)}`;
    groups.set(key, [...(groups.get(key) ?? []), x]);
  }
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, xs]) => {
    const [user_id, chip_id, day] = key.split('|') as [string, string, string];
    const acts = xs.filter((x) => x.kind !== 'status');
    const errs = xs.filter((x) => x.kind === 'error');
    const lat = acts.flatMap((x) => (x.responseMs == null ? [] : [x.responseMs]));
    const bat = xs.flatMap((x) => (x.battery == null ? [] : [x.battery]));
    const grip = xs.flatMap((x) => (x.grip == null ? [] : [x.grip]));
    const codes = new Map<string, number>();
    for (const e of errs) codes.set(e.errorCode!, (codes.get(e.errorCode!) ?? 0) + 1);
    return {
      user_id, chip_id, day,
      active_minutes: new Set(acts.map((x) => new Date(x.ts).toISOString().slice(0, 16))).size,
      actions: acts.length, errors: errs.length, error_rate: acts.length ? errs.length / acts.length : 0,
      latency_p50_ms: lat.length ? percentile(lat, 0.5) : null, latency_p95_ms: lat.length ? percentile(lat, 0.95) : null,
      battery_min: bat.length ? Math.min(...bat) : null, battery_avg: mean(bat), grip_force_avg: mean(grip),
      top_error_codes: [...codes.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 3).map(([c]) => c),
    };
  });
}

let stack: EtlStack;
let olap: Olap;
const clock = { now: new Date('2026-03-10T12:00:00Z') };
const etls: Etl[] = [];

function makeEtl(over: { olap?: Olap; config?: Partial<EtlConfig>; platformPool?: boolean; onRun?: (o: JobOutcome) => void } = {}): Etl {
  const platform = over.platformPool ? createPostgresOltp(stack.urls.platform, { max: 2 }) : stack.platform;
  const etl = createEtl({
    olap: over.olap ?? olap, platform: platform.sql, telemetry: stack.telemetry, telemetryUrl: stack.urls.telemetry, crmUrl: stack.urls.crm,
    config: { ...DEFAULT_ETL_CONFIG, enabled: false, ...over.config }, kv: stack.kv, log, now: () => new Date(clock.now),
    onRun: (_req, o) => over.onRun?.(o),
  });
  etls.push(etl);
  return etl;
}

async function table(): Promise<Stat[]> {
  return olap.query<Stat>(`SELECT user_id, chip_id, toString(day) AS day, active_minutes, actions, errors, error_rate, latency_p50_ms, latency_p95_ms,
    battery_min, battery_avg, grip_force_avg, top_error_codes FROM user_prosthesis_stats FINAL ORDER BY user_id, chip_id, day`);
}

function expectTable(actual: Stat[], expected: Stat[]) {
  expect(actual.map((s) => `${s.user_id}|${s.chip_id}|${s.day}`)).toEqual(expected.map((s) => `${s.user_id}|${s.chip_id}|${s.day}`));
  actual.forEach((a, i) => {
    const e = expected[i]!;
    const where = `${e.user_id} ${e.chip_id} ${e.day}`;
    for (const k of ['active_minutes', 'actions', 'errors', 'battery_min', 'top_error_codes'] as const) expect(a[k], `${where} ${k}`).toEqual(e[k]);
    for (const k of ['error_rate', 'latency_p50_ms', 'latency_p95_ms', 'battery_avg', 'grip_force_avg'] as const) {
      if (e[k] === null) expect(a[k], `${where} ${k}`).toBeNull();
      else expect(a[k], `${where} ${k}`).toBeCloseTo(e[k]!, 9);
    }
  });
}

const version = async (user: string) => Number((await stack.kv!.get(reportVersionKey(user))) ?? 0);
const watermark = async () => (await stack.platform.query<{ watermark: Date }>(`SELECT watermark FROM etl_state`))[0]?.watermark?.toISOString() ?? null;
const runs = () => stack.platform.query<{ id: string; status: string; kind: string; error: string | null }>('SELECT id, status, kind, error FROM etl_runs ORDER BY id');

beforeAll(async () => {
  stack = await startEtlStack('etl');
  olap = stack.olap!;
  await addCustomer(stack.crm, { id: 1, subject: 'sub-alice', chips: ['CHIP-A1', 'CHIP-A2'] });
  await addCustomer(stack.crm, { id: 2, subject: 'sub-bob', chips: ['CHIP-B1'] });
  await addCustomer(stack.crm, { id: 3, subject: null, chips: ['CHIP-C1'] });
}, 180_000);

afterAll(async () => {
  for (const e of etls) await e.stop();
  await stack?.stop();
}, 60_000);

beforeEach(async () => {
  clock.now = new Date('2026-03-10T12:00:00Z');
  await stack.telemetry.query('TRUNCATE telemetry_events, telemetry_batches');
  await stack.platform.query('TRUNCATE etl_runs, etl_state');
  await olap.command('TRUNCATE TABLE user_prosthesis_stats');
  await olap.command('TRUNCATE TABLE user_prosthesis_stats_hourly');
  await insertReadings(stack.telemetry, READINGS);
});

describe('ETL: telemetry + CRM → user_prosthesis_stats', () => {
  it('computes every metric per user, chip and UTC day exactly', async () => {
    const out = await makeEtl().trigger({ kind: 'manual', triggeredBy: 'test' });
    expect(out.status).toBe('succeeded');
    const rows = await table();
    expectTable(rows, expectedStats(READINGS, OWNERS));
    // Anchors checked by hand: latencies 80 90 100 120 250 300 1600 → p95 at rank 5.7 = 300 + 0.7·1300.
    const a1 = rows.find((s) => s.chip_id === 'CHIP-A1' && s.day === '2026-03-09')!;
    expect(a1).toMatchObject({ active_minutes: 5, actions: 7, errors: 3, latency_p50_ms: 120, battery_min: 50, top_error_codes: ['E_MOTOR_STALL', 'E_SENSOR_TIMEOUT'] });
    expect(a1.latency_p95_ms).toBeCloseTo(1210, 9);
    expect(a1.battery_avg).toBeCloseTo(82.125, 9);
    expect(a1.grip_force_avg).toBeCloseTo(15.925, 9);
    expect(rows.find((s) => s.chip_id === 'CHIP-A2' && s.day === '2026-03-10')).toMatchObject({ actions: 0, error_rate: 0, latency_p50_ms: null, grip_force_avg: null, battery_min: 94, top_error_codes: [] });
    expect(rows.find((s) => s.chip_id === 'CHIP-B1' && s.day === '2026-03-10')!.top_error_codes).toEqual(['E_A', 'E_B', 'E_C']);
    expect(rows.some((s) => ['CHIP-C1', 'CHIP-ZZ'].includes(s.chip_id))).toBe(false);
    // The hour table holds the same metrics per hour.
    const [hour] = await olap.query<Record<string, unknown>>(`SELECT active_minutes, actions, errors, events, latency_p50_ms, top_error_codes FROM user_prosthesis_stats_hourly FINAL
      WHERE chip_id = 'CHIP-A1' AND hour = toDateTime('2026-03-09 10:00:00', 'UTC')`);
    expect(hour).toEqual({ active_minutes: 2, actions: 3, errors: 1, events: 4, latency_p50_ms: 120, top_error_codes: ['E_MOTOR_STALL'] });
    if (out.status !== 'succeeded') return;
    // Readings of devices without a linked owner are not read as rows; a first run starts at the day of the oldest reading.
    expect(out.run).toMatchObject({ rowsRead: READINGS.filter((x) => x.chip in OWNERS).length, affectedUsers: 2, windowFrom: '2026-03-07T00:00:00.000Z', windowTo: '2026-03-10T12:00:00.000Z', watermarkAfter: '2026-03-10T12:00:00.000Z' });
  });

  it('re-running a window gives the same table and invalidates nobody', async () => {
    const etl = makeEtl();
    expect((await etl.trigger({ kind: 'manual', triggeredBy: 'test' })).status).toBe('succeeded');
    const first = await table();
    const before = [await version('sub-alice'), await version('sub-bob')];
    const again = await etl.backfill(new Date('2026-03-09'), new Date('2026-03-10'));
    expect(again.map((o) => o.status)).toEqual(['succeeded', 'succeeded']);
    clock.now = new Date('2026-03-10T12:15:00Z');
    expect((await etl.trigger({ kind: 'scheduled', triggeredBy: 'test' })).status).toBe('succeeded');
    expect(await table()).toEqual(first);
    expect([await version('sub-alice'), await version('sub-bob')]).toEqual(before);
    const [{ n }] = await olap.query<{ n: string }>('SELECT count() AS n FROM user_prosthesis_stats') as [{ n: string }];
    expect(Number(n)).toBeGreaterThan(first.length); // several versions stored, FINAL shows one
  });

  it('counts late readings inside the allowance, and late uploads beyond it', async () => {
    const etl = makeEtl();
    await etl.trigger({ kind: 'manual', triggeredBy: 'test' });
    const bob = await version('sub-bob');
    const alice = await version('sub-alice');
    // Arrives after the run, one hour old: inside the default two-hour allowance.
    const late = r('CHIP-A1', '2026-03-10T11:00:00Z', 'action', { responseMs: 500, battery: 90, grip: 10 });
    // Arrives now but is a day old, straight into the table: outside the allowance, not seen.
    const stale = r('CHIP-A1', '2026-03-09T15:00:00Z', 'action', { responseMs: 70, battery: 80 });
    await insertReadings(stack.telemetry, [late, stale]);
    clock.now = new Date('2026-03-10T12:15:00Z');
    const out = await etl.trigger({ kind: 'scheduled', triggeredBy: 'test' });
    expect(out.status === 'succeeded' && out.run.windowFrom).toBe('2026-03-10T10:00:00.000Z');
    expectTable(await table(), expectedStats([...READINGS, late], OWNERS));
    expect(await version('sub-alice')).toBe(alice + 1);
    expect(await version('sub-bob')).toBe(bob);
    // The same day-old reading uploaded by its device (a batch received now) is repaired in the next run.
    const upload = { batchId: '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b', readings: [{ ts: '2026-03-09T16:00:00.000Z', kind: 'error' as const, errorCode: 'E_LATE', responseMs: 42, batteryPct: 77 }] };
    await storeBatch(stack.telemetry, 'CHIP-A1', upload);
    clock.now = new Date('2026-03-10T12:30:00Z');
    const repaired = await etl.trigger({ kind: 'scheduled', triggeredBy: 'test' });
    expect(repaired.status).toBe('succeeded');
    const uploaded = r('CHIP-A1', '2026-03-09T16:00:00Z', 'error', { errorCode: 'E_LATE', responseMs: 42, battery: 77, action: undefined });
    expectTable(await table(), expectedStats([...READINGS, late, uploaded], OWNERS));
    expect(await version('sub-alice')).toBe(alice + 2);
    // A reading written behind the ingestion's back and older than the allowance needs a backfill.
    await etl.backfill(new Date('2026-03-09'), new Date('2026-03-09'));
    expectTable(await table(), expectedStats([...READINGS, late, uploaded, stale], OWNERS));
  });

  it('runs once when triggered twice at the same time, in one process or across processes', async () => {
    const a = makeEtl({ platformPool: true });
    const b = makeEtl({ platformPool: true });
    const outcomes = await Promise.all([a.trigger({ kind: 'manual', triggeredBy: 'a' }), b.trigger({ kind: 'manual', triggeredBy: 'b' })]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['skipped', 'succeeded']);
    const skipped = outcomes.find((o) => o.status === 'skipped');
    expect(skipped).toMatchObject({ reason: 'another ETL run is in progress' });
    const same = await Promise.all([a.trigger({ kind: 'manual', triggeredBy: 'a' }), a.trigger({ kind: 'manual', triggeredBy: 'a' })]);
    expect(same.map((o) => o.status).sort()).toEqual(['skipped', 'succeeded']);
    expect((await runs()).length).toBe(2);
  });

  it('a failure mid-run leaves the watermark alone; the retry catches up and invalidates', async () => {
    const retried = new Promise<JobOutcome>((resolve) => {
      let n = 0;
      const etlOlap: Olap = {
        ...olap,
        // ClickHouse goes away after the hours are loaded, before the days.
        command: (sql, params) => (n++ === 1 ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:8123')) : olap.command(sql, params)),
      };
      const etl = makeEtl({ olap: etlOlap, config: { retry: { ...DEFAULT_ETL_CONFIG.retry, initialIntervalMs: 50 } }, onRun: (o) => { if (o.status !== 'failed') resolve(o); } });
      void etl.trigger({ kind: 'manual', triggeredBy: 'test' }).then(async (first) => {
        expect(first).toMatchObject({ status: 'failed', error: 'connect ECONNREFUSED 127.0.0.1:8123' });
        expect(first.status === 'failed' && first.nextRetryAt).toBeTruthy();
        expect(await watermark()).toBeNull();
        // Readings arrive while the job is failing.
        await insertReadings(stack.telemetry, [r('CHIP-B1', '2026-03-10T11:30:00Z', 'action', { responseMs: 77, battery: 50, grip: 12 })]);
      });
    });
    const bob = await version('sub-bob');
    const second = await retried;
    expect(second.status).toBe('succeeded');
    expect((await runs()).map((x) => [x.status, x.kind])).toEqual([['failed', 'manual'], ['succeeded', 'retry']]);
    expect(await watermark()).toBe('2026-03-10T12:00:00.000Z');
    const all = [...READINGS, r('CHIP-B1', '2026-03-10T11:30:00Z', 'action', { responseMs: 77, battery: 50, grip: 12 })];
    expectTable(await table(), expectedStats(all, OWNERS));
    // The failed attempt's hour rows do not hide the change from the invalidation.
    expect(await version('sub-bob')).toBe(bob + 1);
  });

  it('a broken query fails the run with the error, credentials scrubbed, and changes nothing', async () => {
    const etl = makeEtl();
    await etl.trigger({ kind: 'manual', triggeredBy: 'test' });
    const before = await table();
    const broken: Olap = { ...olap, command: (sql, params) => olap.command(sql.replace('GROUP BY chip_id, hour', 'GROUP BY no_such_column'), params) };
    clock.now = new Date('2026-03-10T12:15:00Z');
    const out = await makeEtl({ olap: broken }).trigger({ kind: 'manual', triggeredBy: 'test' });
    expect(out.status).toBe('failed');
    const error = out.status === 'failed' ? out.error : '';
    expect(error).toMatch(/no_such_column/);
    expect(error).not.toContain(new URL(stack.urls.telemetry).password);
    expect(await watermark()).toBe('2026-03-10T12:00:00.000Z');
    expect(await table()).toEqual(before);
    expect((await etl.trigger({ kind: 'manual', triggeredBy: 'test' })).status).toBe('succeeded');
  });

  it('etl.run, etl.runs and etl.status for admins and ML engineers only', async () => {
    const etl = makeEtl();
    const ctx = (roles: RouterContext['identity'] extends infer I ? I extends { roles: infer R } ? R : never : never): RouterContext => ({
      requestId: 't', identity: { userId: 'u-1', username: 'analyst1', roles }, log, ports: { etl: etl.service }, host: 'worker',
      health: async () => ({ status: 'ok', dependencies: {} }),
    });
    const caller = createCallerFactory(workerRouter);
    const denied = await caller(ctx(['prosthesis_user'])).etl.run().catch((e) => e);
    expect(denied).toBeInstanceOf(TRPCError);
    expect(denied.code).toBe('FORBIDDEN');
    const ran = await caller(ctx(['ml_engineer'])).etl.run();
    expect(ran).toMatchObject({ status: 'succeeded', run: { triggeredBy: 'u-1', kind: 'manual' } });
    const page = await caller(ctx(['admin'])).etl.runs({ limit: 1 });
    expect(page.items).toHaveLength(1);
    expect(page.nextCursor).toBeNull();
    const status = await caller(ctx(['admin'])).etl.status();
    expect(status).toMatchObject({ watermark: '2026-03-10T12:00:00.000Z', running: null, lateAllowanceMinutes: 120, crmSource: 'postgres' });
  });

  it('reads chip owners from the CDC replicas in ClickHouse when ETL_CRM_SOURCE=clickhouse', async () => {
    // Replicas shaped like workers/cdc's: newest _version wins, _deleted rows are gone.
    await olap.command(`CREATE TABLE IF NOT EXISTS crm_prostheses (id Int64, chip_id String, customer_id Int64, updated_at DateTime64(6, 'UTC'),
      _version UInt128, _deleted UInt8) ENGINE = ReplacingMergeTree(_version, _deleted) ORDER BY id`);
    await olap.command(`CREATE TABLE IF NOT EXISTS crm_customers (id Int64, idp_subject Nullable(String), updated_at DateTime64(6, 'UTC'),
      _version UInt128, _deleted UInt8) ENGINE = ReplacingMergeTree(_version, _deleted) ORDER BY id`);
    const at = '2020-01-01 00:00:00';
    await olap.insert('crm_prostheses', [
      { id: 1, chip_id: 'CHIP-A1', customer_id: 1, updated_at: at, _version: '1', _deleted: 0 },
      { id: 2, chip_id: 'CHIP-A2', customer_id: 1, updated_at: at, _version: '1', _deleted: 0 },
      { id: 2, chip_id: 'CHIP-A2', customer_id: 1, updated_at: at, _version: '2', _deleted: 1 },
      { id: 3, chip_id: 'CHIP-B1', customer_id: 2, updated_at: at, _version: '1', _deleted: 0 },
      { id: 4, chip_id: 'CHIP-C1', customer_id: 3, updated_at: at, _version: '1', _deleted: 0 },
    ]);
    await olap.insert('crm_customers', [
      { id: 1, idp_subject: 'sub-alice', updated_at: at, _version: '1', _deleted: 0 },
      { id: 2, idp_subject: 'sub-bob', updated_at: at, _version: '1', _deleted: 0 },
      { id: 3, idp_subject: null, updated_at: at, _version: '1', _deleted: 0 },
      { id: 3, idp_subject: 'sub-carol', updated_at: at, _version: '2', _deleted: 0 },
    ]);
    try {
      const out = await makeEtl({ config: { crmSource: 'clickhouse' } }).trigger({ kind: 'manual', triggeredBy: 'test' });
      expect(out.status).toBe('succeeded');
      const { 'CHIP-A2': _deleted, ...owners } = OWNERS;
      expectTable(await table(), expectedStats(READINGS, { ...owners, 'CHIP-C1': 'sub-carol' }));
    } finally {
      await olap.command('DROP TABLE crm_prostheses');
      await olap.command('DROP TABLE crm_customers');
    }
  });

  // Last: it links a customer for good.
  it('a customer linked to a subject later gets their whole history', async () => {
    const etl = makeEtl();
    await etl.trigger({ kind: 'manual', triggeredBy: 'test' });
    await stack.crm.query(`UPDATE customers SET idp_subject = 'sub-carol' WHERE id = 3`);
    clock.now = new Date('2026-03-10T12:15:00Z');
    const out = await etl.trigger({ kind: 'scheduled', triggeredBy: 'test' });
    expect(out.status).toBe('succeeded');
    expectTable(await table(), expectedStats(READINGS, { ...OWNERS, 'CHIP-C1': 'sub-carol' }));
    expect(await version('sub-carol')).toBeGreaterThan(0);
  });
});
