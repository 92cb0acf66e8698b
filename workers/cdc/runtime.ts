/**
 * What the parts of CDC share at run time: a captured table's live state, the progress events they
 * report (for tests, benchmarks and logs), and small helpers.
 */
import type { TableState } from './replica.ts';

/** A captured table as the capture holds it; `state` is what the replica's state table records. */
export interface TableRuntime {
  state: TableState;
  /** pg_class oid, as relation messages name it. */
  relationOid: number;
  changes: number;
  skipped: number;
  /** Dropped columns already reported in this process. */
  reportedDrops: Set<string>;
  /** Version of the newest TRUNCATE published: a snapshot running across it re-applies it. */
  truncatedAt: bigint | null;
}

/** Progress, reported as it happens. LSNs are PostgreSQL's text form. */
export type CdcEvent =
  | { type: 'streaming'; from: string }
  | { type: 'published'; lsn: string; events: number; commitTimeMs: number }
  /** `oldestCommitMs`: commit time of the oldest change in the batch (its age is the sink's end of the lag). */
  | { type: 'sunk'; table: string; rows: number; lsn: string; oldestCommitMs: number }
  | { type: 'acknowledged'; lsn: string }
  | { type: 'snapshot'; table: string; rows: number; ms: number; floorLsn: string }
  | { type: 'schema'; table: string; kind: 'added' | 'dropped' | 'type_changed' | 'rebuilt'; column?: string }
  | { type: 'error'; where: string; message: string };

export type EventSink = (e: CdcEvent) => void;

export class CdcError extends Error {
  override readonly name = 'CdcError';
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });

/** 1 s doubling to 30 s: how long to wait after `attempt` consecutive failures. */
export const backoff = (attempt: number) => Math.min(30_000, 1_000 * 2 ** Math.max(0, attempt - 1));

export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
