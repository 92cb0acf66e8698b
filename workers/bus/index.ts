/**
 * The bus for a worker: Kafka when `KAFKA_BROKERS` is set (shared/bus/config.ts), otherwise the
 * PostgreSQL log in the platform database. Either way publishes can join a platform-database
 * transaction (the PostgreSQL log directly, Kafka through the outbox), so callers see one `Bus`.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { BusConfig } from '../../shared/bus/config.ts';
import type { BusCodec } from '../../shared/bus/codec.ts';
import { dlqTopicOf } from '../../shared/bus/dlq.ts';
import type { Logger } from '../../shared/log.ts';
import type { Bus, TopicMap, TopicSpec } from '../../shared/ports/bus.ts';
import { createKafkaBus } from './kafka-bus.ts';
import type { PgTx } from './pg-log.ts';
import { createPostgresBus, WORKER_COPY_MIN_BYTES } from './postgres-bus.ts';

export { firstDeliveries, pruneProcessed, type Deliveries } from './dedupe.ts';
export { BusError } from './consume.ts';
export type { PgTx } from './pg-log.ts';

export interface BusDeps<M extends TopicMap> {
  /** The platform database: home of the PostgreSQL log, or of Kafka's transactional outbox. */
  platformUrl: string;
  codec: BusCodec<M>;
  log?: Logger;
  /** Topics to create before returning (usually {@link loadTopicSpecs}). */
  topics?: readonly TopicSpec[];
}

export type WorkerBus<M extends TopicMap> = Bus<M, PgTx> & { readonly kind: 'kafka' | 'postgres' };

/** Builds the configured adapter, creates `deps.topics`, and resolves when ready to publish. */
export async function createBus<M extends TopicMap>(cfg: BusConfig, deps: BusDeps<M>): Promise<WorkerBus<M>> {
  const common = { codec: deps.codec, defaultPartitions: cfg.defaultPartitions, log: deps.log };
  const bus: Bus<M, PgTx> = cfg.kafka
    ? await createKafkaBus({ ...common, kafka: cfg.kafka, outbox: { url: deps.platformUrl } })
    : await createPostgresBus({
      ...common, url: deps.platformUrl, retention: { intervalMs: 60_000, minAgeMs: cfg.retentionMinAgeMs }, copyMinBytes: WORKER_COPY_MIN_BYTES,
    });
  if (deps.topics?.length) {
    try {
      await bus.ensureTopics(deps.topics);
    } catch (err) {
      await bus.close();
      throw err;
    }
  }
  return Object.assign(bus, { kind: cfg.kafka ? ('kafka' as const) : ('postgres' as const) });
}

/** The production topic list (infra/kafka/topics.json). */
export const TOPICS_FILE = fileURLToPath(new URL('../../infra/kafka/topics.json', import.meta.url));

const topicsFile = z.object({
  defaults: z.object({ replicationFactor: z.number().int().min(1), dlqRetentionMs: z.number().int().positive() }),
  topics: z.array(z.object({
    name: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/),
    partitions: z.number().int().min(1).max(4096),
    retentionMs: z.number().int().positive().nullable(),
    replicationFactor: z.number().int().min(1).optional(),
  })).min(1),
});

/** Reads the topic list, adding each topic's `<topic>.dlq` (same partitions, the DLQ retention). */
export async function loadTopicSpecs(path = TOPICS_FILE): Promise<TopicSpec[]> {
  const file = topicsFile.parse(JSON.parse(await readFile(path, 'utf8')));
  return file.topics.flatMap((t) => {
    const replicationFactor = t.replicationFactor ?? file.defaults.replicationFactor;
    return [
      { ...t, replicationFactor },
      { name: dlqTopicOf(t.name), partitions: t.partitions, retentionMs: file.defaults.dlqRetentionMs, replicationFactor },
    ];
  });
}
