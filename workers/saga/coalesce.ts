/**
 * Group commit for batch handlers. The bus calls a handler once per partition batch, and with many
 * partitions and modest load those batches are small — one transaction per one or two messages.
 * {@link coalescing} merges the batches that arrive while earlier ones are being handled into one
 * call (one transaction), so work per message falls as load rises, while a lone batch still goes
 * straight through without waiting.
 *
 * Order is kept: a partition hands over its next batch only after the previous one resolved, and a
 * saga's messages share a partition. Isolation is kept too: if a merged call fails, each batch in
 * it is retried on its own before any is rejected, so one bad message never spends the retry
 * attempts of its neighbours from other partitions.
 */
import type { BatchHandler, BusMessage, HandlerContext } from '../../shared/ports/bus.ts';

interface Waiting<V> { messages: BusMessage<V>[]; ctx: HandlerContext; resolve(): void; reject(err: unknown): void }

export interface CoalesceOptions {
  /** Merged calls in flight at once (default 2). */
  concurrency?: number;
  /** Most messages per merged call (default 1000). */
  maxMessages?: number;
}

export function coalescing<V>(handler: BatchHandler<V>, opts: CoalesceOptions = {}): BatchHandler<V> {
  const concurrency = opts.concurrency ?? 2;
  const maxMessages = opts.maxMessages ?? 1000;
  const queue: Waiting<V>[] = [];
  let inFlight = 0;

  async function run(group: Waiting<V>[]) {
    try {
      await handler(group.flatMap((w) => w.messages), group[0]!.ctx);
      for (const w of group) w.resolve();
    } catch (err) {
      if (group.length === 1) group[0]!.reject(err);
      else for (const w of group) await handler(w.messages, w.ctx).then(w.resolve, w.reject);
    }
  }

  function pump() {
    while (inFlight < concurrency && queue.length) {
      const group: Waiting<V>[] = [];
      let size = 0;
      while (queue.length && (group.length === 0 || size + queue[0]!.messages.length <= maxMessages)) {
        const w = queue.shift()!;
        size += w.messages.length;
        group.push(w);
      }
      inFlight++;
      void run(group).finally(() => { inFlight--; pump(); });
    }
  }

  return (messages, ctx) => new Promise<void>((resolve, reject) => {
    queue.push({ messages, ctx, resolve, reject });
    pump();
  });
}
