import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BusSchemaError, defineCodec } from './codec.ts';
import { bionicCodec, cdcEnvelopeSchema, cdcTopic, cdcTopicPrefix, cdcTopicSpecsFor, isCdcEnvelope, SAGA_TOPICS, type CdcEnvelope } from './topics.ts';

const envelope = (over: Partial<CdcEnvelope> = {}): CdcEnvelope => ({
  before: null,
  after: { id: 7, status: 'DRAFT' },
  op: 'c',
  source: { lsn: '23861544', txId: 771, schema: 'public', table: 'orders', ts_ms: 1_700_000_000_000 },
  ts_ms: 1_700_000_000_123,
  ...over,
});
const saga = { messageId: 'm-1', sagaId: 's-1', type: 'APPROVE_ORDER', payload: { orderId: 7 }, ts: 1_700_000_000_000 };
const reasonOf = (fn: () => unknown) => {
  try { fn(); } catch (err) { expect(err).toBeInstanceOf(BusSchemaError); return (err as BusSchemaError).reason; }
  throw new Error('expected a BusSchemaError');
};

describe('bus codec and topics', () => {
  it('round-trips CDC envelopes of every operation on crm.public.<table>', () => {
    const topic = cdcTopic('orders');
    const cases = [
      envelope(),
      envelope({ op: 'r', source: { ...envelope().source, snapshot: 'true' } }),
      envelope({ op: 'u', before: { id: 7, status: 'DRAFT' }, after: { id: 7, status: 'APPROVED' } }),
      envelope({ op: 'u', before: null, after: { id: 7 } }),
      envelope({ op: 'd', before: { id: 7 }, after: null }),
      envelope({ op: 't', before: null, after: null }),
    ];
    for (const e of cases) expect(bionicCodec.decode(topic, bionicCodec.encode(topic, e))).toEqual(e);
  });

  it('rejects envelopes whose rows do not fit their operation, naming the field', () => {
    const topic = cdcTopic('orders');
    expect(reasonOf(() => bionicCodec.encode(topic, envelope({ op: 'd' })))).toMatch(/before: must be a row when op is 'd'.*after: must be null/);
    expect(reasonOf(() => bionicCodec.encode(topic, envelope({ op: 'c', before: { id: 1 } })))).toMatch(/before: must be null/);
    expect(reasonOf(() => bionicCodec.encode(topic, envelope({ op: 'x' as 'c' })))).toMatch(/^op:/);
    expect(reasonOf(() => bionicCodec.encode(topic, { ...envelope(), source: { ...envelope().source, lsn: 123 } }))).toMatch(/source\.lsn/);
  });

  it('the fast CDC check accepts exactly what the schema accepts', () => {
    const base = envelope() as unknown as Record<string, unknown>;
    const src = base.source as Record<string, unknown>;
    const rows: unknown[] = [null, { id: 1 }, {}, [], 'x', 1, undefined, new Date(0), Object.create(null)];
    const variants: unknown[] = [base, null, [], 'x', { ...base, extra: 1 }, { ...base, ts_ms: 1.5 }, { ...base, ts_ms: '1' }, { ...base, ts_ms: undefined }];
    for (const op of ['c', 'u', 'd', 'r', 't', 'x', 1, undefined]) {
      for (const before of rows) for (const after of rows) variants.push({ ...base, op, before, after });
    }
    const sources: Record<string, unknown[]> = {
      lsn: ['0', '123', '', '12a', 12, ' 1', undefined], txId: [0, 5, -1, 1.5, '5', NaN, undefined],
      db: ['crm', '', 3, undefined, null], schema: ['public', '', 1, undefined], table: ['t', '', undefined],
      ts_ms: [0, -5, 1.5, Infinity, undefined], snapshot: ['true', 'last', 'false', 'yes', true, undefined, null],
    };
    for (const [k, vs] of Object.entries(sources)) for (const v of vs) variants.push({ ...base, source: { ...src, [k]: v } });
    variants.push({ ...base, source: null }, { ...base, source: [] }, { ...base, source: undefined });
    let accepted = 0;
    for (const v of variants) {
      // Never true where the schema says no…
      if (isCdcEnvelope(v)) expect(cdcEnvelopeSchema.safeParse(v).success, JSON.stringify(v)).toBe(true);
      // …and true for everything the schema accepts in the shape it arrives in from JSON.
      if (v === undefined) continue;
      const wire = JSON.parse(JSON.stringify(v)) as unknown;
      const zod = cdcEnvelopeSchema.safeParse(wire).success;
      expect(isCdcEnvelope(wire), JSON.stringify(v)).toBe(zod);
      if (zod) accepted++;
    }
    expect(accepted).toBeGreaterThan(20);
  });

  it('checks saga commands and events on their topics', () => {
    for (const topic of Object.values(SAGA_TOPICS)) expect(bionicCodec.decode(topic, bionicCodec.encode(topic, saga))).toEqual(saga);
    expect(reasonOf(() => bionicCodec.encode('saga.events', { ...saga, type: 'approve' }))).toMatch(/type: must be UPPER_SNAKE_CASE/);
    expect(reasonOf(() => bionicCodec.decode('deals.commands', JSON.stringify({ ...saga, sagaId: undefined })))).toMatch(/sagaId: Required/);
  });

  it('refuses topics without a schema, and text that is not JSON', () => {
    expect(bionicCodec.knows('crm.public.orders')).toBe(true);
    expect(bionicCodec.knows('crm.private.orders')).toBe(false);
    expect(bionicCodec.knows('crm_ru.public.orders')).toBe(true);
    expect(bionicCodec.knows('crm_ru.public.orders.dlq')).toBe(true);
    for (const t of ['crm_.public.orders', 'crm_RU.public.orders', 'crm_r.public.orders', 'crmru.public.orders', 'crm_ru.private.orders']) expect(bionicCodec.knows(t), t).toBe(false);
    expect(bionicCodec.knows('saga.events.dlq')).toBe(true);
    expect(reasonOf(() => bionicCodec.encode('nope', {}))).toBe('no schema is defined for this topic');
    expect(reasonOf(() => bionicCodec.decode('saga.events', '{"messageId":'))).toMatch(/^not JSON/);
  });

  it('passes dead-letter values through verbatim', () => {
    expect(bionicCodec.decode('saga.events.dlq', 'not json at all')).toBe('not json at all');
    expect(bionicCodec.encode('saga.events.dlq', '{"x":1}')).toBe('{"x":1}');
    expect(() => bionicCodec.encode('saga.events.dlq', { x: 1 })).toThrow(BusSchemaError);
  });

  it('encodes the caller\'s value, keeps unknown keys, and lets the first matching route win', () => {
    const codec = defineCodec([{ topic: 'a', schema: z.object({ n: z.number() }) }, { topic: /^a$/, schema: z.never() }]);
    expect(codec.encode('a', { n: 1, extra: true })).toBe('{"n":1,"extra":true}');
  });

  it('names a region\'s CDC topics with its own prefix, and the implicit region\'s as before', () => {
    expect(cdcTopic('orders', cdcTopicPrefix('eu'))).toBe('crm_eu.public.orders');
    expect(cdcTopic('orders', cdcTopicPrefix(null))).toBe('crm.public.orders');
    const topic = cdcTopic('orders', cdcTopicPrefix('ru'));
    expect(bionicCodec.decode(topic, bionicCodec.encode(topic, envelope()))).toEqual(envelope());
    expect(reasonOf(() => bionicCodec.encode(topic, envelope({ op: 'd' })))).toMatch(/before: must be a row/);
  });

  it('lists the same topics as infra/kafka/topics.json, and CDC topics for every CRM table', () => {
    const file = JSON.parse(readFileSync(new URL('../../infra/kafka/topics.json', import.meta.url), 'utf8')) as { topics: { name: string }[] };
    const names = file.topics.map((t) => t.name);
    for (const name of names) expect(bionicCodec.knows(name), name).toBe(true);
    for (const topic of Object.values(SAGA_TOPICS)) expect(names).toContain(topic);
    const crm = readFileSync(new URL('../../infra/migrations/crm/001_init.sql', import.meta.url), 'utf8');
    const tables = [...crm.matchAll(/^CREATE TABLE (\w+)/gm)].map((m) => m[1]!);
    expect(tables.length).toBeGreaterThan(3);
    for (const table of tables) expect(names).toContain(cdcTopic(table));
    // A region's topics are the central CDC entries under its prefix: same partitions and retention.
    const specs = file.topics as { name: string; partitions: number; retentionMs: number | null }[];
    const ru = cdcTopicSpecsFor(specs, cdcTopicPrefix('ru'));
    expect(ru.map((s) => s.name)).toEqual(names.filter((n) => n.startsWith('crm.public.')).map((n) => n.replace('crm.', 'crm_ru.')));
    for (const table of tables) expect(ru.map((s) => s.name)).toContain(cdcTopic(table, 'crm_ru'));
    for (const s of ru) expect(s).toEqual({ ...specs.find((c) => c.name === s.name.replace('crm_ru.', 'crm.'))!, name: s.name });
    for (const s of ru) expect(bionicCodec.knows(s.name), s.name).toBe(true);
  });
});
