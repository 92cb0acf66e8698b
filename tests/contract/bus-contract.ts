/**
 * The bus contract: what every Bus adapter (PostgreSQL log, Kafka) must do. Each test uses its own
 * topics and groups, so adapters may keep state between tests. Deliveries are awaited, never slept on.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BusSchemaError, type BusCodec } from '../../shared/bus/codec.ts';
import { DLQ_HEADERS, dlqTopicOf } from '../../shared/bus/dlq.ts';
import { partitionFor } from '../../shared/bus/partition.ts';
import type { Bus, BusMessage, Subscription } from '../../shared/ports/bus.ts';
import type { PgTx } from '../../workers/bus/pg-log.ts';
import { Collector, deferred, eventually, newGroup, newTopic, permissiveCodec, type TestTopics, type TestValue } from './bus-support.ts';

export type TestBus = Bus<TestTopics, PgTx>;

export interface BusUnderTest {
  /** A bus with connections of its own, as another process would have. */
  newBus(codec?: BusCodec<TestTopics>): Promise<TestBus>;
  /** Runs `fn` in a transaction on the platform database, then commits or rolls back. */
  transaction(fn: (tx: PgTx) => Promise<void>, outcome: 'commit' | 'rollback'): Promise<void>;
  /** Partition count of topics created on first use. */
  partitions: number;
  teardown(): Promise<void>;
}

const fastRetry = { maximumAttempts: 3, initialIntervalMs: 40, backoffCoefficient: 2, maximumIntervalMs: 1_000 };
const values = (ms: BusMessage<TestValue>[]) => ms.map((m) => m.value.seq);

