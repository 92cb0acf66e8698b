/**
 * The sink: consumer group `cdc-sink` over `crm.public.<table>` (a region's: `cdc-sink-<region>` over
 * `crm_<region>.public.<table>`), writing batches into the replicas.
 *
 * Each event becomes one row with `_version` = commit LSN << 32 | position in the transaction
 * (lsn.ts); deletes become `_deleted = 1` rows carrying the key. Writing a row twice changes nothing
 * FINAL shows, so redeliveries and replays are harmless. Batches of different partitions of one
 * table that are ready together go out in one insert (group commit): fewer, larger parts.
 *
 * The bus commits a batch only after its insert returned, so the group's committed offsets are the
 * sink's durable position; the capture acknowledges the slot by them (acks.ts). Failed batches are
 * retried forever rather than dead-lettered: a dead letter would be a change skipped.
 */
import { cdcTopic, type BionicTopics, type CdcEnvelope } from '../../shared/bus/topics.ts';
import type { Logger } from '../../shared/log.ts';
import type { Bus, BusMessage, Subscription } from '../../shared/ports/bus.ts';
import { SEQ_HEADER, type Row } from './envelopes.ts';
import { formatLsn, versionOf } from './lsn.ts';
import type { CdcMetrics } from './metrics.ts';
import type { Replica } from './replica.ts';
import { CdcError, errorText, type EventSink } from './runtime.ts';

export interface SinkDeps {
  bus: Bus<BionicTopics, any>;
  replica: Replica;
  log: Logger;
  metrics: CdcMetrics;
  events: EventSink;
  group: string;
  batchMax: number;
  /** Debezium's `topic.prefix` of the topics read (`crm`, or a region's `crm_<region>`). */
  topicPrefix: string;
}

interface SinkTable { columns: Set<string>; primaryKey: string[] }
/** Rows to insert, or a TRUNCATE at a version: one table's writes, applied in queue order. */
interface Pending { rows: Row[]; truncate?: bigint; done: () => void; fail: (err: unknown) => void }

export class Sink {
  rows = 0;
  lastWriteAt: number | null = null;
  private sub: Subscription | null = null;
  private readonly tables = new Map<string, SinkTable>();
  private readonly queues = new Map<string, { pending: Pending[]; running: boolean }>();
  /** Per table, the newest TRUNCATE applied: rows below it are dead whenever they arrive. */
  private readonly truncated = new Map<string, bigint>();

  constructor(private readonly d: SinkDeps) {}

  async start(tables: readonly string[]): Promise<void> {
    this.sub = await this.d.bus.subscribe({
      group: this.d.group,
      topics: tables.map((t) => cdcTopic(t, this.d.topicPrefix)),
      maxBatchSize: this.d.batchMax,
      retry: { maximumAttempts: Number.MAX_SAFE_INTEGER, initialIntervalMs: 200, backoffCoefficient: 2, maximumIntervalMs: 30_000 },
      handler: (messages) => this.handle(messages as BusMessage<CdcEnvelope>[]),
    });
  }

  async stop(): Promise<void> {
    await this.sub?.stop();
    this.sub = null;
  }

  private async table(name: string, refresh = false): Promise<SinkTable> {
    const known = this.tables.get(name);
    if (known && !refresh) return known;
    const [columns, states, truncated] = await Promise.all([this.d.replica.columns(name), this.d.replica.states(), this.d.replica.truncatedBelow(name)]);
    if (truncated > (this.truncated.get(name) ?? 0n)) this.truncated.set(name, truncated);
    const st = states.get(name);
    if (!st || columns.size === 0) throw new CdcError(`no replica for ${name} yet`);
    const t = { columns: new Set(columns.keys()), primaryKey: st.primaryKey };
    this.tables.set(name, t);
    return t;
  }

