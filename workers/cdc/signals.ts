/**
 * Signals: requests written into the WAL as transactional logical messages (`bionic.cdc.signal`), so
 * the capture meets them in commit order. A signal's commit LSN P is the point its snapshot stands
 * for (snapshots.ts): the table's changes up to P are covered by the load, later ones are streamed.
 *
 * - `initial`: first load of a `pending` table (setup.ts marks them; the capture signals them when it
 *   starts streaming).
 * - `resync`: reload, in place; a table whose schema no longer matches its replica (a quarantined one,
 *   or one whose columns changed) is rebuilt first, after the sink has written everything of the old
 *   shape.
 */
import { formatLsn, snapshotVersion } from './lsn.ts';
import type { CdcParts } from './parts.ts';
import type { TableRuntime } from './runtime.ts';
import type { Signal } from './source.ts';

export interface SignalContext {
  p: CdcParts;
  table(name: string): TableRuntime | undefined;
  /** Resolves once everything published so far is in ClickHouse. */
  barrier(): Promise<void>;
  /** Transactions received lately: the load waits until they are visible. */
  recentXids(): number[];
  /** The table's relation oid changed (it was dropped and created again). */
  rebind(oid: number, rt: TableRuntime): void;
}

/** Acts on a signal of the transaction committed at `lsn`; the state it records is durable when this resolves. */
export async function applySignal(s: Signal, lsn: bigint, c: SignalContext): Promise<void> {
  const { source, replica, log } = c.p;
  const rt = c.table(s.table);
  if (!rt) return log.warn('cdc: signal for a table that is not captured; ignored', { ...s });
  const floor = snapshotVersion(lsn);
  if (rt.state.floor >= floor) return; // a replay of a signal already acted on
  if (s.type === 'initial' && rt.state.status !== 'pending') return;
  const now = (await source.tables([s.table])).tables[0];
  if (!now) return log.error('cdc: cannot load a table that is gone from the source', { table: s.table });
  const sameShape = now.columns.length === rt.state.columns.length && now.primaryKey.join() === rt.state.primaryKey.join()
    && now.columns.every((col) => rt.state.columns.some((o) => o.name === col.name && o.chType === col.chType));
  if (rt.state.status === 'quarantined' || !sameShape) {
    await c.barrier();
    await replica.ensureTable(s.table, now.columns, now.primaryKey, { replace: true });
    log.notice('cdc: replica rebuilt with the current schema', { table: s.table });
    c.p.events({ type: 'schema', table: s.table, kind: 'rebuilt' });
  }
  rt.state = { ...rt.state, status: 'snapshotting', floor, columns: now.columns, primaryKey: now.primaryKey, reason: null };
  rt.reportedDrops.clear();
  c.rebind(now.oid, rt);
  await replica.save(rt.state);
  c.p.metrics.quarantined.set({ table: s.table }, 0);
  log.notice('cdc: snapshot scheduled', { table: s.table, kind: s.type, asOf: formatLsn(lsn) });
  c.p.snapshots.schedule({ table: s.table, floor, xids: c.recentXids() });
}

/** After (re)connecting: resume interrupted loads, and signal the first load of pending tables. */
export async function resumeLoads(p: CdcParts, tables: Iterable<TableRuntime>): Promise<void> {
  const pending: Signal[] = [];
  for (const { state: st } of tables) {
    if (st.status === 'snapshotting' && !p.snapshots.busy(st.table)) p.snapshots.schedule({ table: st.table, floor: st.floor, xids: [] });
    if (st.status === 'pending') pending.push({ type: 'initial', table: st.table, id: crypto.randomUUID() });
  }
  if (pending.length) await p.source.signal(pending);
}
