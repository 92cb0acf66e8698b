/**
 * The production bus on Kafka (kafkajs). Producer: idempotent, acks=all, one request in flight (so
 * retries cannot reorder), partitions chosen by shared/bus/partition.ts (Kafka's own murmur2, so other
 * Kafka clients agree). Consumers: one kafkajs consumer per subscription, `eachBatch`, offsets
 * committed by hand only after the handler (and any dead letters) succeeded; retry/DLQ as on the
 * PostgreSQL log (consume.ts). Topics are created with a configured partition count on first use.
 * Publishes inside a PostgreSQL transaction go through the outbox (outbox-relay.ts).
 */
import { Kafka, logLevel, type Consumer, type IHeaders } from 'kafkajs';
import postgres from 'postgres';
import type { Bus, OutgoingMessage, PublishOptions, SubscribeOptions, Subscription, TopicMap, TopicName, TopicValue, TopicPartition, TopicSpec } from '../../shared/ports/bus.ts';
import type { KafkaConfig } from '../../shared/bus/config.ts';
import type { BusCodec } from '../../shared/bus/codec.ts';
import { partitionFor } from '../../shared/bus/partition.ts';
import { resolveRetryPolicy } from '../../shared/bus/retry.ts';
import { createLogger, type Logger } from '../../shared/log.ts';
import { BusError, messageIdOf, processBatch, type RawMessage } from './consume.ts';
import { kafkaLag } from './kafka-lag.ts';
import { startOutboxRelay, writeOutbox, type OutboxRelay } from './outbox-relay.ts';
import type { PgTx, StoredMessage } from './pg-log.ts';

export interface KafkaBusOptions<M extends TopicMap> {
  kafka: KafkaConfig;
  codec: BusCodec<M>;
  /** Partitions of topics created on first use (default 8). */
  defaultPartitions?: number;
  /** The platform database, for publishes inside transactions; without it `{ tx }` is refused. */
  outbox?: { url: string; pollIntervalMs?: number };
  log?: Logger;
}

const text = (v: IHeaders[string]) => (Array.isArray(v) ? v[0] : v)?.toString() ?? '';
const HEARTBEAT_MS = 3_000;