  private async handle(messages: BusMessage<CdcEnvelope>[]): Promise<void> {
    const name = messages[0]!.topic.slice(cdcTopic('', this.d.topicPrefix).length);
    let t = await this.table(name);
    let rows: Row[] = [];
    let maxLsn = 0n;
    let oldestCommitMs = Infinity;
    for (const m of messages) {
      const env = m.value;
      const lsn = BigInt(env.source.lsn);
      if (lsn > maxLsn) maxLsn = lsn;
      if (env.source.ts_ms < oldestCommitMs) oldestCommitMs = env.source.ts_ms;
      const _version = versionOf(lsn, Number(m.headers[SEQ_HEADER] ?? 0)).toString();
      if (env.op === 't') {
        await this.enqueue(name, rows);
        rows = [];
        await this.enqueue(name, [], BigInt(_version));
      } else if (env.op === 'd') {
        const row: Row = { _version, _deleted: 1 };
        for (const k of t.primaryKey) row[k] = env.before![k];
        rows.push(row);
      } else {
        const after = env.after!;
        // A column the capture has just added: learn it (absent columns get their default).
        if (Object.keys(after).some((k) => !t.columns.has(k))) t = await this.table(name, true);
        const row: Row = { _version, _deleted: 0 };
        for (const k in after) if (t.columns.has(k)) row[k] = after[k];
        rows.push(row);
      }
    }
    await this.enqueue(name, rows);
    this.d.events({ type: 'sunk', table: name, rows: messages.length, lsn: formatLsn(maxLsn), oldestCommitMs });
  }

  /** Queues rows (or a TRUNCATE) for the table's next write and resolves once it is done. */
  private enqueue(name: string, rows: Row[], truncate?: bigint): Promise<void> {
    if (rows.length === 0 && truncate === undefined) return Promise.resolve();
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = { pending: [], running: false }));
    const queue = q;
    const done = new Promise<void>((resolve, reject) => queue.pending.push({ rows, truncate, done: resolve, fail: reject }));
    if (!queue.running) void this.drain(name, queue);
    return done;
  }

  /**
   * Writes queued rows in as few inserts as possible; a TRUNCATE is applied in its place in the queue:
   * recorded first (so rows below it that come later, from any partition, are dropped), then every
   * row below it is tombstoned.
   */
  private async drain(name: string, q: { pending: Pending[]; running: boolean }): Promise<void> {
    q.running = true;
    while (q.pending.length) {
      const cut = q.pending.findIndex((p) => p.truncate !== undefined);
      const group = q.pending.splice(0, cut === 0 ? 1 : cut < 0 ? q.pending.length : cut);
      try {
        const truncate = group[0]!.truncate;
        if (truncate !== undefined) await this.truncate(name, truncate);
        else await this.insert(name, group.flatMap((p) => p.rows));
        for (const p of group) p.done();
      } catch (err) {
        this.tables.delete(name); // the table may have changed under us
        this.d.log.warn('cdc: writing to the replica failed; the bus retries the batch', { table: name, err: errorText(err) });
        for (const p of group) p.fail(err);
      }
    }
    q.running = false;
  }

  private async truncate(name: string, version: bigint): Promise<void> {
    const t = await this.table(name);
    await this.d.replica.recordTruncate(name, version);
    if (version > (this.truncated.get(name) ?? 0n)) this.truncated.set(name, version);
    await this.d.replica.tombstoneBelow(name, t.primaryKey, version);
  }

  private async insert(name: string, all: Row[]): Promise<void> {
    const below = this.truncated.get(name);
    const rows = below === undefined ? all : all.filter((r) => BigInt(r._version as string) >= below);
    if (rows.length === 0) return;
    const stop = this.d.metrics.sinkInsertSeconds.startTimer();
    await this.d.replica.insert(name, rows);
    stop();
    this.rows += rows.length;
    this.lastWriteAt = Date.now();
    this.d.metrics.sinkRows.inc({ table: name }, rows.length);
  }
}
