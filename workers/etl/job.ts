/**
 * One ETL run, start to end, under the job's lock: plan the window from the watermark, load hours
 * and days inside ClickHouse, find the users whose numbers changed, invalidate their reports, and
 * only then record success and move the watermark. Any failure records the run as failed and
 * leaves the watermark where it was, so the next run reads the same readings again.
 */
import type postgres from 'postgres';
import type { EtlConfig } from '../../shared/etl/config.ts';
import type { EtlRunKind, EtlRunOutcome } from '../../shared/etl/port.ts';
import type { Logger } from '../../shared/log.ts';
import type { Kv, Olap, OltpQueryable } from '../../shared/ports/index.ts';
import { DEFAULT_REGION_ID } from '../../shared/regions/config.ts';
import type { AnalyticsPublisher } from '../analytics/publish.ts';
import { DEFAULT_JOB, failAbandoned, failRun, finishRun, getRun, lastSucceededId, readWatermark, startRun } from './history.ts';
import { invalidateReports } from './invalidate.ts';
import { withRunLock } from './lock.ts';
import { scrub, type EtlSources } from './sources.ts';
import { affectedUsers, dailyInsert, hourlyInsert, runCounts, type Statement } from './statements.ts';
import { lateUploads, ownerChanges } from './repairs.ts';
import { incrementalWindow, windowOf, type RunWindow } from './window.ts';

const UTC_ZONES = new Set(['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT', 'UCT', 'Etc/UCT', 'Universal', 'Etc/Universal', 'Zulu', 'Etc/Zulu']);
// Clocks of the worker and PostgreSQL (which stamps received_at) may disagree by this much.
const CLOCK_SLACK_MS = 5 * 60_000;

export interface EtlJobDeps {
  olap: Olap;
  /** The platform database (lock, watermark, history). */
  platform: postgres.Sql;
  /** The telemetry database, for the small queries the worker makes itself. */
  telemetry: OltpQueryable;
  sources: EtlSources;
  config: Pick<EtlConfig, 'lateAllowanceMs' | 'readSlices'>;
  kv?: Kv;
  log: Logger;
  now?: () => Date;
  /** The job's name (lock, watermark, history); default {@link DEFAULT_JOB}. */
  job?: string;
  /** The region this job reads and writes (`olap`, `telemetry`, `sources` are its stores); default `default`. */
  region?: string;
  /** Appends the run's day rows, pseudonymised, to the central analytics table (workers/analytics). */
  analytics?: AnalyticsPublisher;
}

export interface RunRequest {
  kind: EtlRunKind;
  triggeredBy: string;
  attempt?: number;
  /** A backfill's window: recomputed without touching the watermark. */
  window?: RunWindow;
}

/** A run that succeeded lists the users whose reports it invalidated (for pre-building). */
export type JobOutcome = EtlRunOutcome & { affectedUserIds?: string[] };

/** A precondition of a run does not hold (e.g. the telemetry database is not on UTC). */
export class EtlRunError extends Error {
  override readonly name = 'EtlRunError';
}

/**
 * Runs one request under the job's lock. Resolves `skipped` at once when another session holds the
 * lock; `failed` when the run failed and was recorded so; rejects only when the platform database
 * itself fails (the run may then stay 'running' until the next holder marks it abandoned).
 */
export async function runJob(deps: EtlJobDeps, req: RunRequest): Promise<JobOutcome> {
  const job = deps.job ?? DEFAULT_JOB;
  const region = deps.region ?? DEFAULT_REGION_ID;
  const log = deps.log.child({ component: 'etl', job, region });
  const locked = await withRunLock(deps.platform, job, async (db) => {
    const abandoned = await failAbandoned(db, job);
    if (abandoned) log.warn('runs abandoned by a stopped worker marked failed', { count: abandoned });
    const watermark = await readWatermark(db, job);
    const previous = await lastSucceededId(db, job);
    const now = (deps.now ?? (() => new Date()))();
    // Upcoming months get their partitions before devices write into them (else they land in the
    // default partition); a no-op once they exist.
    await deps.telemetry.query(`SELECT telemetry_ensure_partitions(($1::timestamptz)::date, ($1::timestamptz + interval '40 days')::date)`, [now.toISOString()]);
    let window = req.window ?? null;
    if (!window) {
      const earliest = watermark ? null : await earliestReading(deps.telemetry);
      window = incrementalWindow({ now, watermark, earliest, lateAllowanceMs: deps.config.lateAllowanceMs });
    }
    const id = await startRun(db, {
      job, kind: req.kind, triggeredBy: req.triggeredBy, attempt: req.attempt ?? 1,
      windowFrom: window?.from ?? null, windowTo: window?.to ?? null, watermarkBefore: watermark,
    });
    const runLog = log.child({ runId: id });
    try {
      if (!window) {
        await finishRun(db, job, id, { rowsRead: 0, rowsWritten: 0, affectedUsers: 0, details: { note: 'no telemetry yet' } });
        return { status: 'succeeded' as const, run: (await getRun(db, id, region))!, affectedUserIds: [] };
      }
      const repairSince = req.window || !watermark ? null : new Date(watermark.getTime() - CLOCK_SLACK_MS);
      const loaded = await load(deps, { id, previous, window, repairSince });
      await invalidateReports(deps.kv, loaded.users);
      await finishRun(db, job, id, {
        rowsRead: loaded.rowsRead, rowsWritten: loaded.rowsWritten, affectedUsers: loaded.users.length,
        details: loaded.details,
      }, req.window ? undefined : window.to);
      const run = (await getRun(db, id, region))!;
      runLog.info('etl run succeeded', { kind: req.kind, rowsRead: run.rowsRead, rowsWritten: run.rowsWritten, affectedUsers: run.affectedUsers, durationMs: run.durationMs });
      return { status: 'succeeded' as const, run, affectedUserIds: loaded.users };
    } catch (err) {
      const message = scrub(err instanceof Error ? err.message : String(err), deps.sources.secrets);
      runLog.error('etl run failed', { kind: req.kind, attempt: req.attempt ?? 1, error: message });
      await failRun(db, id, message);
      return { status: 'failed' as const, run: await getRun(db, id, region), error: message, nextRetryAt: null };
    }
  });
  if (locked.acquired) return locked.value;
  const [running] = await deps.platform<{ id: string }[]>`SELECT id FROM etl_runs WHERE job = ${job} AND status = 'running' ORDER BY id DESC LIMIT 1`;
  return { status: 'skipped', reason: 'another ETL run is in progress', runningRunId: running ? Number(running.id) : null };
}

