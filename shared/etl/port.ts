/**
 * What the router sees of the ETL (workers/etl implements it): trigger a run, read the history,
 * read the status. Dates are ISO strings so the shapes cross tRPC and the CLI unchanged.
 *
 * The ETL runs per region (data residency): one job per configured region, each with its own lock,
 * watermark, history and retries. Without `REGIONS` there is one region, `default`.
 */
export type EtlRunKind = 'scheduled' | 'manual' | 'retry' | 'backfill';
export type EtlRunStatus = 'running' | 'succeeded' | 'failed';

export interface EtlRunRecord {
  id: number;
  /** The region whose telemetry and CRM the run read and whose ClickHouse database it wrote. */
  region: string;
  kind: EtlRunKind;
  triggeredBy: string;
  attempt: number;
  status: EtlRunStatus;
  /** Event-time window read from telemetry, `[windowFrom, windowTo)`. */
  windowFrom: string | null;
  windowTo: string | null;
  watermarkBefore: string | null;
  watermarkAfter: string | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  rowsRead: number | null;
  rowsWritten: number | null;
  affectedUsers: number | null;
  error: string | null;
}

export type EtlRunOutcome =
  | { status: 'succeeded'; run: EtlRunRecord }
  | { status: 'failed'; run: EtlRunRecord | null; error: string; nextRetryAt: string | null }
  /** Another run holds the lock (in this process or another); nothing was done. */
  | { status: 'skipped'; reason: string; runningRunId: number | null };

/** An outcome of one region's run. */
export type EtlRegionRunOutcome = EtlRunOutcome & { region: string };

export interface EtlStatus {
  job: string;
  region: string;
  watermark: string | null;
  running: EtlRunRecord | null;
  lastRun: EtlRunRecord | null;
  lastSuccess: EtlRunRecord | null;
  schedule: { enabled: boolean; cron: string; nextRunAt: string | null; nextRetryAt: string | null };
  lateAllowanceMinutes: number;
  crmSource: 'postgres' | 'clickhouse';
}

/** Every region's answer, in `REGIONS` order: what `run` and `status` give without a region when there are several. */
export interface EtlPerRegion<T> { regions: T[] }

/** A region this host does not run the ETL for; the router answers BAD_REQUEST. */
export class EtlUnknownRegionError extends Error {
  override readonly name = 'EtlUnknownRegionError';
  constructor(readonly region: string, readonly known: readonly string[]) {
    super(`Unknown region "${region}"; the ETL runs for: ${known.join(', ')}`);
  }
}

/**
 * `region` is optional everywhere: with one region it is that one; with several, `run` and `status`
 * without a region act on every region (each region's answer in `regions`) and `runs` lists the
 * runs of all regions, newest first.
 */
export interface EtlService {
  /** The regions the ETL runs for, in `REGIONS` order. */
  readonly regions: readonly string[];
  /** Runs the incremental job now and resolves when it ends (or at once when another run is in progress). */
  run(opts: { triggeredBy: string; region?: string }): Promise<EtlRegionRunOutcome | EtlPerRegion<EtlRegionRunOutcome>>;
  /** Newest first; `before` is the `id` cursor from a previous page (run ids are unique across regions). */
  runs(opts: { limit: number; before?: number; region?: string }): Promise<{ items: EtlRunRecord[]; nextCursor: number | null }>;
  status(opts?: { region?: string }): Promise<EtlStatus | EtlPerRegion<EtlStatus>>;
}