/** Registers the contract for one adapter; with `skip` set, every test is reported skipped with that reason. */
export function busContract(name: string, setup: () => Promise<BusUnderTest>, skip?: string): void {
  describe.skipIf(Boolean(skip))(`Bus contract: ${name}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let env: BusUnderTest;
    let bus: TestBus;
    const extra: TestBus[] = [];
    const subs: Subscription[] = [];
    const other = async (codec?: BusCodec<TestTopics>) => { const b = await env.newBus(codec); extra.push(b); return b; };
    const track = (s: Subscription) => (subs.push(s), s);

    beforeAll(async () => {
      env = await setup();
      bus = await env.newBus();
    }, 120_000);
    afterEach(async () => {
      await Promise.all(subs.splice(0).map((s) => s.stop()));
      await Promise.all(extra.splice(0).map((b) => b.close()));
    }, 60_000);
    afterAll(async () => {
      await bus?.close();
      await env?.teardown();
    }, 60_000);

    it('delivers what was published: key, value, headers, partition by key hash, offsets, id', async () => {
      const topic = newTopic('deliver');
      const got = new Collector();
      track(await bus.subscribe({ group: newGroup('deliver'), topics: [topic], handler: got.handler }));
      await bus.publish(topic, [
        { key: 'alpha', value: { seq: 1, tag: 'ü' }, headers: { 'x-trace': 't1' } },
        { key: 'alpha', value: { seq: 2 } },
        { key: 'beta', value: { seq: 3 }, headers: { 'message-id': 'm-3' } },
      ]);
      await got.until(3);
      const byKey = (k: string) => got.messages.filter((m) => m.key === k);
      expect(values(byKey('alpha'))).toEqual([1, 2]);
      const [a1, a2] = byKey('alpha');
      expect(a1).toMatchObject({ topic, key: 'alpha', value: { seq: 1, tag: 'ü' }, partition: partitionFor('alpha', env.partitions) });
      expect(a1!.headers['x-trace']).toBe('t1');
      expect(BigInt(a2!.offset)).toBe(BigInt(a1!.offset) + 1n);
      expect(a1!.id).toBe(`${topic}/${a1!.partition}/${a1!.offset}`);
      expect(a1!.timestamp).toBeInstanceOf(Date);
      expect(byKey('beta')[0]).toMatchObject({ id: 'm-3', partition: partitionFor('beta', env.partitions) });
      expect(got.messages).toHaveLength(3);
    });

    it('rejects a value that fails its schema at publish', async () => {
      const topic = newTopic('reject');
      await expect(bus.publish(topic, [{ key: 'k', value: { seq: 'one' } as never }])).rejects.toBeInstanceOf(BusSchemaError);
    });

    it('keeps per-key order under concurrent publishers and consumers', async () => {
      const topic = newTopic('order');
      const group = newGroup('order');
      const got = new Collector();
      const slow = async (batch: BusMessage<TestValue>[]) => {
        await new Promise((r) => setTimeout(r, Math.random() * 5));
        got.add(batch);
      };
      track(await bus.subscribe({ group, topics: [topic], handler: slow, maxBatchSize: 7 }));
      track(await (await other()).subscribe({ group, topics: [topic], handler: slow, maxBatchSize: 7 }));
      const publishers = 6, keysEach = 4, perKey = 40;
      await Promise.all(Array.from({ length: publishers }, async (_, p) => {
        for (let seq = 0; seq < perKey; ) {
          const n = 1 + Math.floor(Math.random() * 5);
          const batch = [];
          for (let i = 0; i < n && seq < perKey; i++, seq++) {
            for (let k = 0; k < keysEach; k++) batch.push({ key: `p${p}-k${k}`, value: { seq, tag: `p${p}-k${k}` } });
          }
          await bus.publish(topic, batch);
        }
      }));
      await got.until(publishers * keysEach * perKey);
      const perKeySeqs = new Map<string, number[]>();
      for (const m of got.messages) perKeySeqs.set(m.key, [...(perKeySeqs.get(m.key) ?? []), m.value.seq]);
      expect(perKeySeqs.size).toBe(publishers * keysEach);
      for (const [key, seqs] of perKeySeqs) expect(seqs, key).toEqual(Array.from({ length: perKey }, (_, i) => i));
    });

    it('redelivers after a handler failure and commits only after success', async () => {
      const topic = newTopic('redeliver');
      const group = newGroup('redeliver');
      const attempts: number[] = [];
      const gate = deferred();
      const entered = deferred();
      const done = new Collector();
      track(await bus.subscribe({
        group, topics: [topic], retry: fastRetry,
        handler: async (batch, ctx) => {
          attempts.push(ctx.attempt);
          if (attempts.length === 1) throw new Error('first try fails');
          entered.resolve();
          await gate.promise;
          done.add(batch);
        },
      }));
      await bus.publish(topic, [{ key: 'k', value: { seq: 7 } }]);
      await entered.promise;
      // The handler is still running: nothing is committed yet.
      const during = await bus.lag(group, [topic]);
      expect(during.reduce((s, p) => s + p.lag, 0)).toBe(1);
      gate.resolve();
      await done.until(1);
      expect(attempts).toEqual([1, 2]);
      await eventually(async () => (await bus.lag(group, [topic])).every((p) => p.lag === 0), 'the commit');
      expect(values(done.messages)).toEqual([7]);
    });

    it('redelivers to the next consumer what a stopped consumer never finished', async () => {
      const topic = newTopic('handover');
      const group = newGroup('handover');
      const failed = deferred();
      const failing = track(await bus.subscribe({
        group, topics: [topic], retry: { ...fastRetry, maximumAttempts: 1_000, maximumIntervalMs: 60_000 },
        handler: async () => { failed.resolve(); throw new Error('down'); },
      }));
      await bus.publish(topic, [{ key: 'k', value: { seq: 1 } }, { key: 'k', value: { seq: 2 } }]);
      await failed.promise;
      await failing.stop();
      const got = new Collector();
      track(await (await other()).subscribe({ group, topics: [topic], handler: got.handler }));
      await got.until(2);
      expect(values(got.messages)).toEqual([1, 2]);
    });

    it('dead-letters a message after maximumAttempts failures, with backoff, and moves on', async () => {
      const topic = newTopic('dlq');
      const group = newGroup('dlq');
      const alone: number[] = [];
      const got = new Collector();
      track(await bus.subscribe({
        group, topics: [topic], retry: fastRetry,
        handler: async (batch) => {
          if (batch.some((m) => m.value.tag === 'poison')) {
            if (batch.length === 1) alone.push(performance.now());
            throw new Error('cannot digest poison');
          }
          got.add(batch);
        },
      }));
      const dead = new Collector<string>();
      track(await bus.subscribe({ group: newGroup('dlq-reader'), topics: [dlqTopicOf(topic)], handler: dead.handler }));
      await bus.publish(topic, [
        { key: 'same', value: { seq: 1 } },
        { key: 'same', value: { seq: 2, tag: 'poison' }, headers: { 'x-origin': 'test' } },
        { key: 'same', value: { seq: 3 } },
      ]);
      await dead.until(1);
      await got.until(2);
      expect(values(got.messages)).toEqual([1, 3]);
      expect(alone).toHaveLength(3);
      // Backoff as configured: 40 ms, then 80 ms.
      expect(alone[1]! - alone[0]!).toBeGreaterThanOrEqual(35);
      expect(alone[2]! - alone[1]!).toBeGreaterThanOrEqual(75);
      const [letter] = dead.messages;
      expect(JSON.parse(letter!.value)).toEqual({ seq: 2, tag: 'poison' });
      expect(letter!.key).toBe('same');
      expect(letter!.headers).toMatchObject({
        'x-origin': 'test', [DLQ_HEADERS.reason]: 'handler', [DLQ_HEADERS.error]: 'cannot digest poison',
        [DLQ_HEADERS.attempts]: '3', [DLQ_HEADERS.topic]: topic, [DLQ_HEADERS.group]: group,
        [DLQ_HEADERS.partition]: String(partitionFor('same', env.partitions)),
      });
      await eventually(async () => (await bus.lag(group, [topic])).every((p) => p.lag === 0), 'the commit');
    });

    it('dead-letters a value that fails its schema with the reason, without blocking its partition', async () => {
      const topic = newTopic('schema');
      const group = newGroup('schema');
      const got = new Collector();
      const handled: number[] = [];
      track(await bus.subscribe({ group, topics: [topic], handler: async (b) => { handled.push(...values(b)); got.add(b); } }));
      const dead = new Collector<string>();
      track(await bus.subscribe({ group: newGroup('schema-dlq'), topics: [dlqTopicOf(topic)], handler: dead.handler }));
      const legacy = await other(permissiveCodec);
      await legacy.publish(topic, [
        { key: 'k', value: { seq: 1 } },
        { key: 'k', value: { seq: 'two' } as never },
        { key: 'k', value: { seq: 3 } },
      ]);
      await got.until(2);
      await dead.until(1);
      expect(handled).toEqual([1, 3]);
      expect(JSON.parse(dead.messages[0]!.value)).toEqual({ seq: 'two' });
      expect(dead.messages[0]!.headers[DLQ_HEADERS.reason]).toBe('schema');
      expect(dead.messages[0]!.headers[DLQ_HEADERS.error]).toMatch(/seq: Expected number, received string/);
    });

    it('splits partitions between two consumers of a group, and hands them over when one stops', async () => {
      const topic = newTopic('split');
      const group = newGroup('split');
      const all = new Collector();
      const a: BusMessage<TestValue>[] = [], b: BusMessage<TestValue>[] = [];
      const into = (mine: BusMessage<TestValue>[]) => async (batch: BusMessage<TestValue>[]) => { mine.push(...batch); all.add(batch); };
      const subA = track(await bus.subscribe({ group, topics: [topic], handler: into(a) }));
      const subB = track(await (await other()).subscribe({ group, topics: [topic], handler: into(b) }));
      const owned = (s: Subscription) => s.assignment().map((p) => p.partition);
      await eventually(() => owned(subA).length > 0 && owned(subB).length > 0 && owned(subA).length + owned(subB).length === env.partitions, 'a split assignment');
      expect(owned(subA).filter((p) => owned(subB).includes(p))).toEqual([]);
      const batch = Array.from({ length: 200 }, (_, i) => ({ key: `key-${i % 50}`, value: { seq: i } }));
      await bus.publish(topic, batch);
      await all.until(200);
      expect(a.length).toBeGreaterThan(0);
      expect(b.length).toBeGreaterThan(0);
      expect(values(all.messages).sort((x, y) => x - y)).toEqual(batch.map((m) => m.value.seq));
      for (const m of a) expect(owned(subA)).toContain(m.partition);
      for (const m of b) expect(owned(subB)).toContain(m.partition);

      await subB.stop();
      await eventually(() => owned(subA).length === env.partitions, 'the takeover');
      const more = Array.from({ length: 100 }, (_, i) => ({ key: `key-${i % 50}`, value: { seq: 1000 + i } }));
      await bus.publish(topic, more);
      await all.until(300);
      expect(a.filter((m) => m.value.seq >= 1000)).toHaveLength(100);
      expect(all.messages).toHaveLength(300);
    });

    it('delivers everything to each of two groups', async () => {
      const topic = newTopic('groups');
      const one = new Collector(), two = new Collector();
      track(await bus.subscribe({ group: newGroup('one'), topics: [topic], handler: one.handler }));
      track(await (await other()).subscribe({ group: newGroup('two'), topics: [topic], handler: two.handler }));
      await bus.publish(topic, Array.from({ length: 50 }, (_, i) => ({ key: `k${i % 7}`, value: { seq: i } })));
      await Promise.all([one.until(50), two.until(50)]);
      for (const c of [one, two]) expect(values(c.messages).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    });

    it('publishes inside a transaction: nothing when it rolls back, everything when it commits', async () => {
      const topic = newTopic('tx');
      const group = newGroup('tx');
      const got = new Collector();
      await env.transaction((tx) => bus.publish(topic, [{ key: 'k', value: { seq: 1 } }, { key: 'j', value: { seq: 2 } }], { tx }), 'rollback');
      await env.transaction((tx) => bus.publish(topic, [{ key: 'k', value: { seq: 3 } }, { key: 'j', value: { seq: 4 } }], { tx }), 'commit');
      await bus.publish(topic, [{ key: 'k', value: { seq: 5 } }]);
      track(await bus.subscribe({ group, topics: [topic], handler: got.handler }));
      await got.until(3);
      await eventually(async () => (await bus.lag(group, [topic])).every((p) => p.lag === 0), 'the commit');
      expect(values(got.messages).sort()).toEqual([3, 4, 5]);
    });

    it('reports lag per partition, before and after a group consumed', async () => {
      const topic = newTopic('lag');
      const group = newGroup('lag');
      await bus.publish(topic, Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: { seq: i } })));
      const before = await bus.lag(group, [topic]);
      expect(before).toHaveLength(env.partitions);
      expect(before.reduce((s, p) => s + p.lag, 0)).toBe(30);
      expect(before.every((p) => p.committedOffset === null && p.group === group && p.topic === topic)).toBe(true);
      const got = new Collector();
      track(await bus.subscribe({ group, topics: [topic], handler: got.handler }));
      await got.until(30);
      await eventually(async () => (await bus.lag(group)).reduce((s, p) => s + p.lag, 0) === 0, 'zero lag');
      const after = await bus.lag(group);
      expect(after.map((p) => p.partition).sort((x, y) => x - y)).toEqual(Array.from({ length: env.partitions }, (_, i) => i));
      for (const p of after) if (p.endOffset !== '0') expect(p.committedOffset).toBe(p.endOffset);
    });

    it('starts a new group at the end when fromBeginning is false', async () => {
      const topic = newTopic('latest');
      await bus.publish(topic, [{ key: 'k', value: { seq: 1 } }]);
      const got = new Collector();
      track(await bus.subscribe({ group: newGroup('latest'), topics: [topic], fromBeginning: false, handler: got.handler }));
      await bus.publish(topic, [{ key: 'k', value: { seq: 2 } }]);
      await got.until(1);
      expect(values(got.messages)).toEqual([2]);
    });

    it('stops gracefully: the batch in hand finishes and is committed', async () => {
      const topic = newTopic('stop');
      const group = newGroup('stop');
      const gate = deferred();
      const entered = deferred();
      const aborted = deferred();
      let finished = 0;
      const sub = await bus.subscribe({
        group, topics: [topic],
        handler: async (batch, ctx) => {
          ctx.signal.addEventListener('abort', () => aborted.resolve(), { once: true });
          entered.resolve();
          await gate.promise;
          finished += batch.length;
        },
      });
      await bus.publish(topic, [{ key: 'k', value: { seq: 1 } }]);
      await entered.promise;
      let stopped = false;
      const stopping = sub.stop().then(() => { stopped = true; });
      await aborted.promise;
      expect(stopped).toBe(false);
      gate.resolve();
      await stopping;
      expect(finished).toBe(1);
      expect((await bus.lag(group, [topic])).reduce((s, p) => s + p.lag, 0)).toBe(0);
    });
  });
}
