/**
 * `npm run etl -- <command>`: run the ETL once, backfill a range of days with a progress bar, or
 * show the run history. Reads the same environment as the worker. Exit codes: 0 done, 1 failed,
 * 2 bad usage, 3 skipped because another run holds the lock.
 */
import { parseArgs } from 'node:util';
import { ConfigError, parseWorkerConfig, type WorkerConfig } from '../../shared/config.ts';
import type { EtlRunRecord } from '../../shared/etl/port.ts';
import { createLogger } from '../../shared/log.ts';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { ChdbDirectoryInUseError, createClickHouseOlap } from '../adapters/olap-clickhouse.ts';
import { createS3ObjectStore } from '../../edge/adapters/object-store-s3.ts';
import { createPostgresOltp } from '../adapters/oltp-postgres.ts';
import { migrateAll } from '../db/migrate.ts';
import { createWorkerRegions } from '../regions/stores.ts';
import { createEtl, etlRegionsOf, type BackfillProgress } from './index.ts';
import type { JobOutcome } from './job.ts';
import type { RegionEtl } from './schedule.ts';

const HELP = `Usage: npm run etl -- <command> [options]
       (or: node --import tsx workers/etl/cli.ts <command> [options])

Loads device telemetry joined with the CRM into ClickHouse (user_prosthesis_stats, per user, chip
and UTC day; user_prosthesis_stats_hourly per hour) and invalidates the affected users' reports.
With REGIONS set, each region is its own job: its telemetry and CRM into its ClickHouse database.

Commands:
  run                          run the incremental job once now: from the watermark minus the
                               late-data allowance to now; moves the watermark when it succeeds
  backfill --from D --to D     recompute the whole UTC days D..D (inclusive, YYYY-MM-DD), one run
                               per --chunk-days days (default 1), with a progress bar on stderr;
                               never moves the watermark
  runs [--limit N]             the newest runs (default 20)
  status                       watermark, run in progress, last run and last success

Options:
  --region ID                  only this region (with REGIONS set); without it every region:
                               run and backfill one region after the other, runs and status of all
  --json                       print JSON instead of text
  -h, --help                   show this help

Environment: the worker's (see README "Configuration" and "Telemetry and ETL"): the three
PostgreSQL URLs, CLICKHOUSE_URL or CHDB_PATH, UPSTASH_REDIS_REST_URL/TOKEN (report invalidation),
ETL_LATE_ALLOWANCE_MINUTES, ETL_CRM_SOURCE, ETL_READ_SLICES, ETL_PG_ADDRESS_FOR_CLICKHOUSE.
With chDB (no CLICKHOUSE_URL) only one process may open CHDB_PATH: while the worker runs, use
the etl.run procedure instead, or stop the worker.

Exit codes: 0 done, 1 failed, 2 bad usage, 3 skipped (another run is in progress).`;

class UsageError extends Error {}

const out = (s: string) => process.stdout.write(s + '\n');

function parseDay(name: string, v: string | undefined): Date {
  if (!v || !/^\d{4}-\d{2}-\d{2}$/.test(v) || Number.isNaN(Date.parse(`${v}T00:00:00Z`))) throw new UsageError(`--${name} must be a date YYYY-MM-DD, got "${v ?? ''}"`);
  return new Date(`${v}T00:00:00Z`);
}

function positive(name: string, v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`--${name} must be an integer from 1 to ${max}, got "${v}"`);
  return n;
}

const fmtDuration = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);

// Regions are named only when there are several (or any configured): implicit-mode lines stay as they were.
let showRegion = false;

function runLine(r: EtlRunRecord): string {
  const where = showRegion ? `[${r.region}] ` : '';
  const window = r.windowFrom && r.windowTo ? `${r.windowFrom.slice(0, 16)} → ${r.windowTo.slice(0, 16)}` : '—';
  const nums = r.status === 'succeeded' ? `read ${r.rowsRead} written ${r.rowsWritten} users ${r.affectedUsers}` : r.error ? `error: ${r.error.slice(0, 100)}` : '';
  return `#${r.id} ${where}${r.kind.padEnd(9)} ${r.status.padEnd(9)} ${window}  ${r.durationMs === null ? '' : fmtDuration(r.durationMs).padStart(8)}  ${nums}`;
}

