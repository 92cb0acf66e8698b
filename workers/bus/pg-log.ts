/**
 * SQL over the PostgreSQL log (tables in infra/migrations/platform/002_bus.sql): topics, appends,
 * fetches, group offsets, lag and retention. No state beyond caches of immutable ids.
 */
import type postgres from 'postgres';
import type { BusHeaders, PartitionLag, TopicSpec } from '../../shared/ports/bus.ts';
import type { OltpQueryable } from '../../shared/ports/oltp.ts';
import { partitionFor } from '../../shared/bus/partition.ts';
import { BusError, messageIdOf, type RawMessage } from './consume.ts';
import { APPEND, APPEND_ONE, COMMIT, FETCH, LAG, POSITION, RESERVE, WAKE } from './pg-statements.ts';

/** Where a publish can run: the bus's pool, a postgres.js transaction, or the OLTP port's transaction. */
export type PgTx = postgres.Sql | postgres.TransactionSql | OltpQueryable;
type Row = Record<string, unknown>;
export type Exec = (text: string, params: unknown[]) => Promise<Row[]>;

export function execOf(db: PgTx): Exec {
  if (typeof db === 'function') return (text, params) => db.unsafe(text, params as never, { prepare: true }) as unknown as Promise<Row[]>;
  return (text, params) => db.query(text, params);
}

export interface TopicInfo { id: number; name: string; partitions: number }
export interface StoredMessage { key: string; value: string; headers?: BusHeaders | null }

/** The consumer's session ended, so it no longer owns the partition; another consumer will redo the work. */
export class PartitionLostError extends BusError {
  override readonly name = 'PartitionLostError';

  static of(topic: TopicInfo, partition: number): PartitionLostError {
    return new PartitionLostError(`${topic.name}[${partition}]: the consumer session holding it has ended`);
  }
}

export interface Commit {
  group: number;
  topic: TopicInfo;
  partition: number;
  next: number;
  /** Backend pid of the session holding the partition's lock. */
  pid: number;
  deadLetters?: readonly StoredMessage[];
  dlqTopic?: TopicInfo;
}

/** Where one partition's fetch starts, and how many messages it takes at most. */
export interface FetchRequest { topic: TopicInfo; partition: number; from: number; limit: number }

const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
/** A field of COPY's text format (JSON text rarely needs more than its backslashes doubled). */
const copyField = (s: string) => (COPY_SPECIAL.test(s) ? s.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c]!) : s);

function columns(topic: TopicInfo, messages: readonly StoredMessage[]): unknown[] {
  return [
    topic.id,
    messages.map((m) => partitionFor(m.key, topic.partitions)),
    messages.map((m) => m.key),
    messages.map((m) => m.value),
    messages.map((m) => (m.headers && Object.keys(m.headers).length ? JSON.stringify(m.headers) : null)),
  ];
}

