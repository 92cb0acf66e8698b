/**
 * The capture: holds the slot, turns each committed transaction into change events on the bus, and
 * acknowledges the slot only up to what the sink has made durable (acks.ts). Sessions end on any
 * error and the next one replays from the slot's confirmed position: nothing is skipped, and what is
 * published twice is harmless because the replica keeps one row per key and version.
 *
 * State: `starting` → `streaming` ⇄ `reconnecting`, or `standby` while another process holds the
 * slot (it takes over when that process goes away) → `stopped`.
 *
 * Signals (signals.ts) are acted on at their commit, before it can be acknowledged. A TRUNCATE waits
 * until the sink has everything published before it (a barrier) so that, when the sink tombstones
 * every row below the truncate's version, no older row of another partition can land after it.
 */
import type { Pgoutput } from 'pg-logical-replication';
import { cdcTopic } from '../../shared/bus/topics.ts';
import type { CdcStatus } from '../../shared/ports/cdc.ts';
import { AckTracker } from './acks.ts';
import { publishChange, publishTruncate, type OpenTx } from './changes.ts';
import { LagClock } from './lag.ts';
import { formatLsn, parseLsn } from './lsn.ts';
import type { CdcParts } from './parts.ts';
import { Publisher } from './publisher.ts';
import { ReplicationStream } from './replication.ts';
import { backoff, errorText, sleep, type TableRuntime } from './runtime.ts';
import { applyRelation } from './schema-drift.ts';
import { setUp } from './setup.ts';
import { applySignal, resumeLoads } from './signals.ts';
import { HEARTBEAT_PREFIX, SIGNAL_PREFIX, type Signal } from './source.ts';

const decoder = new TextDecoder();

export class Capture {
  state: CdcStatus['state'] = 'starting';
  tables = new Map<string, TableRuntime>();
  lastError: string | null = null;
  receivedLsn: bigint | null = null;
  publishedLsn: bigint | null = null;
  transactions = 0;
  changes = 0;
  readonly acks: AckTracker;
  readonly lag = new LagClock();
  private byOid = new Map<number, TableRuntime>();
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  /** Recently received transactions (xid, when): a snapshot point waits until they are visible. */
  private recent: { xid: number; at: number }[] = [];

  constructor(private readonly p: CdcParts) {
    this.acks = new AckTracker(p.bus, p.options.sinkGroup, () => [...this.tables.values()].map((t) => cdcTopic(t.state.table, p.options.topicPrefix)));
  }

  async start(): Promise<void> {
    this.adopt(await setUp(this.p));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    this.state = 'stopped';
  }

  private adopt(tables: Map<string, TableRuntime>): void {
    this.tables = tables;
    this.byOid = new Map([...tables.values()].map((t) => [t.relationOid, t]));
    for (const t of tables.values()) this.p.metrics.quarantined.set({ table: t.state.table }, t.state.status === 'quarantined' ? 1 : 0);
  }

  /** Age of the oldest committed change not yet in ClickHouse, in seconds (0 when not capturing here). */
  lagSeconds(now = Date.now()): number {
    if (this.state === 'standby' || this.state === 'stopped') return 0;
    return this.lag.seconds(this.acks.acked?.lsn ?? -1n, now);
  }

  private async run(): Promise<void> {
    const { source, log, metrics } = this.p;
    const signal = this.stopping.signal;
    for (let attempt = 0; !signal.aborted; ) {
      try {
        const slot = await source.slot();
        if (!slot) {
          log.warn('cdc: the replication slot disappeared; setting up again (tables will be reloaded)');
          this.adopt(await setUp(this.p));
          continue;
        }
        if (slot.active) {
          if (this.state !== 'standby') log.notice('cdc: the slot is held by another process; standing by', { pid: slot.activePid });
          this.state = 'standby';
          await sleep(1_000, signal);
          continue;
        }
        await this.session(parseLsn(slot.confirmedFlushLsn ?? '0/0'));
        attempt = 0;
      } catch (err) {
        if (signal.aborted) break;
        attempt++;
        this.lastError = errorText(err);
        this.state = /is active for PID/i.test(this.lastError) ? 'standby' : 'reconnecting';
        metrics.reconnects.inc();
        log.warn('cdc: replication session ended; replaying from the slot', { err: this.lastError, attempt });
        this.p.events({ type: 'error', where: 'capture', message: this.lastError });
        await sleep(backoff(attempt), signal);
      }
    }
  }

