/**
 * The ETL as the worker runs it: a cron schedule, on-demand runs for `etl.run`, retries with backoff
 * after a failed run, one run at a time in this process (and, through the lock, across processes),
 * and pre-building the affected users' reports when a reports builder is plugged in.
 */
import { Cron } from 'croner';
import type postgres from 'postgres';
import type { EtlConfig } from '../../shared/etl/config.ts';
import type { EtlService, EtlStatus } from '../../shared/etl/port.ts';
import type { Logger } from '../../shared/log.ts';
import type { Kv, Olap, OltpQueryable } from '../../shared/ports/index.ts';
import { listRuns, readWatermark, runSummary } from './history.ts';
import { DEFAULT_JOB, runJob, type EtlJobDeps, type JobOutcome, type RunRequest } from './job.ts';
import { etlSources, scrub } from './sources.ts';
import { backfillWindows, type RunWindow } from './window.ts';

/** Optional hook of the reports feature: build these users' reports ahead of their next visit. */
export interface ReportsPrebuilder { prebuild(userIds: readonly string[]): Promise<unknown> }

export interface EtlDeps {
  olap: Olap;
  platform: postgres.Sql;
  telemetry: OltpQueryable;
  /** PostgreSQL URLs ClickHouse reads through `postgresql()`. */
  telemetryUrl: string;
  crmUrl: string;
  config: EtlConfig;
  kv?: Kv;
  reports?: ReportsPrebuilder;
  log: Logger;
  now?: () => Date;
  job?: string;
  /** Called after every run attempt with its outcome (metrics, tests awaiting a retry). */
  onRun?: (req: RunRequest, outcome: JobOutcome) => void;
}

export interface BackfillProgress { done: number; total: number; window: RunWindow; rowsRead: number }

export interface Etl {
  readonly service: EtlService;
  /** Runs one request now (the CLI and tests use it; `service.run` is the manual trigger). */
  trigger(req: RunRequest): Promise<JobOutcome>;
  /** Recomputes whole UTC days `[first, last]`, `chunkDays` per run, waiting for the lock when busy. */
  backfill(first: Date, last: Date, opts?: { chunkDays?: number; triggeredBy?: string; onProgress?: (p: BackfillProgress) => void }): Promise<JobOutcome[]>;
  /** Starts the cron schedule (when enabled). */
  start(): void;
  /** Stops scheduling and retries, then waits for the run and pre-builds in progress. */
  stop(): Promise<void>;
}

