/**
 * The embedded bus: a durable, partitioned log in the `platform` PostgreSQL database
 * (infra/migrations/platform/002_bus.sql). Publishing is one statement — batched with unnest, on the
 * bus's pool or inside a caller's transaction (the saga's outbox: a rollback publishes nothing).
 * Consumers own partitions through session advisory locks (pg-session.ts), wake on LISTEN/NOTIFY
 * with a slow fallback poll, and commit offsets together with their dead letters.
 *
 * Publishing inside a transaction locks the touched partitions until it ends: keep those
 * transactions short. In REPEATABLE READ or SERIALIZABLE transactions a concurrent publish to the
 * same partition fails with a serialization error (retry the transaction, as for any such conflict).
 */
import postgres from 'postgres';
import type { Bus, OutgoingMessage, PublishOptions, SubscribeOptions, TopicMap, TopicName, TopicValue, TopicSpec } from '../../shared/ports/bus.ts';
import type { BusCodec } from '../../shared/bus/codec.ts';
import { resolveRetryPolicy } from '../../shared/bus/retry.ts';
import { createLogger, type Logger } from '../../shared/log.ts';
import { BusError } from './consume.ts';
import { Coalescer } from './pg-coalesce.ts';
import { execOf, PgLog, type FetchRequest, type PgTx } from './pg-log.ts';
import { BUS_CONNECTION } from './pg-statements.ts';
import { runRetention, type RetentionResult } from './pg-retention.ts';
import { PgSubscription } from './pg-subscription.ts';
import { Waker } from './pg-waker.ts';

export interface PostgresBusOptions<M extends TopicMap> {
  /** URL of the platform database (migrated: the bus tables must exist). */
  url: string;
  codec: BusCodec<M>;
  /** Partitions of topics created on first use (default 8). */
  defaultPartitions?: number;
  /** Pool for publishes and fetches (default 10); each subscription adds one connection, LISTEN one more. */
  poolMax?: number;
  /** Fallback poll when no notification arrives (default 5 s); NOTIFY does the real waking. */
  pollIntervalMs?: number;
  /** How often consumers look for members that died (default 1 s); joins and leaves notify at once. */
  rebalanceIntervalMs?: number;
  /**
   * A batch published outside a transaction whose encoded values add up to at least this many bytes
   * is stored with COPY on a reserved connection (see {@link PgLog.appendCopy}). Off by default
   * (Infinity); the workers' bus uses {@link WORKER_COPY_MIN_BYTES}. Measured here: for 2,000 CDC
   * envelopes (~0.9 MB) COPY takes ~0.55× the time of the unnest statement, whose array literal
   * PostgreSQL must parse; for 1,000 small messages (~0.1 MB) its extra round trips made it slower.
   * The CDC kill -9 test runs with it on (16 KiB) and publishes over a hundred batches by COPY.
   */
  copyMinBytes?: number;
  /**
   * How long a COPY publish may take, from reserving its offsets to COMMIT (default 30 s). Past it
   * its connection is discarded (the server rolls the transaction back) and the publish fails, so the
   * caller retries; a commit that raced the limit makes that retry a duplicate, as any retry may be.
   */
  copyTimeoutMs?: number;
  /** Background retention (default: every 60 s, min age 1 h); `false` to run {@link PostgresBus.cleanup} yourself. */
  retention?: { intervalMs: number; minAgeMs: number } | false;
  log?: Logger;
}

/** The PostgreSQL bus: publishes inside postgres.js or OLTP-port transactions, and runs retention. */
export interface PostgresBus<M extends TopicMap> extends Bus<M, PgTx> {
  /** The bus's own pool on the platform database. */
  readonly sql: postgres.Sql;
  /** Batches this bus stored with COPY, and COPY publishes that failed (counted for tests and benchmarks). */
  readonly copyStats: { readonly published: number; readonly failed: number };
  /** Deletes what every group has passed and is older than `minAgeMs` (default: the configured age). */
  cleanup(opts?: { minAgeMs?: number }): Promise<RetentionResult>;
}

/**
 * The `copyMinBytes` of the workers' bus (workers/bus/index.ts): CDC's batches of envelopes
 * (~450 bytes each) go by COPY from about 150 events on; the saga's small batches stay below it.
 */
export const WORKER_COPY_MIN_BYTES = 64 * 1024;

