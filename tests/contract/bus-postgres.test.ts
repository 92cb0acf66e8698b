/**
 * What only the PostgreSQL log can show: gap-free offsets, publishing in OLTP-port transactions,
 * NOTIFY wake-ups, takeover after a dropped session, retention, dedupe, and the outbox relay the
 * Kafka adapter uses for publishes inside transactions.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresOltp } from '../../workers/adapters/oltp-postgres.ts';
import { bionicCodec } from '../../shared/bus/topics.ts';
import { firstDeliveries } from '../../workers/bus/dedupe.ts';
import { createBus, loadTopicSpecs } from '../../workers/bus/index.ts';
import { startOutboxRelay, writeOutbox } from '../../workers/bus/outbox-relay.ts';
import { createPostgresBus, type PostgresBus } from '../../workers/bus/postgres-bus.ts';
import { startPlatformDb, type PlatformDb } from '../support/platform-db.ts';
import { Collector, eventually, newGroup, newTopic, testCodec, type TestTopics } from './bus-support.ts';

const PARTITIONS = 4;
let db: PlatformDb;
let url = '';
let sql: postgres.Sql;
const inTransaction: PlatformDb['transaction'] = (fn, outcome) => db.transaction(fn, outcome);

beforeAll(async () => {
  db = await startPlatformDb('bus-postgres');
  ({ url, sql } = db);
}, 120_000);
afterAll(async () => { await db?.stop(); }, 60_000);

const pgBus = (o: { copyTimeoutMs?: number } = {}) => createPostgresBus<TestTopics>({
  url, codec: testCodec, defaultPartitions: PARTITIONS, poolMax: 4, retention: false, pollIntervalMs: 120_000, rebalanceIntervalMs: 150, copyMinBytes: 256 * 1024, ...o,
});

/** Messages of a topic stored, and the sum of its partitions' log ends. */
const stored = async (topic: string) => (await sql<{ n: number; ends: number }[]>`
  SELECT (SELECT count(*)::int FROM bus_messages m WHERE m.topic_id = t.id) AS n,
    (SELECT sum(next_offset)::int FROM bus_partitions p WHERE p.topic_id = t.id) AS ends
  FROM bus_topics t WHERE t.name = ${topic}`)[0]!;

/** Errors that escaped to the process while `fn` ran (and one turn of the event loop after). */
async function escaped(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const record = (err: unknown) => { seen.push(err); };
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
  try {
    await fn();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('uncaughtException', record);
    process.off('unhandledRejection', record);
  }
  return seen;
}

