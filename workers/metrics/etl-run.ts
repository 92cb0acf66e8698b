/** An ETL outcome as the metrics see it (workers/etl's `onRun` hook feeds it to the event hub). */
import type { EtlRunEvent } from '../../shared/metrics/events.ts';
import type { JobOutcome } from '../etl/job.ts';

export function etlRunEvent(out: JobOutcome, region: string): EtlRunEvent {
  const run = out.status === 'skipped' ? null : out.run;
  return {
    region,
    status: out.status,
    seconds: run?.durationMs == null ? null : run.durationMs / 1000,
    rowsRead: run?.rowsRead ?? 0,
    rowsWritten: run?.rowsWritten ?? 0,
  };
}
