/**
 * One streaming session on the permanent slot, over `pg-logical-replication`'s pgoutput client, with
 * its traps handled here:
 *
 * - Acknowledgement is manual (`auto: false`, no timer of the library's). `acknowledge(lsn)` reports
 *   lsn + 1 as flushed, and PostgreSQL skips, on the next start, every transaction whose commit record
 *   begins before the confirmed position. So we acknowledge a transaction's commit LSN (the start of
 *   its commit record): that transaction is skipped, the next one (whose commit record starts after
 *   it) is not. Acknowledging the commit's end LSN would skip a transaction committed right behind it.
 * - Keepalives are answered with the acknowledged position, never with what was merely received, and
 *   a status is also sent on a timer: with flow control the socket is paused while a handler waits
 *   (say, for the sink), and the server must still hear from us within `wal_sender_timeout`.
 * - Each session starts at `0/0`, which means "at the slot's confirmed position"; a later start LSN
 *   would make the server skip what lies in between.
 * - Values are decoded from pgoutput's text on a session pinned to UTC / ISO (pg-types.ts), not by
 *   node-postgres's global type parsers.
 */
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { formatLsn } from './lsn.ts';
import { decoderFor } from './pg-types.ts';

/** Decodes tuple values with our own per-type decoders: set on each relation before its rows are parsed. */
class CanonicalPgoutput extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const msg = super.parse(buffer);
    if (msg.tag === 'relation') for (const c of msg.columns) c.parser = decoderFor(c.typeOid, c.typeMod);
    return msg;
  }
}

export interface StreamOptions {
  url: string;
  slot: string;
  publication: string;
  /** The slot's confirmed position minus one: what a status reports until something newer is acknowledged. */
  ackBase: bigint;
  statusIntervalMs?: number;
}

export interface StreamHandlers {
  /** Called once the server streams. */
  onStart(): void;
  /** Messages one at a time, in order; the stream pauses while the promise is pending. */
  onMessage(msg: Pgoutput.Message): Promise<void> | void;
}

export class ReplicationStream {
  private acked: bigint;
  private service: LogicalReplicationService | null = null;
  private failWith: ((err: Error) => void) | null = null;

  constructor(private readonly opts: StreamOptions) {
    this.acked = opts.ackBase;
  }

  /** Reports everything up to and including the transaction committed at `commitLsn` as done. */
  acknowledge(commitLsn: bigint): void {
    if (commitLsn <= this.acked) return;
    this.acked = commitLsn;
    this.sendStatus();
  }

  /** Ends the session with an error (e.g. a publish failed); `run` rejects with it. */
  fail(err: Error): void {
    this.failWith?.(err);
  }

  private sendStatus(): void {
    if (this.acked < 0n) return;
    void this.service?.acknowledge(formatLsn(this.acked)).catch(() => {});
  }

  /** Streams until `signal` aborts (resolves) or the session fails (rejects). */
  async run(handlers: StreamHandlers, signal: AbortSignal): Promise<void> {
    const service = new LogicalReplicationService(
      {
        connectionString: this.opts.url,
        application_name: 'bionicpro-cdc-stream',
        options: '-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1',
      },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    this.service = service;
    let failed = false;
    const ended = new Promise<void>((resolve, reject) => {
      this.failWith = (err) => { failed = true; reject(err); };
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    service.on('error', (err: Error) => this.failWith?.(err));
    service.on('start', () => handlers.onStart());
    service.on('heartbeat', (_lsn: string, _ts: number, respond: boolean) => { if (respond) this.sendStatus(); });
    service.on('data', async (_lsn: string, msg: Pgoutput.Message) => {
      if (failed || signal.aborted) return;
      try {
        await handlers.onMessage(msg);
      } catch (err) {
        // The library would go on with the next message: end the session instead, it replays from the slot.
        this.failWith?.(err instanceof Error ? err : new Error(String(err)));
      }
    });
    const timer = setInterval(() => this.sendStatus(), this.opts.statusIntervalMs ?? 10_000);
    const plugin = new CanonicalPgoutput({ protoVersion: 1, publicationNames: [this.opts.publication], messages: true });
    const streaming = service.subscribe(plugin, this.opts.slot, '0/00000000').then(
      () => { if (!signal.aborted) this.failWith?.(new Error('the replication stream ended')); },
      (err: unknown) => this.failWith?.(err instanceof Error ? err : new Error(String(err))),
    );
    try {
      await ended;
    } finally {
      clearInterval(timer);
      this.failWith = null;
      this.service = null;
      await service.destroy().catch(() => {});
      await streaming;
    }
  }
}
