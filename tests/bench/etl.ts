/**
 * The ETL: telemetry rows per second for a full run (every reading → hourly and daily stats in
 * ClickHouse) and the time of an incremental 15-minute run, next to a baseline in the same run that
 * does what an Airflow task would: stream the same readings through Node (postgres.js cursor), join
 * them with the CRM in memory, compute the same metrics in JavaScript and insert the day rows.
 *
 * Options: --events N (default 10,000,000; the generator makes about that many), --slices N (parallel
 * PostgreSQL reads, default ETL_READ_SLICES' default), --data-dir DIR (keep PostgreSQL there and reuse
 * its generated data on the next run), --no-baseline.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startPostgres } from '../../infra/dev/services/postgres.ts';
import { DEFAULT_ETL_CONFIG } from '../../shared/etl/config.ts';
import { createLogger } from '../../shared/log.ts';
import type { Olap } from '../../shared/ports/index.ts';
import { createClickHouseOlap } from '../../workers/adapters/olap-clickhouse.ts';
import { createPostgresOltp, type PostgresOltp } from '../../workers/adapters/oltp-postgres.ts';
import { migrateAll } from '../../workers/db/migrate.ts';
import { createEtl } from '../../workers/etl/index.ts';
import type { JobOutcome } from '../../workers/etl/job.ts';
import { generate } from '../../workers/seed/generate.ts';

const { values } = parseArgs({ options: { events: { type: 'string' }, slices: { type: 'string' }, 'data-dir': { type: 'string' }, 'no-baseline': { type: 'boolean' } } });
const target = Number(values.events ?? 10_000_000);
const slices = Number(values.slices ?? DEFAULT_ETL_CONFIG.readSlices);
const DAYS = 30;
// The generator makes ~265 readings per customer and day at its default rhythm (measured).
const customers = Math.max(1, Math.round(target / (DAYS * 265)));
const say = (s: string) => process.stderr.write(s + '\n');
const secs = (t0: number) => (performance.now() - t0) / 1000;

const keep = values['data-dir'];
const dir = keep ?? await mkdtemp(join(tmpdir(), 'bench-etl-'));
const reuse = Boolean(keep && existsSync(join(dir, 'pg', 'pgdata', 'PG_VERSION')));
const pg = await startPostgres({ dataDir: join(dir, 'pg') });
let olap: Olap | undefined;
const pools: PostgresOltp[] = [];
try {
  for (const db of ['crm', 'telemetry', 'platform']) await pg.ensureDatabase(db);
  const urls = { crm: pg.databaseUrl('crm'), telemetry: pg.databaseUrl('telemetry'), platform: pg.databaseUrl('platform') };
  const crm = createPostgresOltp(urls.crm, { max: 4 });
  const telemetry = createPostgresOltp(urls.telemetry, { max: 4 });
  const platform = createPostgresOltp(urls.platform, { max: 4 });
  pools.push(crm, telemetry, platform);
  await migrateAll({ crm, telemetry, platform });
  const end = new Date();
  let events: number;
  let genSeconds = 0;
  if (reuse) {
    events = Number((await telemetry.query<{ n: string }>('SELECT count(*) AS n FROM telemetry_events'))[0]!.n);
    say(`reusing ${events} readings in ${dir}`);
  } else {
    say(`generating ~${target} readings (${customers} customers × ${DAYS} days)…`);
    const t0 = performance.now();
    const r = await generate({ crm: crm.sql, telemetry: telemetry.sql, customers, days: DAYS, seed: 11, end, reset: true });
    events = r.events;
    genSeconds = secs(t0);
    say(`generated ${events} readings in ${genSeconds.toFixed(0)} s`);
    // Link every customer to a subject as if each had signed in once, without marking them changed.
    await crm.sql.begin(async (tx) => {
      await tx`ALTER TABLE customers DISABLE TRIGGER customers_updated_at`;
      await tx`UPDATE customers SET idp_subject = md5('sub-' || id)`;
      await tx`ALTER TABLE customers ENABLE TRIGGER customers_updated_at`;
    });
    await telemetry.query('VACUUM ANALYZE telemetry_events');
  }
  await arrivalOrder(telemetry);
  const [{ last }] = await telemetry.query<{ last: Date }>('SELECT max(ts) AS last FROM telemetry_events') as [{ last: Date }];

  // Fresh ClickHouse each time: the full run is a first run.
  await rm(join(dir, 'chdb'), { recursive: true, force: true });
  olap = await createClickHouseOlap({ user: 'default', password: '', database: 'bionic', chdbPath: join(dir, 'chdb') });
  await migrateAll({ olap });
  await platform.query('TRUNCATE etl_runs, etl_state');
  const clock = { now: new Date(last.getTime() - 15 * 60_000) };
  const etl = createEtl({
    olap, platform: platform.sql, telemetry, telemetryUrl: urls.telemetry, crmUrl: urls.crm,
    config: { ...DEFAULT_ETL_CONFIG, enabled: false, readSlices: slices }, log: createLogger({ level: 'warn' }), now: () => clock.now,
  });
  const ok = (o: JobOutcome) => {
    if (o.status !== 'succeeded') throw new Error(`ETL run ${o.status}: ${o.status === 'failed' ? o.error : o.reason}`);
    return o.run;
  };

  // Full run: everything up to 15 minutes before the last reading.
  let t0 = performance.now();
  const full = ok(await etl.trigger({ kind: 'manual', triggeredBy: 'bench' }));
  const fullS = secs(t0);
  const fullRate = (full.rowsRead ?? 0) / fullS;
  // Incremental: the last 15 minutes arrive; the run reads them plus the late-data allowance.
  clock.now = new Date(last.getTime() + 1);
  t0 = performance.now();
  const inc = ok(await etl.trigger({ kind: 'scheduled', triggeredBy: 'bench' }));
  const incS = secs(t0);
  // The same with no allowance: exactly the new 15 minutes.
  const tight = createEtl({
    olap, platform: platform.sql, telemetry, telemetryUrl: urls.telemetry, crmUrl: urls.crm,
    config: { ...DEFAULT_ETL_CONFIG, enabled: false, readSlices: 1, lateAllowanceMs: 0 }, log: createLogger({ level: 'warn' }), now: () => clock.now,
  });
  await platform.query(`UPDATE etl_state SET watermark = $1`, [new Date(last.getTime() - 15 * 60_000 + 1).toISOString()]);
  t0 = performance.now();
  const inc0 = ok(await tight.trigger({ kind: 'scheduled', triggeredBy: 'bench' }));
  const inc0S = secs(t0);

  let baseRate = NaN;
  let baseS = NaN;
  if (!values['no-baseline']) {
    t0 = performance.now();
    const base = await baseline(crm, telemetry, olap, new Date(full.windowTo!));
    baseS = secs(t0);
    baseRate = base.rows / baseS;
    const [check] = await olap.query<{ a: string; b: string }>(`SELECT
      (SELECT sum(actions) FROM user_prosthesis_stats FINAL WHERE day < toDate({d:String})) AS a,
      (SELECT sum(actions) FROM bench_baseline_stats WHERE day < toDate({d:String})) AS b`, { d: full.windowTo!.slice(0, 10) });
    if (check!.a !== check!.b) throw new Error(`baseline and ETL disagree on actions: ${check!.b} vs ${check!.a}`);
  }

  const row = (k: string, v: string) => console.log(`${k.padEnd(44)}${v}`);
  row('readings generated', `${events}${genSeconds ? ` (in ${genSeconds.toFixed(0)} s)` : ' (reused)'}`);
  row(`full run: readings read (slices=${slices})`, `${full.rowsRead} in ${fullS.toFixed(2)} s = ${fullRate.toFixed(0)} rows/s`);
  row('full run: rows written (hourly + daily)', `${full.rowsWritten}, users affected ${full.affectedUsers}`);
  row('incremental 15 min + 2 h allowance', `${incS.toFixed(3)} s (${inc.rowsRead} readings)`);
  row('incremental 15 min, no allowance', `${inc0S.toFixed(3)} s (${inc0.rowsRead} readings)`);
  row('baseline: Node stream + in-memory join', `${Number.isNaN(baseS) ? 'skipped' : `${baseS.toFixed(2)} s = ${baseRate.toFixed(0)} rows/s`}`);
  row('speedup (full run vs baseline)', `${(fullRate / baseRate).toFixed(1)}×`);
  const steps = await platform.query<{ id: string; details: { ms?: Record<string, number> } }>('SELECT id, details FROM etl_runs ORDER BY id');
  for (const [name, r] of [['full', full], ['incremental', inc], ['no allowance', inc0]] as const) {
    const ms = steps.find((x) => Number(x.id) === r.id)?.details.ms ?? {};
    row(`  steps of ${name} (ms)`, Object.entries(ms).map(([k, v]) => `${k} ${v}`).join(', '));
  }
  console.log(`RESULT etl rows_per_s=${fullRate.toFixed(0)} incremental_s=${incS.toFixed(3)} baseline_rows_per_s=${baseRate.toFixed(0)} speedup=${(fullRate / baseRate).toFixed(2)}`);
  await etl.stop();
  await tight.stop();
} finally {
  await olap?.close();
  for (const p of pools) await p.close();
  await pg.stop();
  if (!keep) await rm(dir, { recursive: true, force: true });
}

/**
 * The generator writes device by device; devices uploading in production land in arrival order,
 * which is time order give or take an upload interval, and the ETL's time-window reads rely on that
 * (BRIN on ts). Sort each month's partition by time once, as production data would lie.
 */
