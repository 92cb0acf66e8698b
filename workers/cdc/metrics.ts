/**
 * CDC's Prometheus metrics (prom-client), registered on the registry the host passes in (or a
 * private one), so a worker can serve them with its others.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export type CdcMetrics = ReturnType<typeof createCdcMetrics>;

export function createCdcMetrics(registry: Registry = new Registry()) {
  const registers = [registry];
  return {
    registry,
    lagSeconds: new Gauge({ name: 'cdc_lag_seconds', help: 'Age of the oldest committed change not yet in ClickHouse', registers }),
    lagBytes: new Gauge({ name: 'cdc_lag_bytes', help: 'WAL between the current position and the slot\'s confirmed position', registers }),
    retainedWalBytes: new Gauge({ name: 'cdc_retained_wal_bytes', help: 'WAL the replication slot keeps on the source', registers }),
    alert: new Gauge({ name: 'cdc_lag_alert', help: '1 while lag is above the configured threshold', registers }),
    acknowledgedLsn: new Gauge({ name: 'cdc_acknowledged_lsn', help: 'Commit LSN the slot is acknowledged up to (as a number)', registers }),
    changes: new Counter({ name: 'cdc_changes_total', help: 'Row changes published to the bus', labelNames: ['table', 'op'] as const, registers }),
    skipped: new Counter({ name: 'cdc_skipped_changes_total', help: 'Changes not published (table pending, quarantined, or already in a snapshot)', labelNames: ['table', 'reason'] as const, registers }),
    transactions: new Counter({ name: 'cdc_transactions_total', help: 'Transactions received from the slot', registers }),
    sinkRows: new Counter({ name: 'cdc_sink_rows_total', help: 'Rows written to ClickHouse replicas', labelNames: ['table'] as const, registers }),
    sinkInsertSeconds: new Histogram({
      name: 'cdc_sink_insert_seconds', help: 'Duration of one ClickHouse insert of the sink', registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    }),
    schemaChanges: new Counter({ name: 'cdc_schema_changes_total', help: 'Schema changes seen in the stream', labelNames: ['table', 'kind'] as const, registers }),
    quarantined: new Gauge({ name: 'cdc_table_quarantined', help: '1 while a table is stopped by an incompatible schema change', labelNames: ['table'] as const, registers }),
    snapshotRows: new Counter({ name: 'cdc_snapshot_rows_total', help: 'Rows loaded by snapshots', labelNames: ['table'] as const, registers }),
    reconnects: new Counter({ name: 'cdc_reconnects_total', help: 'Replication sessions that ended with an error', registers }),
  };
}