async function earliestReading(telemetry: OltpQueryable): Promise<Date | null> {
  const [row] = await telemetry.query<{ t: Date | null }>('SELECT min(ts) AS t FROM telemetry_events');
  return row?.t ?? null;
}

/** postgresql() pushes windows down as zone-less timestamps: the telemetry database must read them as UTC. */
async function checkUtc(telemetry: OltpQueryable) {
  const [row] = await telemetry.query<{ tz: string }>('SELECT current_setting(\'TimeZone\') AS tz');
  if (!row || !UTC_ZONES.has(row.tz)) {
    throw new EtlRunError(`the telemetry database's TimeZone is ${row?.tz}, not UTC: time windows would shift; apply infra/migrations/telemetry/002_ingest.sql or ALTER DATABASE … SET timezone TO 'UTC'`);
  }
}

async function load(deps: EtlJobDeps, o: { id: number; previous: number; window: RunWindow; repairSince: Date | null }) {
  const { olap, sources } = deps;
  const w = o.window;
  const exec = (s: Statement) => olap.command(s.sql, s.params);
  // Milliseconds per step, kept in the run's details.
  const ms: Record<string, number> = {};
  let mark = performance.now();
  const lap = (step: string) => { const t = performance.now(); ms[step] = Math.round((ms[step] ?? 0) + t - mark); mark = t; };
  await checkUtc(deps.telemetry);
  await exec(hourlyInsert(sources, { from: w.hourFrom, to: w.hourTo, version: o.id, readSlices: deps.config.readSlices }));
  lap('hourly');
  const repairs = o.repairSince ? await lateUploads(deps.telemetry, o.repairSince, w.hourFrom) : [];
  lap('findLate');
  if (o.repairSince) repairs.push(...await ownerChanges(olap, deps.telemetry, sources, o.repairSince, w.hourFrom));
  lap('findOwners');
  let dayFrom = w.dayFrom;
  for (const r of repairs) {
    const rw = windowOf(r.from, r.to);
    // Hours before this window only: the window's own hours were just recomputed for every device.
    const hourTo = rw.hourTo > w.hourFrom ? w.hourFrom : rw.hourTo;
    if (hourTo <= rw.hourFrom) continue;
    await exec(hourlyInsert(sources, { from: rw.hourFrom, to: hourTo, version: o.id, readSlices: 1, chips: r.chips }));
    await exec(dailyInsert({ dayFrom: rw.dayFrom, dayTo: rw.dayTo, version: o.id, chips: r.chips }));
    if (rw.dayFrom < dayFrom) dayFrom = rw.dayFrom;
  }
  lap('repairs');
  await exec(dailyInsert({ dayFrom: w.dayFrom, dayTo: w.dayTo, version: o.id }));
  lap('daily');
  const c = runCounts({ dayFrom, dayTo: w.dayTo, version: o.id });
  const [counts] = await olap.query<{ rows_read: string | null; rows_written: string }>(c.sql, c.params);
  const a = affectedUsers({ dayFrom, dayTo: w.dayTo, version: o.id, previous: o.previous });
  const users = (await olap.query<{ user_id: string }>(a.sql, a.params)).map((r) => r.user_id);
  lap('affected');
  // Part of the run: a failure fails it, so the retry publishes the same days again (idempotent).
  const published = deps.analytics ? await deps.analytics.publish({ version: o.id, dayFrom, dayTo: w.dayTo }) : null;
  if (published) lap('analytics');
  const repaired = (reason: string) => repairs.filter((r) => r.reason === reason).reduce((n, r) => n + r.chips.length, 0);
  return {
    rowsRead: Number(counts?.rows_read ?? 0),
    rowsWritten: Number(counts?.rows_written ?? 0),
    users,
    details: {
      ms, lateUploadDevices: repaired('late-upload'), ownerChangedDevices: repaired('owner-changed'),
      ...(published ? { pseudonymisedRows: published.rows } : {}),
    },
  };
}
