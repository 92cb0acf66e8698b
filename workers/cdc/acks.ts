/**
 * When may the slot move? Only once the sink has made durable everything up to that point.
 *
 * The sink's durable position is its consumer group's committed offsets: the bus commits an offset
 * only after the sink's ClickHouse insert returned. So after transaction T is published, the log end
 * offsets of every partition (read after that publish resolved) bound all of T's events; once the
 * group's committed offsets reach those ends everywhere, T and everything before it is in ClickHouse.
 * Each round records such a mark for the newest published transaction and acknowledges the newest
 * mark already reached: across tables and partitions, the minimum of what is still pending.
 */
import type { BionicTopics } from '../../shared/bus/topics.ts';
import type { Bus, PartitionLag } from '../../shared/ports/bus.ts';
import type { TxMark } from './publisher.ts';

interface Mark { tx: TxMark; ends: Map<string, bigint> }

const tp = (p: PartitionLag) => `${p.topic}\u0000${p.partition}`;

export class AckTracker {
  private marks: Mark[] = [];
  /** The newest transaction known to be durable in ClickHouse (this process's view). */
  acked: TxMark | null = null;

  constructor(private readonly bus: Bus<BionicTopics, any>, private readonly group: string, private readonly topics: () => string[]) {}

  /** Forgets marks of a session that ended (its successor republishes from the slot). */
  reset(): void {
    this.marks = [];
  }

  private async positions(): Promise<{ ends: Map<string, bigint>; done: Map<string, bigint> }> {
    const lag = await this.bus.lag(this.group, this.topics());
    const ends = new Map<string, bigint>();
    const done = new Map<string, bigint>();
    for (const p of lag) {
      const end = BigInt(p.endOffset);
      ends.set(tp(p), end);
      done.set(tp(p), end - BigInt(p.lag));
    }
    return { ends, done };
  }

  private static reached(ends: Map<string, bigint>, done: Map<string, bigint>): boolean {
    for (const [k, end] of ends) if ((done.get(k) ?? 0n) < end) return false;
    return true;
  }

  /** One round; `published` must have been read before the call. Returns a newly durable transaction. */
  async tick(published: TxMark | null): Promise<TxMark | null> {
    const { ends, done } = await this.positions();
    let newest: TxMark | null = null;
    while (this.marks.length && AckTracker.reached(this.marks[0]!.ends, done)) newest = this.marks.shift()!.tx;
    const last = this.marks.at(-1)?.tx ?? newest ?? this.acked;
    if (published && (!last || published.lsn > last.lsn)) {
      if (this.marks.length === 0 && AckTracker.reached(ends, done)) newest = published;
      else this.marks.push({ tx: published, ends });
    }
    if (newest && (!this.acked || newest.lsn > this.acked.lsn)) {
      this.acked = newest;
      return newest;
    }
    return null;
  }

  /** Resolves once the sink has made durable everything published so far (call after the publisher drained). */
  async waitSunk(signal: AbortSignal, pollMs = 20): Promise<void> {
    const { ends } = await this.positions();
    for (;;) {
      const { done } = await this.positions();
      if (AckTracker.reached(ends, done)) return;
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}
