/**
 * Operational events raised deep inside features (a rate-limit refusal, a token refresh, a report
 * cache lookup, a saga transition…) and counted by whichever metrics the process serves.
 *
 * Why a process-wide hub instead of a dependency: these call sites sit in modules whose
 * dependencies are not about metrics, and an event is fire-and-forget, so each site is one line
 * (`opsEvents.reportCache('miss')`) and a process without metrics pays one empty loop. Hosts attach
 * their metrics with {@link observeOpsEvents}; attachments are weak, so an app that is dropped
 * (tests build many) stops receiving events without being detached.
 */
export type CacheResult = 'memory_hit' | 'store_hit' | 'miss';
export type Outcome = 'ok' | 'failed';
export type EtlRunStatus = 'succeeded' | 'failed' | 'skipped';

export interface EtlRunEvent { region: string; status: EtlRunStatus; seconds: number | null; rowsRead: number; rowsWritten: number }

export interface OpsEvents {
  /** A request refused by a rate limiter (`login`, `api`). */
  rateLimitRejected(limiter: string): void;
  /** An access-token refresh at the identity provider, and whether it worked. */
  sessionRefresh(outcome: Outcome): void;
  /** One report lookup: this instance's memory, the object store, or neither. */
  reportCache(result: CacheResult): void;
  /** One report build, on demand (edge) or ahead of time (worker pre-builds). */
  reportBuild(outcome: Outcome): void;
  etlRun(run: EtlRunEvent): void;
  /** An applied saga transition (`from` is `NONE` for a new saga). */
  sagaTransition(from: string, to: string): void;
}

const sinks = new Set<WeakRef<OpsEvents>>();

function each(fn: (s: OpsEvents) => void): void {
  for (const ref of sinks) {
    const sink = ref.deref();
    if (!sink) { sinks.delete(ref); continue; }
    try { fn(sink); } catch { /* a metrics bug must never fail the request that raised the event */ }
  }
}

/** Raise events here; every attached sink counts them. */
export const opsEvents: OpsEvents = {
  rateLimitRejected: (limiter) => each((s) => s.rateLimitRejected(limiter)),
  sessionRefresh: (outcome) => each((s) => s.sessionRefresh(outcome)),
  reportCache: (result) => each((s) => s.reportCache(result)),
  reportBuild: (outcome) => each((s) => s.reportBuild(outcome)),
  etlRun: (run) => each((s) => s.etlRun(run)),
  sagaTransition: (from, to) => each((s) => s.sagaTransition(from, to)),
};

/** Attaches `sink` (held weakly: keep your own reference); returns the detach function. */
export function observeOpsEvents(sink: OpsEvents): () => void {
  const ref = new WeakRef(sink);
  sinks.add(ref);
  return () => { sinks.delete(ref); };
}