export function createEtl(deps: EtlDeps): Etl {
  const { config, log } = deps;
  const job = deps.job ?? DEFAULT_JOB;
  const sources = etlSources({ telemetryUrl: deps.telemetryUrl, crmUrl: deps.crmUrl, crmSource: config.crmSource, pgAddress: config.pgAddressForClickHouse });
  const jobDeps: EtlJobDeps = { olap: deps.olap, platform: deps.platform, telemetry: deps.telemetry, sources, config, kv: deps.kv, log, now: deps.now, job };
  // Parse now: a bad ETL_CRON stops start-up instead of surfacing at the first tick.
  let cron: Cron | null = null;
  const probe = new Cron(config.cron, { timezone: 'UTC', paused: true });
  probe.stop();
  let current: Promise<JobOutcome> | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let nextRetryAt: Date | null = null;
  let stopped = false;
  const background = new Set<Promise<unknown>>();

  const track = (p: Promise<unknown>) => {
    background.add(p);
    void p.finally(() => background.delete(p));
  };

  async function trigger(req: RunRequest): Promise<JobOutcome> {
    if (current) return { status: 'skipped', reason: 'an ETL run is already in progress in this worker', runningRunId: null };
    current = runJob(jobDeps, req).catch((err): JobOutcome => {
      // The platform database itself failed: the run could not even be recorded.
      const error = scrub(err instanceof Error ? err.message : String(err), sources.secrets);
      log.error('etl run could not complete', { kind: req.kind, error });
      return { status: 'failed', run: null, error, nextRetryAt: null };
    });
    try {
      const out = afterRun(req, await current);
      deps.onRun?.(req, out);
      return out;
    } finally {
      current = null;
    }
  }

  function afterRun(req: RunRequest, out: JobOutcome): JobOutcome {
    if (out.status === 'succeeded') {
      if (req.kind !== 'backfill') clearRetry();
      const users = out.affectedUserIds ?? [];
      if (deps.reports && users.length > 0) {
        track(deps.reports.prebuild(users).catch((err) => log.error('pre-building reports failed', { users: users.length, err })));
      }
    } else if (out.status === 'failed' && req.kind !== 'backfill' && !stopped) {
      const attempt = req.attempt ?? 1;
      const p = config.retry;
      if (attempt < p.maximumAttempts) {
        const delay = Math.min(p.maximumIntervalMs, p.initialIntervalMs * p.backoffCoefficient ** (attempt - 1));
        const at = new Date(Date.now() + delay);
        const next = cron?.nextRun();
        // The schedule's next tick comes first anyway: it is the retry.
        if (!next || next > at) {
          clearRetry();
          nextRetryAt = at;
          retryTimer = setTimeout(() => {
            retryTimer = null;
            nextRetryAt = null;
            track(trigger({ kind: 'retry', triggeredBy: req.triggeredBy, attempt: attempt + 1 }));
          }, delay);
          retryTimer.unref?.();
          return { ...out, nextRetryAt: at.toISOString() };
        }
      } else {
        log.error('etl gave up retrying; the next scheduled run starts over from the same watermark', { attempts: attempt });
      }
    }
    return out;
  }

  function clearRetry() {
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    nextRetryAt = null;
  }

  const service: EtlService = {
    async run({ triggeredBy }) {
      const { affectedUserIds: _users, ...out } = await trigger({ kind: 'manual', triggeredBy });
      return out;
    },
    runs: (o) => listRuns(deps.platform, job, o),
    async status(): Promise<EtlStatus> {
      const s = await runSummary(deps.platform, job);
      return {
        job, ...s,
        schedule: { enabled: config.enabled, cron: config.cron, nextRunAt: cron?.nextRun()?.toISOString() ?? null, nextRetryAt: nextRetryAt?.toISOString() ?? null },
        lateAllowanceMinutes: config.lateAllowanceMs / 60_000,
        crmSource: config.crmSource,
      };
    },
  };

  return {
    service,
    trigger,
    async backfill(first, last, opts = {}) {
      const windows = backfillWindows(first, last, opts.chunkDays ?? 1);
      const outcomes: JobOutcome[] = [];
      let rowsRead = 0;
      for (let i = 0; i < windows.length; i++) {
        const window = windows[i]!;
        let out = await trigger({ kind: 'backfill', triggeredBy: opts.triggeredBy ?? 'cli', window });
        // Another run holds the lock: wait for it rather than skip part of the range.
        for (let waited = 0; out.status === 'skipped' && waited < 600; waited++) {
          await new Promise((r) => setTimeout(r, 1000));
          out = await trigger({ kind: 'backfill', triggeredBy: opts.triggeredBy ?? 'cli', window });
        }
        outcomes.push(out);
        if (out.status !== 'succeeded') break;
        rowsRead += out.run.rowsRead ?? 0;
        opts.onProgress?.({ done: i + 1, total: windows.length, window, rowsRead });
      }
      return outcomes;
    },
    start() {
      if (!config.enabled || cron || stopped) return;
      cron = new Cron(config.cron, { timezone: 'UTC', protect: true, unref: true }, () => {
        track(trigger({ kind: 'scheduled', triggeredBy: 'cron' }));
      });
      log.info('etl scheduled', { cron: config.cron, next: cron.nextRun()?.toISOString() });
      // A fresh install should not show empty reports until the first tick, up to 15 minutes away.
      if (config.runOnStart) {
        track(readWatermark(deps.platform, job).then((watermark) => {
          if (watermark || stopped) return;
          log.notice('etl has never run: catching up now');
          return trigger({ kind: 'scheduled', triggeredBy: 'start' });
        }).catch((err: unknown) => log.warn('etl catch-up at start failed; the schedule will retry', { error: String(err) })));
      }
    },
    async stop() {
      stopped = true;
      cron?.stop();
      clearRetry();
      await current;
      await Promise.allSettled([...background]);
    },
  };
}