/** A progress bar with rate and ETA on stderr (one line per chunk when stderr is not a terminal). */
function progressBar(started: number) {
  const tty = process.stderr.isTTY;
  return (p: BackfillProgress) => {
    const elapsed = Date.now() - started;
    const eta = p.done > 0 ? (elapsed / p.done) * (p.total - p.done) : 0;
    const rate = elapsed > 0 ? Math.round(p.rowsRead / (elapsed / 1000)) : 0;
    const day = p.window.dayFrom.toISOString().slice(0, 10);
    const text = `${showRegion ? `[${p.region}] ` : ''}${p.done}/${p.total} chunks (${day}) ${p.rowsRead} readings, ${rate}/s, elapsed ${fmtDuration(elapsed)}, ETA ${fmtDuration(eta)}`;
    if (tty) {
      const width = 30;
      const bar = '#'.repeat(Math.round((p.done / p.total) * width)).padEnd(width, '.');
      process.stderr.write(`\r[${bar}] ${String(Math.round((p.done / p.total) * 100)).padStart(3)}% ${text}\x1b[K${p.done === p.total ? '\n' : ''}`);
    } else {
      process.stderr.write(`backfill: ${text}\n`);
    }
  };
}

function exitCode(o: JobOutcome): number {
  return o.status === 'succeeded' ? 0 : o.status === 'skipped' ? 3 : 1;
}

