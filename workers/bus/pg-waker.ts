/**
 * LISTEN/NOTIFY wake-ups for the PostgreSQL log, so idle consumers sleep instead of polling. One
 * listening connection per bus (postgres.js opens it and re-listens after a reconnect); payloads are
 * keys (`topicId:partition`, a group id). A sequence number per key closes the race between "fetch
 * found nothing" and "start waiting": a waiter whose key moved since its fetch returns at once.
 * {@link Waker.wakeAll} moves every key's number, also of keys nobody waits on right now.
 */
import type postgres from 'postgres';

export class Waker {
  private readonly seqs = new Map<string, number>();
  /** Added to every key's number: a reconnect's missed notifications concern every key. */
  private epoch = 0;
  private readonly waiters = new Map<string, Set<() => void>>();
  private listening?: { unlisten(): Promise<void> };

  private constructor() {}

  /** Starts listening on `channel`; resolves once LISTEN is in place. */
  static async listen(sql: postgres.Sql, channel: string): Promise<Waker> {
    const waker = new Waker();
    // onlisten runs again after a reconnect: notifications sent meanwhile are lost, so wake everyone.
    waker.listening = await sql.listen(channel, (key) => waker.wake(key), () => waker.wakeAll());
    return waker;
  }

  seq(key: string): number {
    return this.epoch + (this.seqs.get(key) ?? 0);
  }

  wake(key: string): void {
    this.seqs.set(key, (this.seqs.get(key) ?? 0) + 1);
    this.resolve(key);
  }

  wakeAll(): void {
    this.epoch++;
    for (const key of [...this.waiters.keys()]) this.resolve(key);
  }

  private resolve(key: string): void {
    const set = this.waiters.get(key);
    if (set) for (const done of [...set]) done();
  }

  /** Resolves when `key` is woken after `since` (its {@link seq} before the fetch), on timeout, or on abort. */
  wait(key: string, since: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.seq(key) !== since || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        set!.delete(done);
        if (set!.size === 0) this.waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  async close(): Promise<void> {
    this.wakeAll();
    await this.listening?.unlisten().catch(() => {});
  }
}
