import type { Pgoutput } from 'pg-logical-replication';
import { describe, expect, it } from 'vitest';
import { bionicCodec } from '../../shared/bus/topics.ts';
import { EnvelopeBuilder, keyOf, SEQ_HEADER, unchangedColumns } from './envelopes.ts';

const rel = { relationOid: 1 } as Pgoutput.MessageRelation;
const tx = { lsn: 0x1234n, xid: 77, commitTimeMs: 1_700_000_000_000, db: 'crm' };
const b = new EnvelopeBuilder('orders', ['id'], tx);
const check = (ms: ReturnType<typeof b.insert>) => ms.map((m) => bionicCodec.decode(b.topic, bionicCodec.encode(b.topic, m.value)));

describe('change events', () => {
  it('keys by primary key, composite keys as JSON arrays', () => {
    expect(keyOf({ id: 5 }, ['id'])).toBe('5');
    expect(keyOf({ a: '9007199254740993', b: 'x' }, ['a', 'b'])).toBe('["9007199254740993","x"]');
  });

  it('builds Debezium-shaped inserts, updates and deletes that pass the topic schema', () => {
    const ins = b.insert({ tag: 'insert', relation: rel, new: { id: 1, status: 'DRAFT' } }, 0);
    const upd = b.update({ tag: 'update', relation: rel, key: null, old: null, new: { id: 1, status: 'APPROVED' } }, 1);
    const del = b.delete({ tag: 'delete', relation: rel, key: { id: 1 }, old: null }, 2);
    expect(check([...ins, ...upd, ...del]).map((e: any) => [e.op, e.before, e.after])).toEqual([
      ['c', null, { id: 1, status: 'DRAFT' }], ['u', null, { id: 1, status: 'APPROVED' }], ['d', { id: 1 }, null],
    ]);
    expect(ins[0]!.value.source).toEqual({ lsn: String(0x1234), txId: 77, db: 'crm', schema: 'public', table: 'orders', ts_ms: 1_700_000_000_000 });
    expect([...ins, ...upd, ...del].map((m) => [m.key, m.headers![SEQ_HEADER]])).toEqual([['1', '0'], ['1', '1'], ['1', '2']]);
  });

  it('turns a primary-key change into a delete of the old key and a create of the new one', () => {
    const m = { tag: 'update', relation: rel, key: { id: 1 }, old: null, new: { id: 2, status: 'X' } } as Pgoutput.MessageUpdate;
    expect(EnvelopeBuilder.updateSeqs(m)).toBe(2);
    const [d, c] = b.update(m, 4);
    expect([d!.key, d!.value.op, d!.value.before, d!.headers![SEQ_HEADER]]).toEqual(['1', 'd', { id: 1 }, '4']);
    expect([c!.key, c!.value.op, c!.value.after, c!.headers![SEQ_HEADER]]).toEqual(['2', 'c', { id: 2, status: 'X' }, '5']);
    check([d!, c!]);
  });

  it('finds the columns pgoutput sent as unchanged TOAST, and numbers updates by the message alone', () => {
    expect(unchangedColumns({ id: 1, body: undefined, n: 2, gone: null })).toEqual(['body']);
    expect(EnvelopeBuilder.updateSeqs({ tag: 'update', relation: rel, key: null, old: null, new: {} })).toBe(1);
    expect(EnvelopeBuilder.updateSeqs({ tag: 'update', relation: rel, key: null, old: { id: 1 }, new: {} })).toBe(2);
  });
});
