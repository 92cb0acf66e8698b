/**
 * pgoutput row messages → Debezium-shaped change events (shared/bus/topics.ts), keyed by primary key.
 *
 * A primary-key change becomes a delete of the old key and a create of the new one (as Debezium
 * does), so each key's history stays in its own partition. Every event carries its position inside
 * the transaction in the `x-cdc-seq` header; the sink derives `_version` from it and the commit LSN.
 * Values pgoutput leaves out of an update (TOASTed values the update did not change, sent only as
 * "unchanged") are filled in by the capture before publishing (capture.ts), so `after` is whole.
 */
import type { Pgoutput } from 'pg-logical-replication';
import { cdcTopic, type CdcEnvelope } from '../../shared/bus/topics.ts';
import type { OutgoingMessage } from '../../shared/ports/bus.ts';

export const SEQ_HEADER = 'x-cdc-seq';

export type Row = Record<string, unknown>;
export type CdcMessage = OutgoingMessage<CdcEnvelope>;

/** One transaction as the envelopes need it. */
export interface TxInfo { lsn: bigint; xid: number; commitTimeMs: number; db: string }

/** The message key of a row: its primary key's text form; a composite key as a JSON array. */
export function keyOf(row: Row, primaryKey: readonly string[]): string {
  if (primaryKey.length === 1) return String(row[primaryKey[0]!]);
  return JSON.stringify(primaryKey.map((k) => row[k] ?? null));
}

/** Columns of an update's new row that pgoutput sent as "unchanged TOAST" (no value). */
export const unchangedColumns = (row: Row): string[] => Object.keys(row).filter((k) => row[k] === undefined);

const pick = (row: Row, cols: readonly string[]): Row => Object.fromEntries(cols.map((c) => [c, row[c]]));

/** Builds the events of one transaction's changes to one table; `seq` is a change's position in the transaction. */
export class EnvelopeBuilder {
  readonly topic: string;
  private readonly source: CdcEnvelope['source'];

  /** `topicPrefix`: Debezium's `topic.prefix` (`crm`, or a region's `crm_<region>`). */
  constructor(readonly table: string, private readonly primaryKey: readonly string[], tx: TxInfo, topicPrefix?: string) {
    this.topic = cdcTopic(table, topicPrefix);
    this.source = { lsn: tx.lsn.toString(), txId: tx.xid, db: tx.db, schema: 'public', table, ts_ms: tx.commitTimeMs };
  }

  private message(op: CdcEnvelope['op'], before: Row | null, after: Row | null, key: string, seq: number): CdcMessage {
    return { key, value: { before, after, op, source: this.source, ts_ms: Date.now() }, headers: { [SEQ_HEADER]: String(seq) } };
  }

  insert(m: Pgoutput.MessageInsert, seq: number): CdcMessage[] {
    return [this.message('c', null, m.new, keyOf(m.new, this.primaryKey), seq)];
  }

  /** Positions an update takes inside its transaction, whatever the table: two when it may change the key. */
  static updateSeqs(m: Pgoutput.MessageUpdate): number {
    // Fixed by the message alone, so replays number every change the same way whether or not it is published.
    return m.key || m.old ? 2 : 1;
  }

  update(m: Pgoutput.MessageUpdate, seq: number): CdcMessage[] {
    const after = m.new;
    const key = keyOf(after, this.primaryKey);
    // A changed key arrives as the old key tuple (REPLICA IDENTITY DEFAULT) or the whole old row (FULL).
    const oldKeyRow = m.key ?? m.old;
    const oldKey = oldKeyRow ? keyOf(oldKeyRow, this.primaryKey) : key;
    if (oldKey === key) return [this.message('u', m.old, after, key, seq)];
    const before = m.old ?? pick(oldKeyRow!, this.primaryKey);
    return [this.message('d', before, null, oldKey, seq), this.message('c', null, after, key, seq + 1)];
  }

  delete(m: Pgoutput.MessageDelete, seq: number): CdcMessage[] {
    const before = m.old ?? pick(m.key!, this.primaryKey);
    return [this.message('d', before, null, keyOf(before, this.primaryKey), seq)];
  }

  truncate(seq: number): CdcMessage {
    return this.message('t', null, null, this.table, seq);
  }
}
