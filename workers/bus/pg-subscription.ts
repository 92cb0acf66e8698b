/**
 * One consumer of a group on the PostgreSQL log. A control loop rebalances (on a group
 * notification, or every `rebalanceIntervalMs` to notice members that died): partitions, sorted, are
 * dealt round-robin over the live members; each owned partition runs its own fetch → handle →
 * commit loop, sleeping on LISTEN/NOTIFY when it has caught up. The loops' fetches (across the bus)
 * and offset commits (on this consumer's session) are merged into shared statements (pg-coalesce.ts).
 */
import type postgres from 'postgres';
import type { BatchHandler, RetryPolicy, Subscription, TopicPartition } from '../../shared/ports/bus.ts';
import type { BusCodec } from '../../shared/bus/codec.ts';
import { backoffMs, resolveRetryPolicy } from '../../shared/bus/retry.ts';
import type { Logger } from '../../shared/log.ts';
import { processBatch, sleep, type RawMessage } from './consume.ts';
import { Coalescer } from './pg-coalesce.ts';
import { PartitionLostError, type Commit, type FetchRequest, type PgLog, type TopicInfo } from './pg-log.ts';
import { GroupSession, groupMembers } from './pg-session.ts';
import type { Waker } from './pg-waker.ts';

export interface PgConsumerDeps {
  url: string;
  sql: postgres.Sql;
  log: PgLog;
  /** The bus's fetches, merged across its consumers' partitions. */
  fetch(req: FetchRequest): Promise<RawMessage[]>;
  data: Waker;
  groups: Waker;
  codec: BusCodec<any>;
  logger: Logger;
  pollIntervalMs: number;
  rebalanceIntervalMs: number;
}

export interface PgConsumerOptions {
  group: string;
  topics: readonly string[];
  handler: BatchHandler<any>;
  retry: RetryPolicy;
  maxBatchSize: number;
  fromBeginning: boolean;
}

interface Owned { topic: TopicInfo; partition: number; key: string; abort: AbortController; done: Promise<void> }

// Storage failures (not handler failures) retry quickly and forever: the log is the source of truth.
const LOOP_RETRY = resolveRetryPolicy({ initialIntervalMs: 100, maximumIntervalMs: 5_000 });

export class PgSubscription implements Subscription {
  private readonly owned = new Map<string, Owned>();
  private readonly stopping = new AbortController();
  private session!: GroupSession;
  /** Merges the partition loops' offset commits into one statement on {@link session}. */
  private committer!: Coalescer<Omit<Commit, 'deadLetters' | 'dlqTopic'>, boolean>;
  private groupId = 0;
  private topics: TopicInfo[] = [];
  private control?: Promise<void>;
  private stopped?: Promise<void>;

  private constructor(private readonly deps: PgConsumerDeps, private readonly opts: PgConsumerOptions) {}

  get group(): string {
    return this.opts.group;
  }

  /** Joins the group and claims this member's share of what is free; resolves once that is done. */
  static async start(deps: PgConsumerDeps, opts: PgConsumerOptions): Promise<PgSubscription> {
    const sub = new PgSubscription(deps, opts);
    sub.groupId = await deps.log.group(opts.group);
    sub.topics = (await Promise.all(opts.topics.map((t) => deps.log.topic(t)))).sort((a, b) => a.id - b.id);
    await sub.openSession();
    await sub.rebalance();
    sub.control = sub.controlLoop();
    return sub;
  }