/** Several regions' exit codes: a failure wins over a skip. */
const worst = (codes: number[]) => (codes.includes(1) ? 1 : codes.includes(3) ? 3 : 0);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { region: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, 'chunk-days': { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  const command = positionals[0];
  if (values.help || !command) { out(HELP); return command || values.help ? 0 : 2; }
  if (!['run', 'backfill', 'runs', 'status'].includes(command) || positionals.length > 1) throw new UsageError(`unknown command "${positionals.join(' ')}"`);
  const backfill = command === 'backfill' ? { from: parseDay('from', values.from), to: parseDay('to', values.to), chunkDays: positive('chunk-days', values['chunk-days'], 1, 366) } : null;
  if (backfill && backfill.to < backfill.from) throw new UsageError('--to must not be before --from');
  const limit = positive('limit', values.limit, 20, 100);

  let config: WorkerConfig;
  try {
    config = parseWorkerConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) { process.stderr.write(err.message + '\n'); return 2; }
    throw err;
  }
  const log = createLogger({ level: config.logLevel === 'debug' ? 'debug' : 'warn', write: (l) => process.stderr.write(l + '\n') });
  const oltp = {
    crm: createPostgresOltp(config.oltp.crm, { max: 2 }),
    telemetry: createPostgresOltp(config.oltp.telemetry, { max: 2 }),
    platform: createPostgresOltp(config.oltp.platform, { max: 3 }),
  };
  const needsOlap = command === 'run' || command === 'backfill';
  let olap: Awaited<ReturnType<typeof createClickHouseOlap>> | undefined;
  let closeRegions = async () => {};
  try {
    if (needsOlap) {
      try {
        olap = await createClickHouseOlap(config.olap);
      } catch (err) {
        if (!(err instanceof ChdbDirectoryInUseError)) throw err;
        process.stderr.write(`${err.message}\nWhile the worker runs, trigger runs through the etl.run procedure instead.\n`);
        return 1;
      }
    }
    // `runs` and `status` read only the platform database: ClickHouse is opened for runs alone.
    const regions = createWorkerRegions(config, { oltp, objectStore: createS3ObjectStore(config.objectStore), olap });
    closeRegions = () => regions.close();
    if (config.migrateOnStart) {
      await migrateAll({ telemetry: oltp.telemetry, platform: oltp.platform, olap });
      await regions.migrate();
    }
    const etl = createEtl({
      regions: etlRegionsOf(regions.ports), platform: oltp.platform.sql, config: { ...config.etl, enabled: false },
      kv: needsOlap ? createUpstashKv(config.kv) : undefined, log,
      analytics: config.analytics.pseudonymKey ? { key: config.analytics.pseudonymKey, centralDatabase: config.olap.database } : undefined,
    });
    showRegion = !config.regions.implicit;
    if (values.region !== undefined && !etl.service.regions.includes(values.region)) {
      throw new UsageError(`unknown region "${values.region}"; the ETL runs for: ${etl.service.regions.join(', ')}`);
    }
    const jobs: readonly RegionEtl[] = values.region === undefined ? etl.regions : [etl.region(values.region)];
    if (command === 'runs') {
      const page = await etl.service.runs({ limit, region: values.region });
      if (values.json) out(JSON.stringify(page.items, null, 2));
      else if (page.items.length === 0) out('No runs yet.');
      else for (const r of page.items) out(runLine(r));
      return 0;
    }
    if (command === 'status') {
      const all = await Promise.all(jobs.map((j) => j.status()));
      if (values.json) out(JSON.stringify(all.length === 1 ? all[0] : { regions: all }, null, 2));
      else {
        for (const s of all) {
          if (showRegion) out(`region ${s.region}:`);
          out(`watermark: ${s.watermark ?? 'none yet (the first run starts at the earliest reading)'}`);
          out(`running:   ${s.running ? runLine(s.running) : 'no'}`);
          out(`last run:  ${s.lastRun ? runLine(s.lastRun) : '—'}`);
          out(`last ok:   ${s.lastSuccess ? runLine(s.lastSuccess) : '—'}`);
        }
      }
      return 0;
    }
    const codes: number[] = [];
    const json: unknown[] = [];
    // One region after the other: with chDB they would queue on its one session anyway.
    for (const job of jobs) {
      const where = showRegion ? `[${job.region}] ` : '';
      if (command === 'run') {
        const o = await job.trigger({ kind: 'manual', triggeredBy: 'cli' });
        if (values.json) json.push({ ...o, region: job.region });
        else if (o.status === 'succeeded') out(runLine(o.run));
        else if (o.status === 'skipped') out(`${where}skipped: ${o.reason}${o.runningRunId ? ` (run #${o.runningRunId})` : ''}`);
        else out(`${where}failed: ${o.error}`);
        codes.push(exitCode(o));
        continue;
      }
      const started = Date.now();
      const outcomes = await job.backfill(backfill!.from, backfill!.to, { chunkDays: backfill!.chunkDays, triggeredBy: 'cli', onProgress: progressBar(started) });
      const last = outcomes[outcomes.length - 1];
      const ok = outcomes.filter((o) => o.status === 'succeeded');
      const rows = ok.reduce((n, o) => n + (o.status === 'succeeded' ? o.run.rowsRead ?? 0 : 0), 0);
      if (values.json) json.push(outcomes.map((o) => ({ ...o, region: job.region })));
      else if (last?.status === 'succeeded') out(`${where}backfill done: ${ok.length} runs, ${rows} readings in ${fmtDuration(Date.now() - started)}`);
      else out(`${where}backfill stopped after ${ok.length} runs: ${last?.status === 'failed' ? last.error : last?.status === 'skipped' ? last.reason : 'nothing to do'}`);
      codes.push(last ? exitCode(last) : 0);
    }
    if (values.json) out(JSON.stringify(json.length === 1 ? json[0] : { regions: json }, null, 2));
    return worst(codes);
  } finally {
    await closeRegions();
    await olap?.close();
    await Promise.allSettled([oltp.crm.close(), oltp.telemetry.close(), oltp.platform.close()]);
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`error: ${(err as Error).message}\n\n${HELP}\n`);
    process.exit(2);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  // One line for scripts and people; the stack only when debugging.
  const debug = process.env.LOG_LEVEL === 'debug';
  process.stderr.write(`error: ${err instanceof Error ? (debug ? err.stack ?? err.message : err.message) : String(err)}\n`);
  process.exit(1);
});