  private async session(confirmed: bigint): Promise<void> {
    const { options, log } = this.p;
    const stream = new ReplicationStream({ url: this.p.crmUrl, slot: options.slot, publication: options.publication, ackBase: confirmed - 1n });
    const publisher = new Publisher(this.p.bus, {
      batchMax: options.batchMax, lingerMs: 2,
      onPublished: (tx, events) => {
        this.publishedLsn = tx.lsn;
        this.p.events({ type: 'published', lsn: formatLsn(tx.lsn), events, commitTimeMs: tx.commitTimeMs });
      },
    });
    this.acks.reset();
    const sessionEnd = new AbortController();
    const ended = () => sessionEnd.signal.aborted || this.stopping.signal.aborted;
    const endSession = () => sessionEnd.abort();
    this.stopping.signal.addEventListener('abort', endSession, { once: true });
    const barrier = async () => { await publisher.drain(); await this.acks.waitSunk(sessionEnd.signal); };
    let tx: OpenTx | null = null;
    try {
      await stream.run({
        onStart: () => {
          this.state = 'streaming';
          this.lastError = null;
          log.notice('cdc: streaming', { slot: options.slot, from: formatLsn(confirmed) });
          this.p.events({ type: 'streaming', from: formatLsn(confirmed) });
          void this.every(options.ackIntervalMs, ended, () => this.acknowledge(stream, publisher));
          void this.every(options.heartbeatMs, ended, () => this.heartbeat());
          void resumeLoads(this.p, this.tables.values()).catch((err) => stream.fail(err));
        },
        onMessage: async (msg) => {
          if (publisher.failed) throw publisher.failed;
          switch (msg.tag) {
            case 'begin':
              tx = {
                lsn: parseLsn(msg.commitLsn!), xid: msg.xid, commitTimeMs: Number(BigInt(msg.commitTime as bigint) / 1000n),
                db: this.p.db, seq: 0, builders: new Map(), signals: [] as Signal[], heartbeat: null,
              };
              break;
            case 'relation': {
              const rt = msg.schema === 'public' ? this.tables.get(msg.name) : undefined;
              if (!rt) break;
              this.byOid.set(msg.relationOid, rt);
              rt.relationOid = msg.relationOid;
              await applyRelation(msg, tx?.lsn ?? this.receivedLsn ?? 0n, rt, this.p);
              break;
            }
            case 'insert': case 'update': case 'delete':
              this.changes += await publishChange(tx!, msg, this.byOid.get(msg.relation.relationOid), publisher, this.p);
              break;
            case 'truncate':
              this.changes += await publishTruncate(tx!, msg, (oid) => this.byOid.get(oid), publisher, barrier, this.p);
              break;
            case 'message':
              if (!msg.transactional || !tx) break;
              if (msg.prefix === HEARTBEAT_PREFIX) tx.heartbeat = Number(decoder.decode(msg.content));
              else if (msg.prefix === SIGNAL_PREFIX) tx.signals.push(JSON.parse(decoder.decode(msg.content)) as Signal);
              break;
            case 'commit': await this.commit(tx!, publisher, barrier); tx = null; break;
          }
          await publisher.ready();
        },
      }, sessionEnd.signal);
    } finally {
      sessionEnd.abort();
      this.stopping.signal.removeEventListener('abort', endSession);
      publisher.close();
    }
  }

  /** Runs `fn` every `ms` until `done()`, never two at once; failures are logged and retried next time. */
  private async every(ms: number, done: () => boolean, fn: () => Promise<void>): Promise<void> {
    while (!done()) {
      await sleep(ms, this.stopping.signal);
      if (done()) return;
      try {
        await fn();
      } catch (err) {
        this.p.log.warn('cdc: periodic task failed', { err: errorText(err) });
      }
    }
  }

  /** Acts on the transaction's signals (their state is durable before it can be acknowledged), then ends it. */
  private async commit(tx: OpenTx, publisher: Publisher, barrier: () => Promise<void>): Promise<void> {
    const now = Date.now();
    this.recent.push({ xid: tx.xid, at: now });
    while (this.recent.length && (this.recent[0]!.at < now - 5_000 || this.recent.length > 10_000)) this.recent.shift();
    for (const s of tx.signals) {
      await applySignal(s, tx.lsn, {
        p: this.p,
        table: (name) => this.tables.get(name),
        barrier,
        recentXids: () => this.recent.map((r) => r.xid),
        rebind: (oid, rt) => { rt.relationOid = oid; this.byOid.set(oid, rt); },
      });
    }
    const mark = { lsn: tx.lsn, commitTimeMs: tx.commitTimeMs };
    publisher.endTx(mark);
    this.lag.received(mark, tx.heartbeat, now);
    this.receivedLsn = tx.lsn;
    this.transactions++;
    this.p.metrics.transactions.inc();
  }

  private async acknowledge(stream: ReplicationStream, publisher: Publisher): Promise<void> {
    const acked = await this.acks.tick(publisher.published);
    if (!acked) return;
    stream.acknowledge(acked.lsn);
    this.p.metrics.acknowledgedLsn.set(Number(acked.lsn));
    this.p.events({ type: 'acknowledged', lsn: formatLsn(acked.lsn) });
  }

  private async heartbeat(): Promise<void> {
    const at = Date.now();
    this.lag.heartbeatSent(at);
    await this.p.source.heartbeat(at);
  }

  /** Finishes a snapshot job's bookkeeping (snapshots.ts calls it). */
  async completeSnapshot(table: string, floor: bigint, rows: number): Promise<void> {
    const rt = this.tables.get(table);
    if (!rt || rt.state.floor !== floor || rt.state.status !== 'snapshotting') return;
    rt.state = { ...rt.state, status: 'streaming', snapshotRows: rows };
    await this.p.replica.save(rt.state);
  }
}