async function arrivalOrder(telemetry: PostgresOltp) {
  const parts = await telemetry.query<{ part: string; correlation: number | null }>(`
    SELECT c.relname AS part, s.correlation FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    LEFT JOIN pg_stats s ON s.tablename = c.relname AND s.attname = 'ts'
    WHERE i.inhparent = 'telemetry_events'::regclass AND c.relname <> 'telemetry_events_default'`);
  for (const { part, correlation } of parts) {
    if (correlation !== null && correlation > 0.9) continue;
    const t0 = performance.now();
    await telemetry.query(`CREATE INDEX bench_ts_order ON ${part} (ts)`);
    await telemetry.query(`CLUSTER ${part} USING bench_ts_order`);
    await telemetry.query(`DROP INDEX bench_ts_order`);
    await telemetry.query(`ANALYZE ${part}`);
    say(`sorted ${part} by time (arrival order) in ${secs(t0).toFixed(0)} s`);
  }
}

/**
 * The Airflow-style baseline: one cursor over the readings, the CRM owners in a Map, per-day groups
 * in memory with the same metric definitions, then the day rows inserted into ClickHouse.
 */
async function baseline(crm: PostgresOltp, telemetry: PostgresOltp, olap: Olap, before: Date) {
  const owners = new Map((await crm.query<{ chip_id: string; user_id: string }>(
    'SELECT p.chip_id, c.idp_subject AS user_id FROM prostheses p JOIN customers c ON c.id = p.customer_id WHERE c.idp_subject IS NOT NULL')).map((r) => [r.chip_id, r.user_id]));
  interface G { minutes: Set<number>; actions: number; errors: number; lat: number[]; bmin: number; bsum: number; bn: number; gsum: number; gn: number; codes: Map<string, number> }
  const groups = new Map<string, G>();
  let rows = 0;
  const cursor = telemetry.sql`SELECT chip_id, ts, kind, response_ms, error_code, battery_pct, grip_force_n FROM telemetry_events WHERE ts < ${before}`.cursor(5000);
  for await (const batch of cursor) {
    for (const e of batch) {
      const user = owners.get(e.chip_id);
      if (!user) continue;
      rows++;
      const t = (e.ts as Date).getTime();
      const key = `${user}\u0000${e.chip_id}\u0000${new Date(t).toISOString().slice(0, 10)}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { minutes: new Set(), actions: 0, errors: 0, lat: [], bmin: 255, bsum: 0, bn: 0, gsum: 0, gn: 0, codes: new Map() }));
      if (e.kind !== 'status') {
        g.actions++;
        g.minutes.add(Math.floor(t / 60_000));
        if (e.response_ms !== null) g.lat.push(e.response_ms);
      }
      if (e.kind === 'error') { g.errors++; g.codes.set(e.error_code, (g.codes.get(e.error_code) ?? 0) + 1); }
      if (e.battery_pct !== null) { g.bmin = Math.min(g.bmin, e.battery_pct); g.bsum += e.battery_pct; g.bn++; }
      if (e.grip_force_n !== null) { g.gsum += e.grip_force_n; g.gn++; }
    }
  }
  const pct = (s: number[], p: number) => { const h = (s.length - 1) * p; const lo = Math.floor(h); return s[lo]! + (h - lo) * ((s[lo + 1] ?? s[lo]!) - s[lo]!); };
  const out = [...groups.entries()].map(([key, g]) => {
    const [user_id, chip_id, day] = key.split('\u0000');
    const lat = g.lat.sort((a, b) => a - b);
    return {
      user_id, chip_id, day, active_minutes: g.minutes.size, actions: g.actions, errors: g.errors, error_rate: g.actions ? g.errors / g.actions : 0,
      latency_p50_ms: lat.length ? pct(lat, 0.5) : null, latency_p95_ms: lat.length ? pct(lat, 0.95) : null,
      battery_min: g.bn ? g.bmin : null, battery_avg: g.bn ? g.bsum / g.bn : null, grip_force_avg: g.gn ? g.gsum / g.gn : null,
      top_error_codes: [...g.codes.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 3).map(([c]) => c), _version: 1,
    };
  });
  await olap.command('CREATE TABLE IF NOT EXISTS bench_baseline_stats AS user_prosthesis_stats');
  await olap.command('TRUNCATE TABLE bench_baseline_stats');
  for (let i = 0; i < out.length; i += 10_000) await olap.insert('bench_baseline_stats', out.slice(i, i + 10_000));
  return { rows };
}
