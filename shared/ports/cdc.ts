/**
 * Change data capture (CRM PostgreSQL → bus → ClickHouse) as the router sees it: a status report.
 * The worker that runs CDC (workers/cdc) implements {@link CdcControl}; hosts without CDC leave it out.
 */

/** Where one captured table stands. */
export interface CdcTableStatus {
  table: string;
  /**
   * `pending`: waiting for its initial snapshot; `snapshotting`: bulk load running while changes stream;
   * `streaming`: in step; `quarantined`: an incompatible schema change stopped it (see `reason`), other tables go on.
   */
  status: 'pending' | 'snapshotting' | 'streaming' | 'quarantined';
  reason: string | null;
  /** Rows the last snapshot loaded. */
  snapshotRows: number | null;
  /** Row changes published since this process started. */
  changes: number;
  /** Changes not published because the table was quarantined or not yet snapshotted. */
  skipped: number;
}

export interface CdcSlotStatus {
  name: string;
  exists: boolean;
  active: boolean;
  activePid: number | null;
  /** Everything before this position is in ClickHouse (PostgreSQL's `confirmed_flush_lsn`). */
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
  /** `reserved`, `extended`, `unreserved` or `lost` (pg_replication_slots.wal_status). */
  walStatus: string | null;
  currentLsn: string;
}

export interface CdcStatus {
  /** The region whose CRM this CDC captures (`default` without `REGIONS`). */
  region: string;
  /** `standby`: another process holds the slot; this one takes over when it goes away. */
  state: 'starting' | 'streaming' | 'standby' | 'reconnecting' | 'stopped';
  slot: CdcSlotStatus;
  /** Age of the oldest committed change not yet in ClickHouse (0 when in step). */
  lagSeconds: number;
  /** WAL between the current position and the slot's confirmed position. */
  lagBytes: number;
  /** WAL the slot keeps on the source's disk (current position − restart position). */
  retainedWalBytes: number;
  alert: { lagging: boolean; thresholdSeconds: number; thresholdBytes: number | null; reasons: string[] };
  capture: {
    receivedLsn: string | null;
    publishedLsn: string | null;
    acknowledgedLsn: string | null;
    transactions: number;
    changes: number;
    lastHeartbeatAt: string | null;
  };
  sink: { rows: number; pendingMessages: number | null; lastWriteAt: string | null };
  tables: CdcTableStatus[];
  lastError: string | null;
  checkedAt: string;
}

/** What the `cdc` router needs from the host: one CDC per region (shared/cdc/regions.ts). */
export interface CdcControl {
  /** The regions CDC runs for here, in `REGIONS` order (`['default']` without regions). */
  readonly regions: readonly string[];
  /**
   * One region's status; `region` may be left out when CDC runs for one region only.
   * @throws CdcRegionError (shared/cdc/regions.ts) when it is left out with several, or unknown
   */
  status(region?: string): Promise<CdcStatus>;
}