/** Connects the producer and admin client; resolves when ready. */
export async function createKafkaBus<M extends TopicMap>(opts: KafkaBusOptions<M>): Promise<Bus<M, PgTx>> {
  const logger = opts.log ?? createLogger({ level: 'silent' });
  const { brokers, clientId, ssl, sasl } = opts.kafka;
  const kafka = new Kafka({
    clientId, brokers, ssl, sasl: sasl as never, logLevel: logLevel.WARN,
    logCreator: () => ({ level, log }) => logger[level <= logLevel.ERROR ? 'error' : 'warn']('kafka: ' + log.message, { namespace: log.namespace }),
  });
  const admin = kafka.admin();
  const producer = kafka.producer({
    idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false,
    createPartitioner: () => ({ partitionMetadata, message }) => partitionFor(String(message.key), partitionMetadata.length),
  });
  await Promise.all([admin.connect(), producer.connect()]);
  const topics = new Map<string, Promise<number>>();
  const ensure = (spec: TopicSpec): Promise<number> => {
    let created = topics.get(spec.name);
    if (!created) {
      created = (async () => {
        await admin.createTopics({
          waitForLeaders: true,
          topics: [{
            topic: spec.name, numPartitions: spec.partitions,
            replicationFactor: opts.kafka.replicationFactor ?? spec.replicationFactor ?? -1,
            configEntries: [{ name: 'retention.ms', value: String(spec.retentionMs ?? -1) }],
          }],
        });
        const [meta] = (await admin.fetchTopicMetadata({ topics: [spec.name] })).topics;
        return meta?.partitions.length ?? spec.partitions;
      })();
      topics.set(spec.name, created);
      created.catch(() => topics.delete(spec.name));
    }
    return created;
  };
  const ensureNamed = (name: string, partitions = opts.defaultPartitions ?? 8) => ensure({ name, partitions });
  const send = async (topic: string, messages: readonly StoredMessage[]) => {
    await ensureNamed(topic);
    await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers ?? undefined })) });
  };
  const pg = opts.outbox ? postgres(opts.outbox.url, { max: 2, onnotice: () => {} }) : undefined;
  const relay: OutboxRelay | undefined = pg && (await startOutboxRelay({ sql: pg, send, pollIntervalMs: opts.outbox?.pollIntervalMs, log: logger }));
  const subscriptions = new Set<Subscription>();

  async function subscribe<T extends TopicName<M>>(o: SubscribeOptions<M, T>): Promise<Subscription> {
    const unknown = o.topics.filter((t) => !opts.codec.knows(t));
    if (unknown.length) throw new BusError(`no schema for topic(s): ${unknown.join(', ')}`);
    const partitionsOf = new Map(await Promise.all(o.topics.map(async (t) => [t, await ensureNamed(t)] as const)));
    const retry = resolveRetryPolicy(o.retry);
    const maxBatch = o.maxBatchSize ?? 500;
    const stopping = new AbortController();
    const consumer: Consumer = kafka.consumer({ groupId: o.group, allowAutoTopicCreation: false });
    let assignment: TopicPartition[] = [];
    const joined = new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        assignment = Object.entries(e.payload.memberAssignment).flatMap(([topic, ps]) => ps.map((partition) => ({ topic, partition })));
        resolve();
      });
      // Before the first join a crash fails subscribe; later ones kafkajs restarts by itself.
      consumer.on(consumer.events.CRASH, (e) => reject(new BusError(`consumer of ${o.group} crashed`, { cause: e.payload.error })));
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [...o.topics], fromBeginning: o.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        // Revocation (a rebalance) shows up in heartbeats; keep them going through long retries.
        const revoked = new AbortController();
        const beat = setInterval(() => heartbeat().catch(() => revoked.abort()), HEARTBEAT_MS);
        const signal = AbortSignal.any([stopping.signal, revoked.signal]);
        try {
          const raw: RawMessage[] = batch.messages.map((m) => {
            const headers = Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, text(v)]));
            const msg = { topic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key?.toString() ?? '', value: m.value?.toString() ?? '', headers, timestamp: new Date(Number(m.timestamp)), id: '' };
            return { ...msg, id: messageIdOf(msg) };
          });
          for (let i = 0; i < raw.length; i += maxBatch) {
            if (signal.aborted || !isRunning() || isStale()) return;
            const ok = await processBatch({
              group: o.group, messages: raw.slice(i, i + maxBatch), decode: opts.codec.decode, handler: o.handler as never, retry, signal,
              commit: async (upTo, dead) => {
                if (dead.length) {
                  await ensureNamed(dead[0]!.topic, partitionsOf.get(batch.topic as T));
                  await send(dead[0]!.topic, dead);
                }
                resolveOffset(upTo.offset);
                await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(upTo.offset) + 1n).toString() }]);
              },
              onFailure: (err, info) => logger.warn('bus handler failed', { group: o.group, topic: batch.topic, partition: batch.partition, ...info, err }),
            });
            if (!ok) return;
          }
        } finally {
          clearInterval(beat);
        }
      },
    });
    try {
      await joined;
    } catch (err) {
      await consumer.disconnect().catch(() => {});
      throw err;
    }
    let stopped: Promise<void> | undefined;
    const sub: Subscription = {
      group: o.group,
      assignment: () => assignment,
      stop: () => (stopped ??= (async () => {
        stopping.abort();
        await consumer.disconnect(); // waits for the batch in hand
        subscriptions.delete(sub);
      })()),
    };
    subscriptions.add(sub);
    return sub;
  }

  let closed = false;
  return {
    async publish<T extends TopicName<M>>(topic: T, messages: readonly OutgoingMessage<TopicValue<M, T>>[], o?: PublishOptions<PgTx>) {
      if (closed) throw new BusError('the bus is closed');
      if (messages.length === 0) return;
      const stored = messages.map((m) => {
        if (typeof m.key !== 'string') throw new BusError(`${topic}: every message needs a string key`);
        return { key: m.key, value: opts.codec.encode(topic, m.value), headers: m.headers };
      });
      if (!o?.tx) return send(topic, stored);
      if (!relay) throw new BusError('publishing inside a transaction needs the outbox (KafkaBusOptions.outbox)');
      await writeOutbox(o.tx, topic, stored);
    },
    subscribe,
    async ensureTopics(specs) {
      for (const spec of specs) await ensure(spec);
    },
    lag: (group, names) => kafkaLag(admin, group, names),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions].map((s) => s.stop()));
      await relay?.stop();
      await Promise.allSettled([producer.disconnect(), admin.disconnect(), pg?.end({ timeout: 5 })]);
    },
  };
}
