/**
 * Helpers for the bus suites: a test topic family with its codec, and a collector that lets a test
 * await deliveries instead of sleeping.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { defineCodec } from '../../shared/bus/codec.ts';
import type { BusMessage } from '../../shared/ports/bus.ts';

export interface TestValue { seq: number; tag?: string }
export type TestTopics = { [topic: `test.${string}`]: TestValue };

export const testCodec = defineCodec<TestTopics>([
  { topic: /^test\./, schema: z.object({ seq: z.number().int(), tag: z.string().optional() }) },
]);
/** Accepts anything: stands in for an old or foreign producer whose values no longer fit. */
export const permissiveCodec = defineCodec<TestTopics>([{ topic: /^test\./, schema: z.unknown() }]);

export const newTopic = (what: string) => `test.${what}.${randomUUID().slice(0, 8)}` as const;
export const newGroup = (what: string) => `${what}-${randomUUID().slice(0, 8)}`;

/** Collects deliveries; `until` resolves once enough arrived and fails loudly if they never do. */
export class Collector<V = TestValue> {
  readonly messages: BusMessage<V>[] = [];
  readonly batches: BusMessage<V>[][] = [];
  private waiters: { test: () => boolean; resolve: () => void }[] = [];

  add(batch: BusMessage<V>[]): void {
    this.batches.push(batch);
    this.messages.push(...batch);
    this.waiters = this.waiters.filter((w) => (w.test() ? (w.resolve(), false) : true));
  }

  /** The handler to pass to `subscribe`. */
  readonly handler = async (batch: BusMessage<V>[]) => this.add(batch);

  until(count: number, timeoutMs = 30_000): Promise<void> {
    return this.when(() => this.messages.length >= count, `${count} messages (have ${this.messages.length})`, timeoutMs);
  }

  when(test: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      this.waiters.push({ test, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }
}

/** Polls `probe` until true (for state with no event to await, such as a group's assignment). */
export async function eventually(probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A promise with its resolver, for gates inside handlers. */
export function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
