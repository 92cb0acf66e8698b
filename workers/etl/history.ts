/**
 * The ETL's bookkeeping in the platform database (infra/migrations/platform/003_etl.sql): the
 * watermark per job and one `etl_runs` row per run. Functions take any postgres.js connection so a
 * run can keep all its statements on the session that holds its lock.
 *
 * Each region is its own job (`jobName`), so lock, watermark and history are per region without a
 * column of their own; records carry the region their caller names for the job.
 */
import type postgres from 'postgres';
import type { EtlRunKind, EtlRunRecord } from '../../shared/etl/port.ts';

type Db = postgres.Sql | postgres.ReservedSql | postgres.TransactionSql;

interface RunRow {
  id: string; job: string; kind: EtlRunKind; triggered_by: string; attempt: number; status: EtlRunRecord['status'];
  window_from: Date | null; window_to: Date | null; watermark_before: Date | null; watermark_after: Date | null;
  started_at: Date; finished_at: Date | null; duration_ms: number | null; rows_read: string | null;
  rows_written: string | null; affected_users: number | null; error: string | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const int = (s: string | null) => (s === null ? null : Number(s));

function record(r: RunRow, region: string): EtlRunRecord {
  return {
    id: Number(r.id), region, kind: r.kind, triggeredBy: r.triggered_by, attempt: r.attempt, status: r.status,
    windowFrom: iso(r.window_from), windowTo: iso(r.window_to), watermarkBefore: iso(r.watermark_before),
    watermarkAfter: iso(r.watermark_after), startedAt: r.started_at.toISOString(), finishedAt: iso(r.finished_at),
    durationMs: r.duration_ms, rowsRead: int(r.rows_read), rowsWritten: int(r.rows_written),
    affectedUsers: r.affected_users, error: r.error,
  };
}

/** The job of the implicit region keeps its old name, so a single-region history carries on. */
export const DEFAULT_JOB = 'user_prosthesis_stats';

/** The job (lock, watermark, history) of a region's ETL: `user_prosthesis_stats:<region>`, or the plain name for the implicit region. */
export const jobName = (region: string, implicit: boolean) => (implicit ? DEFAULT_JOB : `${DEFAULT_JOB}:${region}`);

export async function readWatermark(db: Db, job: string): Promise<Date | null> {
  const [row] = await db<{ watermark: Date | null }[]>`SELECT watermark FROM etl_state WHERE job = ${job}`;
  return row?.watermark ?? null;
}

/** The newest run that succeeded: its id is the last good `_version` in ClickHouse. */
export async function lastSucceededId(db: Db, job: string): Promise<number> {
  const [row] = await db<{ id: string | null }[]>`SELECT max(id) AS id FROM etl_runs WHERE job = ${job} AND status = 'succeeded'`;
  return Number(row?.id ?? 0);
}

/** Marks runs left 'running' by a process that died as failed; only the lock holder may call it. */
export async function failAbandoned(db: Db, job: string): Promise<number> {
  const rows = await db`UPDATE etl_runs SET status = 'failed', finished_at = now(),
      duration_ms = (extract(epoch FROM now() - started_at) * 1000)::int,
      error = 'abandoned: the worker running it stopped before it finished'
    WHERE job = ${job} AND status = 'running' RETURNING id`;
  return rows.length;
}

export interface RunStart {
  job: string; kind: EtlRunKind; triggeredBy: string; attempt: number;
  windowFrom: Date | null; windowTo: Date | null; watermarkBefore: Date | null;
}

export async function startRun(db: Db, s: RunStart): Promise<number> {
  const [row] = await db<{ id: string }[]>`INSERT INTO etl_runs (job, kind, triggered_by, attempt, window_from, window_to, watermark_before)
    VALUES (${s.job}, ${s.kind}, ${s.triggeredBy}, ${s.attempt}, ${s.windowFrom}, ${s.windowTo}, ${s.watermarkBefore}) RETURNING id`;
  return Number(row!.id);
}

export interface RunSuccess { rowsRead: number; rowsWritten: number; affectedUsers: number; details: Record<string, unknown> }

/** Records success and, when `watermark` is given, moves the job's watermark — in one transaction. */
export async function finishRun(db: postgres.ReservedSql, job: string, id: number, s: RunSuccess, watermark?: Date): Promise<void> {
  await db`BEGIN`;
  try {
    await db`UPDATE etl_runs SET status = 'succeeded', finished_at = clock_timestamp(),
        duration_ms = (extract(epoch FROM clock_timestamp() - started_at) * 1000)::int,
        rows_read = ${s.rowsRead}, rows_written = ${s.rowsWritten}, affected_users = ${s.affectedUsers},
        watermark_after = ${watermark ?? null}, details = ${db.json(s.details as postgres.JSONValue)}
      WHERE id = ${id}`;
    if (watermark) {
      await db`INSERT INTO etl_state (job, watermark) VALUES (${job}, ${watermark})
        ON CONFLICT (job) DO UPDATE SET watermark = EXCLUDED.watermark, updated_at = now()`;
    }
    await db`COMMIT`;
  } catch (err) {
    await db`ROLLBACK`.catch(() => {});
    throw err;
  }
}

export async function failRun(db: Db, id: number, error: string): Promise<void> {
  await db`UPDATE etl_runs SET status = 'failed', finished_at = clock_timestamp(),
      duration_ms = (extract(epoch FROM clock_timestamp() - started_at) * 1000)::int, error = ${error.slice(0, 4000)}
    WHERE id = ${id}`;
}

export async function getRun(db: Db, id: number, region: string): Promise<EtlRunRecord | null> {
  const [row] = await db<RunRow[]>`SELECT * FROM etl_runs WHERE id = ${id}`;
  return row ? record(row, region) : null;
}

/** The runs of the given jobs (job → region), newest first; ids are one sequence, so pages mix regions in order. */
export async function listRuns(db: Db, jobs: ReadonlyMap<string, string>, o: { limit: number; before?: number }): Promise<{ items: EtlRunRecord[]; nextCursor: number | null }> {
  const rows = await db<RunRow[]>`SELECT * FROM etl_runs WHERE job IN ${db([...jobs.keys()])} ${o.before ? db`AND id < ${o.before}` : db``}
    ORDER BY id DESC LIMIT ${o.limit + 1}`;
  const items = rows.slice(0, o.limit).map((r) => record(r, jobs.get(r.job)!));
  return { items, nextCursor: rows.length > o.limit ? items[items.length - 1]!.id : null };
}

export async function runSummary(db: Db, job: string, region: string) {
  const [running] = await db<RunRow[]>`SELECT * FROM etl_runs WHERE job = ${job} AND status = 'running' ORDER BY id DESC LIMIT 1`;
  const [last] = await db<RunRow[]>`SELECT * FROM etl_runs WHERE job = ${job} ORDER BY id DESC LIMIT 1`;
  const [good] = await db<RunRow[]>`SELECT * FROM etl_runs WHERE job = ${job} AND status = 'succeeded' ORDER BY id DESC LIMIT 1`;
  return {
    watermark: iso(await readWatermark(db, job)),
    running: running ? record(running, region) : null,
    lastRun: last ? record(last, region) : null,
    lastSuccess: good ? record(good, region) : null,
  };
}