/** Connects to the platform database and starts listening; resolves when ready. */
export async function createPostgresBus<M extends TopicMap>(opts: PostgresBusOptions<M>): Promise<PostgresBus<M>> {
  const logger = opts.log ?? createLogger({ level: 'silent' });
  const sql = postgres(opts.url, {
    max: opts.poolMax ?? 10, onnotice: () => {}, connection: { ...BUS_CONNECTION, application_name: 'bionicpro-bus' },
  });
  const log = new PgLog(sql, opts.defaultPartitions ?? 8);
  // Two merged fetches at a time (one is read while the next runs), each returning at most as many
  // rows as ten fetches of a CDC sink (2,000 each) could, so a backlog is not read into memory at once.
  const fetcher = new Coalescer((reqs: FetchRequest[]) => log.fetch(reqs), { concurrency: 2, weight: (r) => r.limit, maxWeight: 20_000 });
  const copyMinBytes = opts.copyMinBytes ?? Number.POSITIVE_INFINITY;
  const copyTimeoutMs = opts.copyTimeoutMs ?? 30_000;
  const copyStats = { published: 0, failed: 0 };
  const retention = opts.retention ?? { intervalMs: 60_000, minAgeMs: 3_600_000 };
  let data: Waker, groups: Waker;
  try {
    [data, groups] = await Promise.all([Waker.listen(sql, 'bus'), Waker.listen(sql, 'bus_group')]);
  } catch (err) {
    await sql.end({ timeout: 0 });
    throw new BusError('cannot listen on the platform database', { cause: err });
  }
  const subscriptions = new Set<PgSubscription>();
  const cleanup = (o: { minAgeMs?: number } = {}) => runRetention(sql, { minAgeMs: o.minAgeMs ?? (retention ? retention.minAgeMs : 3_600_000) });
  const timer = retention
    ? setInterval(() => cleanup().catch((err) => logger.warn('bus retention failed', { err })), retention.intervalMs)
    : undefined;
  timer?.unref();
  let closed = false;

  return {
    sql,
    copyStats,
    cleanup,
    async publish<T extends TopicName<M>>(topic: T, messages: readonly OutgoingMessage<TopicValue<M, T>>[], o?: PublishOptions<PgTx>) {
      if (closed) throw new BusError('the bus is closed');
      if (messages.length === 0) return;
      const stored = messages.map((m) => {
        if (typeof m.key !== 'string') throw new BusError(`${topic}: every message needs a string key`);
        return { key: m.key, value: opts.codec.encode(topic, m.value), headers: m.headers };
      });
      const info = await log.topic(topic);
      // Large batches on the bus's own connections go by COPY; inside a caller's transaction, or for
      // small batches, one statement is cheaper.
      if (!o?.tx && stored.reduce((n, m) => n + m.value.length, 0) >= copyMinBytes) {
        try {
          await log.appendCopy(sql, info, stored, { timeoutMs: copyTimeoutMs });
        } catch (err) {
          copyStats.failed++;
          throw err;
        }
        copyStats.published++;
      } else await log.append(execOf(o?.tx ?? sql), info, stored);
    },
    async subscribe<T extends TopicName<M>>(o: SubscribeOptions<M, T>) {
      if (closed) throw new BusError('the bus is closed');
      const unknown = o.topics.filter((t) => !opts.codec.knows(t));
      if (unknown.length) throw new BusError(`no schema for topic(s): ${unknown.join(', ')}`);
      const sub = await PgSubscription.start(
        {
          url: opts.url, sql, log, fetch: (req) => fetcher.call(req), data, groups, codec: opts.codec, logger,
          pollIntervalMs: opts.pollIntervalMs ?? 5_000, rebalanceIntervalMs: opts.rebalanceIntervalMs ?? 1_000,
        },
        {
          group: o.group, topics: o.topics, handler: o.handler as never, retry: resolveRetryPolicy(o.retry),
          maxBatchSize: o.maxBatchSize ?? 500, fromBeginning: o.fromBeginning ?? true,
        },
      );
      subscriptions.add(sub);
      const stop = sub.stop.bind(sub);
      sub.stop = () => stop().finally(() => subscriptions.delete(sub));
      return sub;
    },
    async ensureTopics(specs: readonly TopicSpec[]) {
      for (const spec of specs) {
        const info = await log.topic(spec.name, spec);
        if (info.partitions !== spec.partitions) {
          logger.warn('bus topic exists with another partition count; keeping it', { topic: spec.name, has: info.partitions, wanted: spec.partitions });
        }
      }
    },
    lag: (group, topics) => log.lag(group, topics),
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      await Promise.all([...subscriptions].map((s) => s.stop()));
      await Promise.all([data.close(), groups.close()]);
      await sql.end({ timeout: 5 });
    },
  };
}