/** Resolves when `p` settles or after `ms`, whichever comes first. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.then(() => {}, () => {}), new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); })]);
  clearTimeout(timer);
}

export class PgLog {
  private readonly topics = new Map<string, Promise<TopicInfo>>();
  private readonly groups = new Map<string, Promise<number>>();

  constructor(readonly sql: postgres.Sql, private readonly defaultPartitions: number) {}

  /** The topic's ids, creating it with the default partition count on first use. */
  topic(name: string, spec?: TopicSpec): Promise<TopicInfo> {
    let info = this.topics.get(name);
    if (!info) {
      info = this.loadOrCreate(spec ?? { name, partitions: this.defaultPartitions });
      this.topics.set(name, info);
      info.catch(() => this.topics.delete(name));
    }
    return info;
  }

  // Always on the bus's own pool: a publish inside a transaction that rolls back must not take the topic with it.
  private async loadOrCreate(spec: TopicSpec): Promise<TopicInfo> {
    const find = () => this.sql<TopicInfo[]>`SELECT id, name, partitions FROM bus_topics WHERE name = ${spec.name}`;
    let [found] = await find();
    if (!found) {
      await this.sql.begin(async (tx) => {
        await tx`INSERT INTO bus_topics (name, partitions, retention_ms)
          VALUES (${spec.name}, ${spec.partitions}, ${spec.retentionMs ?? null}) ON CONFLICT (name) DO NOTHING`;
        await tx`INSERT INTO bus_partitions (topic_id, partition)
          SELECT id, generate_series(0, partitions - 1) FROM bus_topics WHERE name = ${spec.name} ON CONFLICT DO NOTHING`;
      });
      [found] = await find();
    }
    if (!found) throw new BusError(`topic ${spec.name} could not be created`);
    return found;
  }

  group(name: string): Promise<number> {
    let id = this.groups.get(name);
    if (!id) {
      id = (async () => {
        await this.sql`INSERT INTO bus_groups (name) VALUES (${name}) ON CONFLICT (name) DO NOTHING`;
        const [row] = await this.sql<{ id: number }[]>`SELECT id FROM bus_groups WHERE name = ${name}`;
        return row!.id;
      })();
      this.groups.set(name, id);
      id.catch(() => this.groups.delete(name));
    }
    return id;
  }

  /** Appends already-encoded messages in one statement on `exec` (the pool or a caller's transaction). */
  async append(exec: Exec, topic: TopicInfo, messages: readonly StoredMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const cols = columns(topic, messages);
    const partitions = cols[1] as number[];
    const [row] = partitions.every((p) => p === partitions[0])
      ? await exec(APPEND_ONE, [topic.id, partitions[0], cols[2], cols[3], cols[4]])
      : await exec(APPEND, [...cols, null, null, null, null, null]);
    if (row?.n !== messages.length) throw new BusError(`${topic.name}: stored ${String(row?.n)} of ${messages.length} messages`);
  }

  /**
   * The same append as {@link append}, for large batches on the bus's own pool: offsets reserved by
   * one statement, rows streamed with COPY (about twice as fast as the unnest statement here), all
   * in one transaction on a reserved connection. Messages with a NUL character, which COPY cannot
   * carry, take {@link append} (PostgreSQL refuses them either way, but that path reports why).
   *
   * A failure, a lost connection or a COPY still unfinished after `timeoutMs` discards the
   * connection instead of rolling back on it: its backend is terminated from the pool, so the server
   * rolls the transaction back and nothing of the batch is stored, and nothing more is sent on it
   * (postgres.js 3.4.9 writes to a closed connection's null socket, an uncaught TypeError on a later
   * tick, and never settles a COPY that failed after `end()`, porsager/postgres#1173).
   */
  async appendCopy(sql: postgres.Sql, topic: TopicInfo, messages: readonly StoredMessage[], o: { timeoutMs: number }): Promise<void> {
    if (messages.some((m) => m.key.includes('\0') || m.value.includes('\0'))) return this.append(execOf(sql), topic, messages);
    const partitions = messages.map((m) => partitionFor(m.key, topic.partitions));
    const counts = new Map<number, number>();
    for (const p of partitions) counts.set(p, (counts.get(p) ?? 0) + 1);
    const touched = [...counts.keys()];
    const c = await sql.reserve();
    let pid: number | undefined;
    let discarded = false; // failed or timed out: the backend is (being) terminated
    let gone = false; // the COPY stream failed: the connection is closing, send nothing more on it
    const terminate = async () => {
      if (pid !== undefined) await this.sql`SELECT pg_terminate_backend(${pid})`.catch(() => {});
    };
    const stillMine = () => {
      if (discarded) throw new BusError(`${topic.name}: COPY publish abandoned`);
    };
    const work = (async () => {
      // Pipelined: one round trip for the backend pid (to discard it by), BEGIN and the offsets.
      const [, , bases] = await Promise.all([
        c.unsafe('SELECT pg_backend_pid() AS pid').then((r) => {
          pid = r[0]!.pid as number;
          if (discarded) void terminate(); // the time limit passed before the pid was known
        }),
        c.unsafe('BEGIN'),
        c.unsafe(RESERVE, [topic.id, touched, touched.map((p) => counts.get(p)!)], { prepare: true }),
      ]);
      if (bases.length !== touched.length) throw new BusError(`${topic.name}: ${touched.length - bases.length} partition(s) missing`);
      stillMine();
      const next = new Map(bases.map((b) => [b.partition as number, Number(b.base)]));
      const lines = messages.map((m, i) => {
        const p = partitions[i]!;
        const offset = next.get(p)!;
        next.set(p, offset + 1);
        const headers = m.headers && Object.keys(m.headers).length ? copyField(JSON.stringify(m.headers)) : '\\N';
        return `${topic.id}\t${p}\t${offset}\t${copyField(m.key)}\t${copyField(m.value)}\t${headers}\n`;
      });
      const copy = await c.unsafe('COPY bus_messages (topic_id, partition, msg_offset, key, value, headers) FROM STDIN').writable();
      const failed = new Promise<never>((_, reject) => copy.once('error', (err) => { gone = true; reject(err); }));
      failed.catch(() => {});
      await Promise.race([failed, new Promise<void>((resolve, reject) => copy.write(lines.join(''), (err) => (err ? reject(err) : resolve())))]);
      // Ending sends CopyDone at once. Awaiting the stream's 'finish' would hang if the COPY fails
      // (#1173); the next statement, queued behind it, fails instead.
      copy.end();
      if (gone) await failed;
      stillMine();
      // Pipelined too: after a failed COPY the NOTIFY fails, and COMMIT in the aborted transaction rolls back.
      await Promise.all([c.unsafe(WAKE, [topic.id, touched], { prepare: true }), c.unsafe('COMMIT')]);
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BusError(`${topic.name}: storing ${messages.length} messages with COPY took over ${o.timeoutMs} ms`)), o.timeoutMs);
    });
    try {
      await Promise.race([work, timedOut]);
    } catch (err) {
      // Not ROLLBACK through postgres.js: the connection may be closed (see above). Ending the backend
      // rolls back on the server; postgres.js returns a closed connection to its pool by itself, while
      // release() would put it back as if open. Wait (briefly) until the work has seen the close.
      discarded = true;
      await terminate();
      await settledWithin(work, 5_000);
      throw err instanceof BusError ? err : new BusError(`${topic.name}: storing ${messages.length} messages with COPY failed`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    c.release();
  }

  /**
   * Commits `next` as the group's offset on a partition, with its dead letters, in one statement on
   * the consumer's session; throws {@link PartitionLostError} when `pid` is not that session any more.
   */
  async commit(exec: Exec, c: Commit): Promise<void> {
    const dlq = c.deadLetters ?? [];
    if (dlq.length === 0) {
      const [committed] = await this.commitOffsets(exec, [c]);
      if (!committed) throw PartitionLostError.of(c.topic, c.partition);
      return;
    }
    const target = c.dlqTopic ?? c.topic;
    const [row] = await exec(APPEND, [...columns(target, dlq), c.pid, c.group, c.topic.id, c.partition, c.next]);
    if (!row || Number(row.committed) !== 1) throw PartitionLostError.of(c.topic, c.partition);
    if (row.n !== dlq.length) throw new BusError(`${target.name}: stored ${String(row.n)} of ${dlq.length} dead letters`);
  }

  /**
   * Offsets of one session's partitions (no dead letters) in one statement; says per commit whether it
   * took effect — all do, or none when `pid` is not that session any more. A partition may appear once.
   */
  async commitOffsets(exec: Exec, commits: readonly Omit<Commit, 'deadLetters' | 'dlqTopic'>[]): Promise<boolean[]> {
    const [first] = commits;
    if (!first) return [];
    if (commits.some((c) => c.group !== first.group || c.pid !== first.pid)) throw new BusError('offsets of one session only');
    const rows = await exec(COMMIT, [
      first.group, commits.map((c) => c.topic.id), commits.map((c) => c.partition), commits.map((c) => c.next), first.pid,
    ]);
    const done = new Set(rows.map((r) => `${String(r.topic_id)}:${String(r.partition)}`));
    return commits.map((c) => done.has(`${c.topic.id}:${c.partition}`));
  }

  /**
   * Several partitions' messages in one statement: per request, up to `limit` messages from `from`
   * on, in offset order — what fetching each on its own would return.
   */
  async fetch(requests: readonly FetchRequest[]): Promise<RawMessage[][]> {
    const out = requests.map((): RawMessage[] => []);
    if (requests.length === 0) return out;
    const rows = await this.sql.unsafe(FETCH, [
      requests.map((r) => r.topic.id), requests.map((r) => r.partition), requests.map((r) => r.from), requests.map((r) => r.limit),
    ], { prepare: true });
    for (const r of rows) {
      const { topic, partition } = requests[(r.i as number) - 1]!;
      const m = {
        topic: topic.name, partition, offset: String(r.msg_offset), key: r.key as string, value: r.value as string,
        headers: (r.headers ?? {}) as BusHeaders, timestamp: new Date(r.at as number), id: '',
      };
      m.id = messageIdOf(m);
      out[(r.i as number) - 1]!.push(m);
    }
    return out;
  }

  /** The group's next offset on a partition, recording the starting point on first claim (fenced by `pid`). */
  async position(exec: Exec, c: Omit<Commit, 'next'> & { fromBeginning: boolean }): Promise<number> {
    const [row] = await exec(POSITION, [c.group, c.topic.id, c.partition, c.fromBeginning, c.pid]);
    if (!row) throw PartitionLostError.of(c.topic, c.partition);
    return Number(row.next_offset);
  }

  async lag(group: string, topics?: readonly string[]): Promise<PartitionLag[]> {
    const rows = await this.sql.unsafe(LAG, [group, topics ? [...topics] : null]);
    return rows.map((r) => {
      const committed = r.committed === null ? null : String(r.committed);
      const end = Number(r.end_offset);
      return {
        group, topic: r.topic as string, partition: r.partition as number, committedOffset: committed,
        endOffset: String(r.end_offset), lag: end - Number(committed ?? r.start_offset),
      };
    });
  }
}
