/**
 * Event bus: topics split into partitions, consumer groups, at-least-once delivery.
 * Production: Kafka (kafkajs). Embedded: a durable log in PostgreSQL (`platform` database).
 * Both adapters pass tests/contract/bus-contract.ts.
 *
 * Guarantees:
 * - `publish` resolves once the messages are durable (committed / acknowledged by all replicas).
 * - A key always maps to the same partition (shared/bus/partition.ts), and a partition is handled by
 *   one consumer of a group at a time, in offset order: messages with one key arrive in publish order.
 * - A group's offset moves only after its handler resolved, so a crash or failure means redelivery,
 *   never loss. Handlers must be idempotent (workers/bus/dedupe.ts).
 * - A failing message is retried by its {@link RetryPolicy}; then it goes to `<topic>.dlq` with the
 *   error in its headers (shared/bus/dlq.ts) and its partition moves on. A value that fails its
 *   topic's schema goes there at once instead of blocking the partition.
 */

/** Value type per topic name; template-literal keys (`crm.public.${string}`) cover topic families. */
export type TopicMap = Record<string, unknown>;

/** Topic names of `M` and their dead-letter topics (`<topic>.dlq`). */
export type TopicName<M extends TopicMap> = (keyof M & string) | `${keyof M & string}.dlq`;

/** The value type on topic `T`: dead-letter topics carry the original text, unparsed. */
export type TopicValue<M extends TopicMap, T extends string> = T extends `${string}.dlq` ? string : T extends keyof M ? M[T] : never;

/** Header values are text on both adapters (Kafka's byte headers are decoded as UTF-8). */
export type BusHeaders = Record<string, string>;

export interface OutgoingMessage<V = unknown> {
  /** Chooses the partition; messages sharing a key keep their order. */
  key: string;
  /** Serialised by the bus's codec, which checks it against the topic's schema. */
  value: V;
  /** `message-id`, when set, names the message for deduplication instead of its position. */
  headers?: BusHeaders;
}

export interface BusMessage<V = unknown> {
  topic: string;
  partition: number;
  /** Decimal string: offsets are 64-bit. */
  offset: string;
  key: string;
  value: V;
  headers: BusHeaders;
  /** When the log stored the message. */
  timestamp: Date;
  /** Stable across redeliveries: the `message-id` header, else `topic/partition/offset`. */
  id: string;
}

/** Retry policy as data (Temporal's shape). Attempts count deliveries of a message on its own. */
export interface RetryPolicy {
  /** Deliveries before the message is dead-lettered; 1 means no retry. */
  maximumAttempts: number;
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
}

export interface HandlerContext {
  readonly group: string;
  /** 1 for a first delivery; higher while a failed message is retried on its own. */
  readonly attempt: number;
  /** Aborted when the consumer is stopping or loses the partition; the batch may still finish. */
  readonly signal: AbortSignal;
}

/** Receives messages of one partition in offset order. Resolving commits them; throwing retries. */
export type BatchHandler<V> = (messages: BusMessage<V>[], ctx: HandlerContext) => Promise<void>;

export interface SubscribeOptions<M extends TopicMap, T extends TopicName<M>> {
  group: string;
  /** Every member of a group should subscribe to the same topics. */
  topics: readonly T[];
  handler: BatchHandler<TopicValue<M, T>>;
  retry?: Partial<RetryPolicy>;
  /** Most messages per handler call (default 500). */
  maxBatchSize?: number;
  /** Where a group without a committed offset starts: the oldest retained message (default) or the end. */
  fromBeginning?: boolean;
}

export interface TopicPartition { topic: string; partition: number }

export interface Subscription {
  readonly group: string;
  /** Partitions this consumer owns right now. */
  assignment(): TopicPartition[];
  /** Stops fetching, lets the batches in hand finish and commit, then leaves the group. */
  stop(): Promise<void>;
}

export interface PartitionLag {
  group: string;
  topic: string;
  partition: number;
  /** Next offset the group will read; `null` when it never committed on this partition. */
  committedOffset: string | null;
  /** Next offset a publish will get. */
  endOffset: string;
  /** Messages the group has not committed yet. */
  lag: number;
}

export interface TopicSpec {
  name: string;
  partitions: number;
  /** Age after which messages are deleted even if a group has not read them; `null`/absent: never. */
  retentionMs?: number | null;
  /** Kafka only; the broker default when absent. */
  replicationFactor?: number;
}

export interface PublishOptions<Tx> {
  /** Publish inside this database transaction: the messages exist only if it commits. */
  tx?: Tx;
}

/** `Tx` is the transaction type the adapter can publish inside (`never` when it cannot). */
export interface Bus<M extends TopicMap = TopicMap, Tx = never> {
  /** Appends messages (one batch); resolves when durable. Topics are created on first use. */
  publish<T extends TopicName<M>>(topic: T, messages: readonly OutgoingMessage<TopicValue<M, T>>[], opts?: PublishOptions<Tx>): Promise<void>;
  /** Joins `group` and starts handling; resolves once the consumer has joined. */
  subscribe<T extends TopicName<M>>(opts: SubscribeOptions<M, T>): Promise<Subscription>;
  /** Creates missing topics; never changes an existing topic's partition count. */
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  /** Lag of `group` on `topics` (default: the topics it has committed on), per partition. */
  lag(group: string, topics?: readonly string[]): Promise<PartitionLag[]>;
  /** Stops every subscription gracefully, then releases connections the bus opened itself. */
  close(): Promise<void>;
}
