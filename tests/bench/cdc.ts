/**
 * CDC end to end on the embedded stack (PostgreSQL, the PostgreSQL bus, chDB), CDC in this process and
 * the load in another (tests/support/cdc-load.ts):
 *
 * - snapshot: the initial load of `orders` (--rows, default 1M), against a bare `INSERT … SELECT` from
 *   the postgresql() table function into a plain MergeTree in the same run;
 * - streaming: --changes row changes (100-row update transactions, as fast as two connections go),
 *   first commit → last change visible in FINAL, against the PostgreSQL bus alone moving as many
 *   CDC-sized messages (batches of 1000, one publisher, one consumer);
 * - lag: single-row transactions at a steady --rate (default 1000/s) for --seconds, commit (statement
 *   clock, stamped into the row) → the sink's insert returned (visible in FINAL), p50 and p99.
 *
 * Ends with `RESULT cdc snapshot_rows_per_s=… stream_changes_per_s=… p50_lag_ms=… p99_lag_ms=…`.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { cdcTopic, type CdcEnvelope } from '../../shared/bus/topics.ts';
import { createLogger } from '../../shared/log.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import { startCdc } from '../../workers/cdc/index.ts';
import { CdcEvents, openBus, openOlap, startCdcDatabases } from '../support/cdc-stack.ts';
import { seedCrm } from '../support/cdc-workload.ts';

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '1000000' }, changes: { type: 'string', default: '200000' }, rate: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '20' } },
});
const ROWS = Number(values.rows);
const CHANGES = Number(values.changes);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const ROOT = join(import.meta.dirname, '../..');
const quantile = (xs: number[], q: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN; };

function load(args: string[]): Promise<Record<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/support/cdc-load.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => resolve(JSON.parse(l)));
    child.once('exit', (code) => { if (code) reject(new Error(`load exited with ${code}`)); });
  });
}

const db = await startCdcDatabases('bench-cdc');
const log = createLogger({ level: 'warn' });
try {
  process.stderr.write(`seeding ${ROWS} orders…\n`);
  await seedCrm(db.crm, { customers: 10_000, orders: ROWS });
  await db.crm`VACUUM ANALYZE orders`;
  const olap = await openOlap(db.chdbPath);

  // Baseline: the same table copied raw by ClickHouse, no conversion, no versions.
  const u = new URL(db.crmUrl);
  const src = `postgresql('${u.hostname}:${u.port}', 'crm', 'orders', '${decodeURIComponent(u.username)}', '${decodeURIComponent(u.password)}')`;
  await olap.command(`CREATE TABLE baseline_orders ENGINE = MergeTree ORDER BY id EMPTY AS SELECT * FROM ${src}`);
  let t0 = performance.now();
  await olap.command(`INSERT INTO baseline_orders SELECT * FROM ${src}`);
  const baselineSnapshot = ROWS / ((performance.now() - t0) / 1000);
  await olap.command('DROP TABLE baseline_orders SYNC');

  // CDC, with the OLAP port observed: a row is visible in FINAL once the sink's insert returned.
  let measuring = false;
  const lags: number[] = [];
  const observed: Olap = {
    ...olap,
    async insert(table, rows) {
      await olap.insert(table, rows);
      if (!measuring || table !== 'crm_orders') return;
      const now = Date.now();
      for (const r of rows) if (typeof r.note === 'string' && r.note.startsWith('lag:')) lags.push(now - Number(r.note.slice(4)));
    },
  };
  const bus = await openBus(db.platformUrl);
  const events = new CdcEvents();
  let sunk = 0;
  const cdc = await startCdc({
    crmUrl: db.crmUrl, olap: observed, bus, log,
    options: { tables: ['customers', 'orders', 'prosthesis_models'], heartbeatMs: 1_000, ackIntervalMs: 200, batchMax: 2_000, statusIntervalMs: 60_000 },
    onEvent: (e) => { if (e.type === 'sunk' && e.table === 'orders') sunk += e.rows; events.push(e); },
  });
  const snap = await events.until((e) => e.type === 'snapshot' && e.table === 'orders', 'the snapshot of orders', 600_000);
  const snapshotRate = (snap as { rows: number; ms: number }).rows / ((snap as { ms: number }).ms / 1000);
  for (const t of ['customers', 'prosthesis_models']) {
    if (!events.seen.some((e) => e.type === 'snapshot' && e.table === t)) await events.until((e) => e.type === 'snapshot' && e.table === t, t, 600_000);
  }

  // Streaming at full speed.
  const before = sunk;
  const burst = await load(['burst', db.crmUrl, String(Math.ceil(CHANGES / 100)), '100', '2']);
  await events.until(() => sunk - before >= burst.changes!, 'every change to be visible', 600_000);
  const streamRate = burst.changes! / ((Date.now() - burst.firstCommitAt!) / 1000);

  // Steady 1000 tx/s.
  measuring = true;
  const steady = await load(['steady', db.crmUrl, String(RATE), String(SECONDS), '8']);
  await events.until(() => lags.length >= steady.transactions!, 'every stamped row to be visible', 120_000).catch(() => {});
  measuring = false;
  const settled = lags.slice(Math.min(lags.length - 1, RATE)); // skip the first second
  const p50 = quantile(settled, 0.5);
  const p99 = quantile(settled, 0.99);
  await cdc.stop();

  // Baseline: the PostgreSQL bus alone, CDC-sized messages.
  const envelope: CdcEnvelope = {
    before: null, op: 'u', ts_ms: Date.now(),
    after: { id: '1', customer_id: '2', model_id: 3, status: 'APPROVED', price: '512.00', idempotency_key: null, version: 2, created_at: '2026-01-01T00:00:00.123456Z', updated_at: '2026-01-01T00:00:00.123456Z', saga_id: null, note: null },
    source: { lsn: '123456789', txId: 1234, db: 'crm', schema: 'public', table: 'bench', ts_ms: Date.now() },
  };
  const topic = cdcTopic('bus_baseline');
  let consumed = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const sub = await bus.subscribe({ group: 'bench-baseline', topics: [topic], maxBatchSize: 2_000, handler: async (ms) => { consumed += ms.length; if (consumed >= CHANGES) done(); } });
  t0 = performance.now();
  for (let i = 0; i < CHANGES; i += 1_000) {
    await bus.publish(topic, Array.from({ length: Math.min(1_000, CHANGES - i) }, (_, j) => ({ key: String(i + j), value: envelope, headers: { 'x-cdc-seq': '0' } })));
  }
  await all;
  const busRate = CHANGES / ((performance.now() - t0) / 1000);
  await sub.stop();
  await bus.close();
  await olap.close();

  const row = (what: string, figure: string, base: string, ratio: string) => console.log(`${what.padEnd(34)} ${figure.padStart(20)} ${base.padStart(34)} ${ratio.padStart(7)}`);
  row('phase', 'CDC', 'baseline (same run)', 'ratio');
  row(`snapshot, orders (${ROWS} rows)`, `${Math.round(snapshotRate)} rows/s`, `raw postgresql() copy ${Math.round(baselineSnapshot)} rows/s`, (snapshotRate / baselineSnapshot).toFixed(2));
  row(`streaming (${burst.changes} changes)`, `${Math.round(streamRate)} changes/s`, `PostgreSQL bus alone ${Math.round(busRate)} msg/s`, (streamRate / busRate).toFixed(2));
  row(`lag at ${RATE} tx/s (${steady.transactions} tx in ${steady.seconds!.toFixed(1)} s)`, `p50 ${p50} ms p99 ${p99} ms`, `achieved ${Math.round(steady.transactions! / steady.seconds!)} tx/s`, '');
  console.log(`RESULT cdc snapshot_rows_per_s=${Math.round(snapshotRate)} stream_changes_per_s=${Math.round(streamRate)} p50_lag_ms=${p50} p99_lag_ms=${p99}`);
} finally {
  await db.stop();
}