describe('postgres log: storage and coordination', () => {
  let bus: PostgresBus<TestTopics>;
  beforeAll(async () => { bus = await pgBus(); }, 60_000);
  afterAll(async () => { await bus?.close(); }, 60_000);

  it('gives every partition gap-free offsets under concurrent publishers', async () => {
    const topic = newTopic('gapless');
    await Promise.all(Array.from({ length: 12 }, async (_, w) => {
      for (let i = 0; i < 30; i++) {
        await bus.publish(topic, Array.from({ length: 1 + (i % 4) }, (_, j) => ({ key: `w${w}-${j}`, value: { seq: i } })));
      }
    }));
    const rows = await sql`
      SELECT m.partition, count(*)::int AS n, min(m.msg_offset)::int AS lo, max(m.msg_offset)::int AS hi, p.next_offset::int AS next
      FROM bus_messages m JOIN bus_topics t ON t.id = m.topic_id
      JOIN bus_partitions p ON p.topic_id = m.topic_id AND p.partition = m.partition
      WHERE t.name = ${topic} GROUP BY m.partition, p.next_offset`;
    expect(rows.reduce((s, r) => s + r.n, 0)).toBe(12 * (8 * 1 + 8 * 2 + 7 * 3 + 7 * 4));
    for (const r of rows) expect(r).toMatchObject({ lo: 0, hi: r.n - 1, next: r.n });
  });

  it('stores large batches (COPY) byte for byte and gap-free, also under concurrent publishers', async () => {
    const topic = newTopic('copy');
    const odd = ['tab\there', 'line\nbreak', 'cr\rx', 'back\\slash', '\\N', 'quote"\'', 'ünï ☃'];
    const batch = (w: number) => Array.from({ length: 600 }, (_, i) => ({
      // Values padded so the batch is large enough to go by COPY.
      key: `${odd[i % odd.length]}-${w}-${i}`, value: { seq: i, tag: `${odd[(i + w) % odd.length]}${'x'.repeat(500)}` },
      headers: i % 3 ? { 'x-odd': odd[i % odd.length]!, 'message-id': `m-${w}-${i}` } : undefined,
    }));
    const collector = new Collector();
    const sub = await bus.subscribe({ group: newGroup('copy'), topics: [topic], handler: collector.handler, maxBatchSize: 1000 });
    try {
      await Promise.all([0, 1, 2].map((w) => bus.publish(topic, batch(w))));
      await collector.until(1800);
      const sent = [0, 1, 2].flatMap(batch);
      for (const m of sent) {
        const got = collector.messages.filter((x) => x.key === m.key);
        expect(got, m.key).toHaveLength(1);
        expect(got[0]!.value).toEqual(m.value);
        if (m.headers) expect(got[0]!.headers).toEqual(m.headers);
        else expect(got[0]!.headers).toEqual({});
      }
      // Per partition, offsets are 0…n-1 and each publisher's messages keep their order.
      const byPartition = new Map<number, number[]>();
      for (const m of collector.messages) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), Number(m.offset)]);
      for (const offsets of byPartition.values()) expect(offsets).toEqual(offsets.map((_, i) => i));
      for (const w of [0, 1, 2]) {
        const seqs = collector.messages.filter((m) => m.key.endsWith(`-${w}-${m.value.seq}`)).map((m) => ({ p: m.partition, seq: m.value.seq }));
        for (const p of byPartition.keys()) {
          const mine = seqs.filter((x) => x.p === p).map((x) => x.seq);
          expect(mine).toEqual([...mine].sort((a, b) => a - b));
        }
      }
    } finally {
      await sub.stop();
    }
  });

  it('a large batch that cannot be stored fails whole, without hanging, and the partition goes on', async () => {
    const topic = newTopic('copy-fail');
    await bus.publish(topic, [{ key: 'k', value: { seq: 0 } }]);
    // Occupy the offset the next publish to that partition will take: its COPY hits the primary key.
    await sql`INSERT INTO bus_messages (topic_id, partition, msg_offset, key, value)
      SELECT p.topic_id, p.partition, p.next_offset, 'squatter', '{}' FROM bus_partitions p JOIN bus_topics t ON t.id = p.topic_id
      WHERE t.name = ${topic} AND p.next_offset = 1`;
    const same = Array.from({ length: 600 }, (_, i) => ({ key: 'k', value: { seq: i + 1, tag: 'x'.repeat(500) } }));
    await expect(bus.publish(topic, same)).rejects.toThrow(/COPY failed/);
    const [p] = await sql`SELECT p.next_offset::int AS next FROM bus_partitions p JOIN bus_topics t ON t.id = p.topic_id WHERE t.name = ${topic} AND p.next_offset > 0`;
    expect(p!.next).toBe(1);
    await sql`DELETE FROM bus_messages m USING bus_topics t WHERE t.id = m.topic_id AND t.name = ${topic} AND m.key = 'squatter'`;
    await bus.publish(topic, same);
    const [n] = await sql`SELECT count(*)::int AS n FROM bus_messages m JOIN bus_topics t ON t.id = m.topic_id WHERE t.name = ${topic}`;
    expect(n!.n).toBe(601);
    await expect(bus.publish(topic, same.map((m, i) => ({ ...m, key: i === 7 ? 'nul\u0000' : m.key })))).rejects.toThrow();
  });

  it('a COPY publish whose backend is terminated mid-COPY fails whole, leaks no error, and the next one works', async () => {
    const topic = newTopic('copy-killed');
    const big = Array.from({ length: 20_000 }, (_, i) => ({ key: `k${i % 97}`, value: { seq: i, tag: 'x'.repeat(400) } }));
    const failedBefore = bus.copyStats.failed;
    const errors = await escaped(async () => {
      const publishing = bus.publish(topic, big);
      publishing.catch(() => {});
      // No event tells another session that the COPY started: look for it, without sleeping in between.
      let pid: number | undefined;
      for (let i = 0; i < 20_000 && pid === undefined; i++) {
        [{ pid } = { pid: undefined }] = await sql<{ pid: number }[]>`SELECT pid FROM pg_stat_activity
          WHERE application_name = 'bionicpro-bus' AND state = 'active' AND query LIKE 'COPY bus_messages%'`;
      }
      expect(pid, 'the COPY was seen running').toBeDefined();
      await sql`SELECT pg_terminate_backend(${pid!})`;
      await expect(publishing).rejects.toThrow(/COPY failed/);
      expect(await stored(topic)).toEqual({ n: 0, ends: 0 });
      await bus.publish(topic, big.slice(0, 1000));
      expect(await stored(topic)).toEqual({ n: 1000, ends: 1000 });
    });
    expect(errors).toEqual([]);
    expect(bus.copyStats.failed).toBe(failedBefore + 1);
  });

  it('a COPY publish that does not finish in time is discarded and fails; nothing of it commits', async () => {
    const slow = await pgBus({ copyTimeoutMs: 500 });
    const topic = newTopic('copy-stuck');
    const batch = Array.from({ length: 600 }, (_, i) => ({ key: 'k', value: { seq: i, tag: 'x'.repeat(500) } }));
    try {
      const errors = await escaped(async () => {
        await slow.publish(topic, batch.slice(0, 1));
        // An uncommitted row at the offset the COPY will write: the COPY waits on it, never finishing by itself.
        let squatting!: () => void;
        const held = new Promise<void>((resolve) => { squatting = resolve; });
        let release!: () => void;
        const squatter = sql.begin(async (tx) => {
          await tx`INSERT INTO bus_messages (topic_id, partition, msg_offset, key, value)
            SELECT p.topic_id, p.partition, p.next_offset, 'squatter', '{}' FROM bus_partitions p JOIN bus_topics t ON t.id = p.topic_id
            WHERE t.name = ${topic} AND p.next_offset = 1`;
          squatting();
          await new Promise<void>((resolve) => { release = resolve; });
          throw new Error('roll the squatter back');
        }).catch(() => {});
        await held;
        try {
          await expect(slow.publish(topic, batch)).rejects.toThrow(/took over 500 ms/);
        } finally {
          release();
          await squatter;
        }
        expect(await stored(topic)).toEqual({ n: 1, ends: 1 });
        await slow.publish(topic, batch);
        expect(await stored(topic)).toEqual({ n: 601, ends: 601 });
      });
      expect(errors).toEqual([]);
      expect(slow.copyStats).toEqual({ published: 1, failed: 1 });
    } finally {
      // Takes ~5 s: postgres.js keeps a connection closed mid-query as busy until \`end\`'s timeout.
      await slow.close();
    }
  });

  it('publishes inside the OLTP port\'s transactions too', async () => {
    const oltp = createPostgresOltp(url, { max: 2 });
    const topic = newTopic('oltp');
    try {
      await oltp.transaction((tx) => bus.publish(topic, [{ key: 'k', value: { seq: 1 } }], { tx }));
      await oltp.transaction(async (tx) => {
        await bus.publish(topic, [{ key: 'k', value: { seq: 2 } }], { tx });
        throw new Error('roll back');
      }).catch(() => {});
    } finally {
      await oltp.close();
    }
    const lag = await bus.lag(newGroup('oltp'), [topic]);
    expect(lag.reduce((s, p) => s + p.lag, 0)).toBe(1);
  });

  it('wakes an idle consumer within milliseconds, without polling', async () => {
    const topic = newTopic('wake');
    const got = new Collector();
    const sub = await bus.subscribe({ group: newGroup('wake'), topics: [topic], handler: got.handler });
    try {
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        await bus.publish(topic, [{ key: `k${i}`, value: { seq: i } }]);
        await got.until(i + 1);
        expect(performance.now() - t0).toBeLessThan(1_000);
      }
    } finally {
      await sub.stop();
    }
  });

  it('takes over the partitions of a consumer whose connection was killed', async () => {
    const topic = newTopic('killed');
    const group = newGroup('killed');
    const other = await pgBus();
    const all = new Collector();
    const subA = await bus.subscribe({ group, topics: [topic], handler: all.handler });
    const subB = await other.subscribe({ group, topics: [topic], handler: all.handler });
    try {
      await eventually(() => subA.assignment().length === 2 && subB.assignment().length === 2, 'a split');
      const [victim] = await sql`SELECT pid FROM pg_locks l JOIN bus_groups g ON l.classid = (2 * g.id + 1)::oid
        WHERE g.name = ${group} AND l.locktype = 'advisory' AND l.objsubid = 2
          AND l.objid::int % 4096 = ${subB.assignment()[0]!.partition} LIMIT 1`;
      await sql`SELECT pg_terminate_backend(${victim!.pid})`;
      await bus.publish(topic, Array.from({ length: 40 }, (_, i) => ({ key: `key-${i}`, value: { seq: i } })));
      await all.when(() => new Set(all.messages.map((m) => m.value.seq)).size === 40, 'all 40 after the kill');
      await eventually(() => subA.assignment().length + subB.assignment().length === PARTITIONS, 'a full assignment again');
    } finally {
      await subA.stop();
      await subB.stop();
      await other.close();
    }
  });

  it('retention deletes only what every group has passed, and only after the minimum age', async () => {
    const topic = newTopic('retention');
    const fast = newGroup('fast'), slow = newGroup('slow');
    const count = async () => Number((await sql`SELECT count(*) FROM bus_messages m JOIN bus_topics t ON t.id = m.topic_id WHERE t.name = ${topic}`)[0]!.count);
    const drain = async (n: number) => {
      const got = new Collector();
      const sub = await bus.subscribe({ group: fast, topics: [topic], handler: got.handler });
      await got.until(n);
      await sub.stop();
    };
    await bus.publish(topic, Array.from({ length: 20 }, (_, i) => ({ key: 'one-key', value: { seq: i } })));
    await drain(20);
    await bus.cleanup({ minAgeMs: 0 });
    expect(await count()).toBe(0); // only `fast` has offsets, and it read everything
    await bus.publish(topic, Array.from({ length: 10 }, (_, i) => ({ key: 'one-key', value: { seq: 100 + i } })));
    await drain(10);
    // `slow` joins now (at the log start, 20) and gets through 4 of the 10 before its handler stalls.
    let taken = 0;
    const done = new Collector();
    const slowSub = await bus.subscribe({
      group: slow, topics: [topic], maxBatchSize: 4,
      retry: { maximumAttempts: 1_000, initialIntervalMs: 60_000, maximumIntervalMs: 60_000 },
      handler: async (b) => {
        if (taken >= 4) throw new Error('stalled');
        taken += b.length;
        done.add(b);
      },
    });
    await done.until(4);
    await eventually(async () => (await bus.lag(slow, [topic])).some((p) => p.committedOffset === '24'), 'the slow commit');
    await bus.cleanup({ minAgeMs: 60_000 });
    expect(await count()).toBe(10); // passed by both groups, but too young
    await bus.cleanup({ minAgeMs: 0 });
    expect(await count()).toBe(6); // `fast` read all 30, `slow` only up to 24
    await slowSub.stop();
    expect((await bus.lag(slow, [topic])).reduce((s, p) => s + p.lag, 0)).toBe(6);
    const fresh = await bus.lag(newGroup('late'), [topic]);
    expect(fresh.reduce((s, p) => s + p.lag, 0)).toBe(6); // a new group starts at the retained start
  });

  it('dedupe: firstDeliveries splits fresh from duplicate and records nothing when the transaction rolls back', async () => {
    const ms = ['a', 'b', 'a', 'c'].map((id) => ({ id }));
    await inTransaction(async (tx) => {
      expect(await firstDeliveries(tx, 'dedupe-test', ms.slice(0, 1))).toEqual({ fresh: [{ id: 'a' }], duplicates: [] });
    }, 'rollback');
    await inTransaction(async (tx) => {
      const r = await firstDeliveries(tx, 'dedupe-test', ms);
      expect(r.fresh.map((m) => m.id)).toEqual(['a', 'b', 'c']);
      expect(r.duplicates).toHaveLength(1);
      expect(r.duplicates[0]).toBe(ms[2]);
    }, 'commit');
    const again = await firstDeliveries(sql, 'dedupe-test', [{ id: 'b' }, { id: 'd' }]);
    expect(again.fresh.map((m) => m.id)).toEqual(['d']);
    expect((await firstDeliveries(sql, 'other-consumer', [{ id: 'b' }])).fresh).toHaveLength(1);
  });
});