  assignment(): TopicPartition[] {
    return [...this.owned.values()].map((o) => ({ topic: o.topic.name, partition: o.partition }));
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping.abort();
      await this.control;
      await Promise.all([...this.owned.values()].map((o) => this.halt(o)));
      await this.session.close().catch(() => {});
      await this.notifyGroup().catch(() => {});
    })();
    return this.stopped;
  }

  private notifyGroup() {
    return this.deps.sql`SELECT pg_notify('bus_group', ${String(this.groupId)})`;
  }

  private async controlLoop(): Promise<void> {
    const key = String(this.groupId);
    while (!this.stopping.signal.aborted) {
      const since = this.deps.groups.seq(key);
      await this.deps.groups.wait(key, since, this.deps.rebalanceIntervalMs, this.stopping.signal);
      if (this.stopping.signal.aborted) break;
      try {
        await this.rebalance();
      } catch (err) {
        this.deps.logger.warn('bus rebalance failed', { group: this.opts.group, err });
      }
    }
  }

  private async rebalance(): Promise<void> {
    if (this.session.lost) await this.rejoin();
    const members = await groupMembers(this.deps.sql, this.groupId);
    const me = members.indexOf(this.session.member);
    if (me < 0) return this.rejoin();
    const all = this.topics.flatMap((topic) => Array.from({ length: topic.partitions }, (_, partition) => ({ topic, partition })));
    const mine = all.filter((_, i) => i % members.length === me);
    const keep = new Set(mine.map((p) => `${p.topic.id}:${p.partition}`));
    const leaving = [...this.owned.values()].filter((o) => !keep.has(o.key));
    if (leaving.length) {
      await Promise.all(leaving.map(async (o) => {
        await this.halt(o);
        await this.session.unlock(o.topic.id, o.partition);
      }));
      await this.notifyGroup();
    }
    for (const { topic, partition } of mine) {
      if (this.stopping.signal.aborted) return;
      if (!this.owned.has(`${topic.id}:${partition}`) && (await this.session.tryLock(topic.id, partition))) this.claim(topic, partition);
    }
  }

  /** The connection dropped: every lock went with it. Stop everything and join again as a new member. */
  private async rejoin(): Promise<void> {
    this.deps.logger.warn('bus consumer session lost; rejoining', { group: this.opts.group, member: this.session.member });
    await Promise.all([...this.owned.values()].map((o) => this.halt(o)));
    await this.session.close().catch(() => {});
    await this.openSession();
  }

  private async openSession(): Promise<void> {
    const session = await GroupSession.open(this.deps.url, this.groupId);
    this.session = session;
    this.committer = new Coalescer((commits) => session.run((exec) => this.deps.log.commitOffsets(exec, commits)));
    await this.notifyGroup();
  }

  /** Stops a partition's loop after the batch in hand; the caller releases its lock. */
  private async halt(o: Owned): Promise<void> {
    o.abort.abort();
    await o.done;
    this.owned.delete(o.key);
  }

  private claim(topic: TopicInfo, partition: number): void {
    const o = { topic, partition, key: `${topic.id}:${partition}`, abort: new AbortController() } as Owned;
    this.owned.set(o.key, o);
    o.done = this.partitionLoop(o).catch((err) => {
      this.deps.logger.error('bus partition loop crashed', { topic: topic.name, partition, err });
    });
  }

  private async partitionLoop(o: Owned): Promise<void> {
    const { deps, opts, session, committer } = this;
    const signal = o.abort.signal;
    const at = { group: this.groupId, topic: o.topic, partition: o.partition, pid: session.pid };
    let position: number | undefined;
    let failures = 0;
    while (!signal.aborted) {
      const since = deps.data.seq(o.key);
      try {
        position ??= await session.run((exec) => deps.log.position(exec, { ...at, fromBeginning: opts.fromBeginning }));
        const messages = await deps.fetch({ topic: o.topic, partition: o.partition, from: position, limit: opts.maxBatchSize });
        if (messages.length === 0) {
          await deps.data.wait(o.key, since, deps.pollIntervalMs, signal);
          continue;
        }
        const finished = await processBatch({
          group: opts.group, messages, decode: deps.codec.decode, handler: opts.handler, retry: opts.retry, signal,
          commit: async (upTo, deadLetters) => {
            const next = Number(upTo.offset) + 1;
            if (deadLetters[0]) {
              const dlqTopic = await deps.log.topic(deadLetters[0].topic, { name: deadLetters[0].topic, partitions: o.topic.partitions });
              await session.run((exec) => deps.log.commit(exec, { ...at, next, deadLetters, dlqTopic }));
            } else if (!(await committer.call({ ...at, next }))) {
              throw PartitionLostError.of(o.topic, o.partition);
            }
            position = next;
          },
          onFailure: (err, info) => deps.logger.warn('bus handler failed', { group: opts.group, topic: o.topic.name, partition: o.partition, ...info, err }),
        });
        failures = 0;
        // A short batch ended at the log's end as of the fetch: sleep until a publish after it
        // notifies (`since` predates the fetch) instead of first fetching nothing.
        if (finished && messages.length < opts.maxBatchSize) await deps.data.wait(o.key, since, deps.pollIntervalMs, signal);
      } catch (err) {
        if (err instanceof PartitionLostError || session.lost) return;
        failures++;
        deps.logger.error('bus partition loop failed; retrying', { group: opts.group, topic: o.topic.name, partition: o.partition, err });
        await sleep(backoffMs(LOOP_RETRY, failures), signal);
      }
    }
  }
}
