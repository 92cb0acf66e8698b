/**
 * One region's ETL as the worker runs it: a cron schedule, on-demand runs, retries with backoff
 * after a failed run, one run at a time in this process (and, through the job's lock, across
 * processes), and pre-building the affected users' reports when a reports builder is plugged in.
 * workers/etl/index.ts puts one of these per region behind the ETL service.
 */
import { Cron } from 'croner';
import type { EtlConfig } from '../../shared/etl/config.ts';
import type { EtlRunRecord, EtlStatus } from '../../shared/etl/port.ts';
import type { Logger } from '../../shared/log.ts';
import { listRuns, readWatermark, runSummary } from './history.ts';
import { runJob, type EtlJobDeps, type JobOutcome, type RunRequest } from './job.ts';
import { scrub } from './sources.ts';
import { backfillWindows, type RunWindow } from './window.ts';

/** Optional hook of the reports feature: build these users' reports ahead of their next visit. */
export interface ReportsPrebuilder { prebuild(userIds: readonly string[]): Promise<unknown> }

export interface BackfillProgress { done: number; total: number; window: RunWindow; rowsRead: number; region: string }
export interface BackfillOptions { chunkDays?: number; triggeredBy?: string; onProgress?: (p: BackfillProgress) => void }

export interface RegionEtlDeps extends EtlJobDeps {
  job: string;
  region: string;
  config: EtlConfig;
  reports?: ReportsPrebuilder;
  /** Called after every run attempt with its outcome (metrics, tests awaiting a retry). */
  onRun?: (req: RunRequest, outcome: JobOutcome, region: string) => void;
}

export interface RegionEtl {
  readonly region: string;
  readonly job: string;
  trigger(req: RunRequest): Promise<JobOutcome>;
  backfill(first: Date, last: Date, opts?: BackfillOptions): Promise<JobOutcome[]>;
  runs(o: { limit: number; before?: number }): Promise<{ items: EtlRunRecord[]; nextCursor: number | null }>;
  status(): Promise<EtlStatus>;
  start(): void;
  stop(): Promise<void>;
}

/** One region's job with its schedule and retries; nothing runs until `start` or `trigger`. */
export function createRegionEtl(deps: RegionEtlDeps): RegionEtl {
  const { config, job, region } = deps;
  const log = deps.log.child({ region });
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
    current = runJob(deps, req).catch((err): JobOutcome => {
      // The platform database itself failed: the run could not even be recorded.
      const error = scrub(err instanceof Error ? err.message : String(err), deps.sources.secrets);
      log.error('etl run could not complete', { kind: req.kind, error });
      return { status: 'failed', run: null, error, nextRetryAt: null };
    });
    try {
      const out = afterRun(req, await current);
      deps.onRun?.(req, out, region);
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

  return {
    region,
    job,
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
        opts.onProgress?.({ done: i + 1, total: windows.length, window, rowsRead, region });
      }
      return outcomes;
    },
    runs: (o) => listRuns(deps.platform, new Map([[job, region]]), o),
    async status(): Promise<EtlStatus> {
      const s = await runSummary(deps.platform, job, region);
      return {
        job, region, ...s,
        schedule: { enabled: config.enabled, cron: config.cron, nextRunAt: cron?.nextRun()?.toISOString() ?? null, nextRetryAt: nextRetryAt?.toISOString() ?? null },
        lateAllowanceMinutes: config.lateAllowanceMs / 60_000,
        crmSource: config.crmSource,
      };
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