describe('outbox relay (the Kafka adapter\'s publishes inside transactions)', () => {
  it('relays what committed, in order, once the broker took it; nothing that rolled back', async () => {
    const sent: { topic: string; keys: string[]; headers: unknown }[] = [];
    let failures = 1;
    const relayed = new Collector();
    const relay = await startOutboxRelay({
      sql, pollIntervalMs: 120_000,
      send: async (topic, messages) => {
        if (failures-- > 0) throw new Error('broker unavailable'); // the first hand-over fails: rows must stay
        sent.push({ topic, keys: messages.map((m) => m.key), headers: messages[0]!.headers });
        relayed.add(messages.map((m, i) => ({ topic, partition: 0, offset: String(i), key: m.key, value: { seq: i }, headers: {}, timestamp: new Date(), id: m.key })));
      },
    });
    try {
      const msg = (key: string, headers?: Record<string, string>) => ({ key, value: '{"seq":1}', headers });
      await inTransaction((tx) => writeOutbox(tx, 'test.outbox.a', [msg('rolled-back')]), 'rollback');
      await inTransaction(async (tx) => {
        await writeOutbox(tx, 'test.outbox.a', [msg('a1', { h: '1' }), msg('a2')]);
        await writeOutbox(tx, 'test.outbox.b', [msg('b1')]);
        await writeOutbox(tx, 'test.outbox.a', [msg('a3')]);
      }, 'commit');
      await relayed.until(4);
      expect(sent).toEqual([
        { topic: 'test.outbox.a', keys: ['a1', 'a2'], headers: { h: '1' } },
        { topic: 'test.outbox.b', keys: ['b1'], headers: null },
        { topic: 'test.outbox.a', keys: ['a3'], headers: null },
      ]);
      await eventually(async () => Number((await sql`SELECT count(*) FROM bus_outbox`)[0]!.count) === 0, 'the outbox to empty');
      expect(await relay.drain()).toBe(0);
    } finally {
      await relay.stop();
    }
  });
});

describe('createBus', () => {
  it('picks the PostgreSQL log without KAFKA_BROKERS and creates the production topics and their DLQs', async () => {
    const topics = await loadTopicSpecs();
    expect(topics.find((t) => t.name === 'saga.events.dlq')).toMatchObject({ partitions: 12, retentionMs: 2_592_000_000 });
    const bus = await createBus({ defaultPartitions: 8, retentionMinAgeMs: 3_600_000 }, { platformUrl: url, codec: bionicCodec, topics });
    try {
      expect(bus.kind).toBe('postgres');
      const rows = await sql`SELECT name, partitions, retention_ms FROM bus_topics WHERE name = ANY(${topics.map((t) => t.name)})`;
      expect(rows).toHaveLength(topics.length);
      expect(rows.find((r) => r.name === 'crm.public.orders')).toMatchObject({ partitions: 12, retention_ms: '604800000' });
    } finally {
      await bus.close();
    }
  });
});
