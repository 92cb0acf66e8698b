/**
 * Batches change events into large bus publishes (the bus's throughput grows with batch size) with
 * one flush in flight at a time: while it is out, new events gather for the next one (group commit),
 * so per-key order holds across flushes and the linger only applies when the pipeline is idle.
 *
 * `published` is the last transaction all of whose events are durable on the bus: a flush started
 * in the middle of a transaction covers only the transactions that ended before it.
 */
import type { BionicTopics, CdcTopic } from '../../shared/bus/topics.ts';
import type { Bus } from '../../shared/ports/bus.ts';
import type { CdcMessage } from './envelopes.ts';

/** A transaction by its commit position and time. */
export interface TxMark { lsn: bigint; commitTimeMs: number }

export interface PublisherOptions {
  /** Most events per publish call; a flush starts at once when this many are waiting. */
  batchMax: number;
  /** How long a first event waits for company when nothing is in flight. */
  lingerMs: number;
  onPublished?: (tx: TxMark, events: number) => void;
}

export class Publisher {
  private buffers = new Map<string, CdcMessage[]>();
  private buffered = 0;
  private ended: TxMark | null = null;
  private inflight: Promise<void> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failure: Error | null = null;
  private closed = false;
  published: TxMark | null = null;

  constructor(private readonly bus: Bus<BionicTopics, any>, private readonly opts: PublisherOptions) {}

  add(topic: string, messages: readonly CdcMessage[]): void {
    if (messages.length === 0) return;
    let buf = this.buffers.get(topic);
    if (!buf) this.buffers.set(topic, (buf = []));
    for (const m of messages) buf.push(m);
    this.buffered += messages.length;
    if (this.buffered >= this.opts.batchMax) this.kick();
    else if (!this.inflight && !this.timer) this.timer = setTimeout(() => this.kick(), this.opts.lingerMs);
  }

  /** Every event of `tx` has been added. */
  endTx(tx: TxMark): void {
    this.ended = tx;
    if (this.buffered === 0 && !this.inflight) this.advance(tx, 0);
  }

  /** Resolves when the caller may add more: waits while twice a batch is already waiting behind a flush. */
  async ready(): Promise<void> {
    while (this.buffered >= 2 * this.opts.batchMax && this.inflight) await this.inflight;
    this.check();
  }

  /** Publishes everything added so far and resolves when it is durable. */
  async drain(): Promise<void> {
    for (;;) {
      this.check();
      if (this.inflight) await this.inflight;
      else if (this.buffered > 0) this.kick();
      else return;
    }
  }

  /** Drops what is not yet published (a new session replays it from the slot). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.buffers.clear();
    this.buffered = 0;
  }

  get failed(): Error | null {
    return this.failure;
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }

  private advance(tx: TxMark, events: number): void {
    if (this.published && tx.lsn <= this.published.lsn) return;
    this.published = tx;
    this.opts.onPublished?.(tx, events);
  }

  private kick(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.inflight || this.closed || this.failure) return;
    const covered = this.ended;
    if (this.buffered === 0) {
      if (covered) this.advance(covered, 0);
      return;
    }
    const batch = this.buffers;
    const count = this.buffered;
    this.buffers = new Map();
    this.buffered = 0;
    this.inflight = this.publish(batch).then(
      () => {
        this.inflight = null;
        if (covered) this.advance(covered, count);
        if (!this.closed && (this.buffered > 0 || (this.ended && this.ended !== covered))) this.kick();
      },
      (err: unknown) => {
        this.inflight = null;
        this.failure = err instanceof Error ? err : new Error(String(err));
      },
    );
  }

  private async publish(batch: Map<string, CdcMessage[]>): Promise<void> {
    // Topics in parallel, each in order, in chunks the bus takes in one statement.
    await Promise.all([...batch].map(async ([topic, messages]) => {
      for (let i = 0; i < messages.length; i += this.opts.batchMax) {
        await this.bus.publish(topic as CdcTopic, messages.slice(i, i + this.opts.batchMax));
      }
    }));
  }
}
