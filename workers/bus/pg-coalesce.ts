/**
 * Group calls for the PostgreSQL log. Every owned partition runs its own fetch → handle → commit
 * loop, so a consumer of a few 12-partition topics at moderate load issues many tiny fetches and
 * offset commits, each a round trip plus parsing and planning on both sides. A {@link Coalescer}
 * merges the requests made in the same turn of the event loop, or while earlier merged calls are in
 * flight, into one call (one statement), and hands each caller its own result. A lone request waits
 * only for the end of the current turn.
 *
 * Isolation is kept: when a merged call fails, each request in it is run again on its own, so one
 * request that cannot succeed (a bad offset, a broken partition) never fails or holds up the others.
 */

export interface CoalescerOptions<Req> {
  /** Merged calls in flight at once (default 1). */
  concurrency?: number;
  /** What a request counts towards {@link maxWeight} (default 1: requests are counted). */
  weight?: (req: Req) => number;
  /** Most weight per merged call, e.g. rows a fetch may return (default 256); a lone request always goes. */
  maxWeight?: number;
}

interface Waiting<Req, Res> { req: Req; resolve(res: Res): void; reject(err: unknown): void }

export class Coalescer<Req, Res> {
  private readonly queue: Waiting<Req, Res>[] = [];
  private readonly concurrency: number;
  private readonly weight: (req: Req) => number;
  private readonly maxWeight: number;
  private inFlight = 0;
  private scheduled = false;

  /** `run` answers a batch of requests with one result per request, in order. */
  constructor(private readonly run: (reqs: Req[]) => Promise<Res[]>, opts: CoalescerOptions<Req> = {}) {
    this.concurrency = opts.concurrency ?? 1;
    this.weight = opts.weight ?? (() => 1);
    this.maxWeight = opts.maxWeight ?? 256;
  }

  call(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      // The end of this turn: partition loops woken by one socket read all get to ask first.
      if (!this.scheduled && this.inFlight < this.concurrency) {
        this.scheduled = true;
        setImmediate(() => { this.scheduled = false; this.pump(); });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length) {
      const batch = [this.queue.shift()!];
      let weight = this.weight(batch[0]!.req);
      while (this.queue.length && weight + this.weight(this.queue[0]!.req) <= this.maxWeight) {
        weight += this.weight(this.queue[0]!.req);
        batch.push(this.queue.shift()!);
      }
      this.inFlight++;
      void this.settle(batch).finally(() => { this.inFlight--; this.pump(); });
    }
  }

  private async settle(batch: Waiting<Req, Res>[]): Promise<void> {
    try {
      const results = await this.run(batch.map((w) => w.req));
      batch.forEach((w, i) => w.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      for (const w of batch) await this.run([w.req]).then(([res]) => w.resolve(res!), w.reject);
    }
  }
}
