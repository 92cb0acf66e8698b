/**
 * CDC's Prometheus metrics (prom-client), registered on the registry the host passes in (or a
 * private one), so a worker can serve them with its others. Every series carries the `region` whose
 * CRM it measures (`default` without `REGIONS`): the regions' CDCs share one registry, so each
 * metric is registered once and every region gets a view that fills in its label.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export type CdcMetrics = ReturnType<typeof createCdcMetrics>;

type Labels<L extends string> = Record<L, string | number>;

export function createCdcMetrics(registry: Registry = new Registry(), region = 'default') {
  const registers = [registry];
  // The first region's CDC registers a metric; the others find it (prom-client refuses a second one).
  // `region` comes first in every label set, so series read as before with a prefix: {region="…",table="…"}.
  const shared = <M>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M | undefined) ?? make();
  const gauge = (name: string, help: string) => {
    const g = shared(name, () => new Gauge({ name, help, labelNames: ['region'] as const, registers }));
    g.set({ region }, 0);
    return { set: (value: number) => g.set({ region }, value) };
  };
  const counter = (name: string, help: string) => {
    const c = shared(name, () => new Counter({ name, help, labelNames: ['region'] as const, registers }));
    c.inc({ region }, 0);
    return { inc: (value = 1) => c.inc({ region }, value) };
  };
  const labelledCounter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => {
    const c = shared(name, () => new Counter<L | 'region'>({ name, help, labelNames: ['region', ...labelNames], registers }));
    return { inc: (labels: Labels<L>, value = 1) => c.inc({ region, ...labels } as Labels<L | 'region'>, value) };
  };
  const quarantined = shared('cdc_table_quarantined', () => new Gauge<'region' | 'table'>({
    name: 'cdc_table_quarantined', help: '1 while a table is stopped by an incompatible schema change', labelNames: ['region', 'table'], registers,
  }));
  const insertSeconds = shared('cdc_sink_insert_seconds', () => new Histogram<'region'>({
    name: 'cdc_sink_insert_seconds', help: 'Duration of one ClickHouse insert of the sink', labelNames: ['region'], registers,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  }));
  return {
    registry,
    region,
    lagSeconds: gauge('cdc_lag_seconds', 'Age of the oldest committed change not yet in ClickHouse'),
    lagBytes: gauge('cdc_lag_bytes', 'WAL between the current position and the slot\'s confirmed position'),
    retainedWalBytes: gauge('cdc_retained_wal_bytes', 'WAL the replication slot keeps on the source'),
    alert: gauge('cdc_lag_alert', '1 while lag is above the configured threshold'),
    acknowledgedLsn: gauge('cdc_acknowledged_lsn', 'Commit LSN the slot is acknowledged up to (as a number)'),
    changes: labelledCounter('cdc_changes_total', 'Row changes published to the bus', ['table', 'op']),
    skipped: labelledCounter('cdc_skipped_changes_total', 'Changes not published (table pending, quarantined, or already in a snapshot)', ['table', 'reason']),
    transactions: counter('cdc_transactions_total', 'Transactions received from the slot'),
    sinkRows: labelledCounter('cdc_sink_rows_total', 'Rows written to ClickHouse replicas', ['table']),
    sinkInsertSeconds: { startTimer: () => insertSeconds.startTimer({ region }) },
    schemaChanges: labelledCounter('cdc_schema_changes_total', 'Schema changes seen in the stream', ['table', 'kind']),
    quarantined: { set: (labels: Labels<'table'>, value: number) => quarantined.set({ region, ...labels }, value) },
    snapshotRows: labelledCounter('cdc_snapshot_rows_total', 'Rows loaded by snapshots', ['table']),
    reconnects: counter('cdc_reconnects_total', 'Replication sessions that ended with an error'),
  };
}
