/**
 * One transaction's row changes and truncates → change events for the publisher, or not: a change is
 * skipped while its table waits for its first load, is quarantined, or when the table's snapshot
 * already holds it (a replay from before the snapshot point).
 */
import type { Pgoutput } from 'pg-logical-replication';
import { EnvelopeBuilder, unchangedColumns, type TxInfo } from './envelopes.ts';
import { lsnOfVersion, versionOf } from './lsn.ts';
import type { CdcParts } from './parts.ts';
import type { Publisher } from './publisher.ts';
import type { TableRuntime } from './runtime.ts';
import type { Signal } from './source.ts';

/** A transaction between its BEGIN and COMMIT. */
export interface OpenTx extends TxInfo {
  /** Position of the next change inside the transaction. */
  seq: number;
  builders: Map<string, EnvelopeBuilder>;
  signals: Signal[];
  /** The send time a heartbeat in this transaction carried. */
  heartbeat: number | null;
  /** Set once this transaction is known visible to new snapshots of the source (see fillUnchanged). */
  visible?: boolean;
}

export type RowMessage = Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete;

/** Why a change of `rt` in `tx` is not published, or null when it is. */
export function skipReason(tx: OpenTx, rt: TableRuntime): string | null {
  const st = rt.state;
  if (st.status === 'pending' || st.status === 'quarantined') return st.status;
  return tx.lsn <= lsnOfVersion(st.floor) ? 'in_snapshot' : null;
}

function builder(tx: OpenTx, rt: TableRuntime, p: CdcParts): EnvelopeBuilder {
  let b = tx.builders.get(rt.state.table);
  if (!b) tx.builders.set(rt.state.table, (b = new EnvelopeBuilder(rt.state.table, rt.state.primaryKey, tx, p.options.topicPrefix)));
  return b;
}

/** Adds the events of one row change of `rt` (undefined: not a captured table); returns how many. */
export async function publishChange(tx: OpenTx, msg: RowMessage, rt: TableRuntime | undefined, publisher: Publisher, p: CdcParts): Promise<number> {
  // Positions are taken whatever happens to the change, so a replay numbers everything alike.
  const seq = tx.seq;
  tx.seq += msg.tag === 'update' ? EnvelopeBuilder.updateSeqs(msg) : 1;
  if (!rt) return 0;
  const skip = skipReason(tx, rt);
  if (skip) {
    rt.skipped++;
    p.metrics.skipped.inc({ table: rt.state.table, reason: skip });
    return 0;
  }
  if (msg.tag === 'update') await fillUnchanged(tx, rt, msg, p);
  const b = builder(tx, rt, p);
  const messages = msg.tag === 'insert' ? b.insert(msg, seq) : msg.tag === 'update' ? b.update(msg, seq) : b.delete(msg, seq);
  publisher.add(b.topic, messages);
  rt.changes += messages.length;
  for (const m of messages) p.metrics.changes.inc({ table: rt.state.table, op: m.value.op });
  return messages.length;
}

/**
 * pgoutput leaves TOASTed values an update did not change out of its new row. They are read from the
 * source's current row instead: if the row changed again since, that later change is in the stream
 * too, with a higher version, so the replica still ends with the right value; if it is gone, a
 * delete follows. (REPLICA IDENTITY FULL would send them, at the cost of logging every old row.)
 * The read waits until the transaction itself is visible: its commit reaches the stream a moment
 * before the committing backend leaves the proc array, and a read in that moment would return the row
 * as it was before, an older value with a newer version (seen in CI).
 */
async function fillUnchanged(tx: OpenTx, rt: TableRuntime, msg: Pgoutput.MessageUpdate, p: CdcParts): Promise<void> {
  const missing = unchangedColumns(msg.new);
  if (missing.length === 0) return;
  if (!tx.visible) {
    if (!(await p.source.waitVisible([tx.xid]))) throw new Error(`transaction ${tx.xid} did not become visible in time; its unchanged TOAST values cannot be read yet`);
    tx.visible = true;
  }
  const columns = missing.map((name) => {
    const c = msg.relation.columns.find((col) => col.name === name);
    return { name, typeOid: c?.typeOid ?? 25, typeMod: c?.typeMod ?? -1 };
  });
  const now = await p.source.currentValues(rt.state.table, rt.state.primaryKey, msg.new, columns);
  for (const c of missing) msg.new[c] = now ? now[c] : null;
}

/**
 * Adds a truncate event for each captured table of a TRUNCATE, after `barrier` (the sink has written
 * everything published before it). Returns how many.
 */
export async function publishTruncate(
  tx: OpenTx, msg: Pgoutput.MessageTruncate, table: (oid: number) => TableRuntime | undefined,
  publisher: Publisher, barrier: () => Promise<void>, p: CdcParts,
): Promise<number> {
  const targets = msg.relations.map((rel) => ({ rt: rel ? table(rel.relationOid) : undefined, seq: tx.seq++ }));
  const live = targets.filter((t): t is { rt: TableRuntime; seq: number } => !!t.rt && !skipReason(tx, t.rt));
  if (live.length === 0) return 0;
  await barrier();
  for (const { rt, seq } of live) {
    const b = builder(tx, rt, p);
    publisher.add(b.topic, [b.truncate(seq)]);
    rt.truncatedAt = versionOf(tx.lsn, seq);
    rt.changes++;
    p.metrics.changes.inc({ table: rt.state.table, op: 't' });
  }
  return live.length;
}
