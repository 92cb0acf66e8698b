/**
 * How far behind is ClickHouse? The age of the oldest change received but not yet acknowledged (one
 * transaction per 100 ms is remembered, which bounds memory during a long outage), and of the oldest
 * heartbeat written but not yet through: that one also grows when nothing arrives at all, because the
 * capture or the source is stuck.
 */
import type { TxMark } from './publisher.ts';

const BUCKET_MS = 100;
const MAX_HEARTBEATS = 1_000;

export class LagClock {
  private backlog: TxMark[] = [];
  private sent: number[] = [];
  private heartbeatTxs: { lsn: bigint; sentAt: number }[] = [];
  /** When the last heartbeat came back through the slot (epoch ms). */
  lastHeartbeatAt: number | null = null;

  heartbeatSent(at: number): void {
    this.sent.push(at);
    if (this.sent.length > MAX_HEARTBEATS) this.sent.shift();
  }

  /** A transaction was received; `heartbeat` is the send time it carried, if it was one. */
  received(tx: TxMark, heartbeat: number | null, now = Date.now()): void {
    if (heartbeat !== null) {
      this.heartbeatTxs.push({ lsn: tx.lsn, sentAt: heartbeat });
      this.lastHeartbeatAt = now;
    }
    const last = this.backlog.at(-1);
    if (!last || tx.commitTimeMs - last.commitTimeMs >= BUCKET_MS) this.backlog.push(tx);
  }

  /** Seconds since the oldest change or heartbeat not covered by `acked` (a commit LSN). */
  seconds(acked: bigint, now = Date.now()): number {
    while (this.backlog.length && this.backlog[0]!.lsn <= acked) this.backlog.shift();
    while (this.heartbeatTxs.length && this.heartbeatTxs[0]!.lsn <= acked) {
      const through = this.heartbeatTxs.shift()!.sentAt;
      this.sent = this.sent.filter((t) => t > through);
    }
    const oldest = Math.min(this.backlog[0]?.commitTimeMs ?? now, this.sent[0] ?? now);
    return Math.max(0, (now - oldest) / 1000);
  }
}
