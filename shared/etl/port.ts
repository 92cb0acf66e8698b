/**
 * What the router sees of the ETL (workers/etl implements it): trigger a run, read the history,
 * read the status. Dates are ISO strings so the shapes cross tRPC and the CLI unchanged.
 */
export type EtlRunKind = 'scheduled' | 'manual' | 'retry' | 'backfill';
export type EtlRunStatus = 'running' | 'succeeded' | 'failed';

export interface EtlRunRecord {
  id: number;
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

export interface EtlStatus {
  job: string;
  watermark: string | null;
  running: EtlRunRecord | null;
  lastRun: EtlRunRecord | null;
  lastSuccess: EtlRunRecord | null;
  schedule: { enabled: boolean; cron: string; nextRunAt: string | null; nextRetryAt: string | null };
  lateAllowanceMinutes: number;
  crmSource: 'postgres' | 'clickhouse';
}

export interface EtlService {
  /** Runs the incremental job now and resolves when it ends (or at once when another run is in progress). */
  run(opts: { triggeredBy: string }): Promise<EtlRunOutcome>;
  /** Newest first; `before` is the `id` cursor from a previous page. */
  runs(opts: { limit: number; before?: number }): Promise<{ items: EtlRunRecord[]; nextCursor: number | null }>;
  status(): Promise<EtlStatus>;
}
