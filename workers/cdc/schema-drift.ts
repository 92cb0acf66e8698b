/**
 * Schema changes, seen in the stream: pgoutput sends a relation message (the table's columns as of
 * that transaction) before a table's first change in a session and after every DDL on it.
 *
 * - An added column is added to the replica at once (`ALTER TABLE … ADD COLUMN`), before any event
 *   that carries it is published, with the value PostgreSQL gives existing rows as its DEFAULT.
 * - A dropped column stays in the replica (new rows get its default); it is reported once per process.
 * - A type change that maps to another ClickHouse type quarantines the table: its changes are no
 *   longer published (so nothing fails downstream and the slot keeps moving for the other tables)
 *   until `cdc resync <table>` rebuilds the replica with the new types.
 *
 * Relation messages of transactions at or below the replica's snapshot point are replays of history
 * the snapshot already holds, and a column absent from a relation older than the column is no drop.
 */
import type { Pgoutput } from 'pg-logical-replication';
import type { Logger } from '../../shared/log.ts';
import { formatLsn, lsnOfVersion } from './lsn.ts';
import type { CdcMetrics } from './metrics.ts';
import { chTypeOf, type ColumnSpec } from './pg-types.ts';
import type { Replica } from './replica.ts';
import type { EventSink, TableRuntime } from './runtime.ts';
import type { CrmSource } from './source.ts';

export interface DriftDeps { source: CrmSource; replica: Replica; log: Logger; metrics: CdcMetrics; events: EventSink }

const typeName = (c: Pick<ColumnSpec, 'typeOid' | 'typeMod' | 'chType'>) => `${c.chType} (pg type ${c.typeOid}, typmod ${c.typeMod})`;

/** Brings the replica of `rt` in line with a relation message seen in the transaction committed at `txLsn`. */
export async function applyRelation(rel: Pgoutput.MessageRelation, txLsn: bigint, rt: TableRuntime, deps: DriftDeps): Promise<void> {
  const st = rt.state;
  const table = st.table;
  if (st.status === 'pending' || st.status === 'quarantined' || txLsn <= lsnOfVersion(st.floor)) return;
  const known = new Map(st.columns.map((c) => [c.name, c]));
  const added: ColumnSpec[] = [];
  const changed: { name: string; from: ColumnSpec; to: ColumnSpec }[] = [];
  let retyped = false;
  for (const col of rel.columns) {
    const spec: ColumnSpec = {
      name: col.name, typeOid: col.typeOid, typeMod: col.typeMod, chType: chTypeOf(col.typeOid, col.typeMod),
      nullable: !st.primaryKey.includes(col.name),
    };
    const had = known.get(col.name);
    if (!had) added.push({ ...spec, addedAt: txLsn.toString() });
    else if (had.typeOid !== spec.typeOid || had.typeMod !== spec.typeMod) {
      if (had.chType === spec.chType) { had.typeOid = spec.typeOid; had.typeMod = spec.typeMod; retyped = true; }
      else changed.push({ name: col.name, from: had, to: spec });
    }
  }
  if (changed.length) {
    const what = changed.map((c) => `${c.name}: ${typeName(c.from)} → ${typeName(c.to)}`).join('; ');
    rt.state = {
      ...st, status: 'quarantined',
      reason: `column type changed at LSN ${formatLsn(txLsn)} (${what}); the replica no longer follows this table: run \`cdc resync ${table}\` to rebuild it`,
    };
    await deps.replica.save(rt.state);
    deps.log.error('cdc: incompatible schema change; table quarantined, other tables go on', { table, changes: what, lsn: formatLsn(txLsn) });
    deps.metrics.quarantined.set({ table }, 1);
    for (const c of changed) {
      deps.metrics.schemaChanges.inc({ table, kind: 'type_changed' });
      deps.events({ type: 'schema', table, kind: 'type_changed', column: c.name });
    }
    return;
  }
  const present = new Set(rel.columns.map((c) => c.name));
  for (const c of st.columns) {
    const older = c.addedAt !== undefined && BigInt(c.addedAt) > txLsn;
    if (present.has(c.name) || older || rt.reportedDrops.has(c.name)) continue;
    rt.reportedDrops.add(c.name);
    deps.log.warn('cdc: column dropped in the source; the replica keeps it and new rows get its default', { table, column: c.name, lsn: formatLsn(txLsn) });
    deps.metrics.schemaChanges.inc({ table, kind: 'dropped' });
    deps.events({ type: 'schema', table, kind: 'dropped', column: c.name });
  }
  for (const c of added) {
    const info = await deps.source.newColumn(rel.relationOid, c.name);
    await deps.replica.addColumn(table, c, info?.missingValue ?? null);
    st.columns.push(c);
    rt.reportedDrops.delete(c.name);
    if (info && info.missingValue === null && info.defaultExpr !== null) {
      deps.log.warn('cdc: column added with a volatile default: rows that existed then show NULL in the replica; run `cdc resync` to reload them', { table, column: c.name, default: info.defaultExpr });
    }
    deps.log.notice('cdc: column added to the replica', { table, column: c.name, type: c.chType, default: info?.missingValue ?? null });
    deps.metrics.schemaChanges.inc({ table, kind: 'added' });
    deps.events({ type: 'schema', table, kind: 'added', column: c.name });
  }
  if (added.length || retyped) await deps.replica.save(st);
}
