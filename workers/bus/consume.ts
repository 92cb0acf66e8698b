/**
 * What both adapters do with a fetched batch of one partition: decode, hand to the handler, retry,
 * dead-letter, and say what to commit. The adapter supplies `commit`, which must store the dead
 * letters and the new offset (atomically where it can) before resolving.
 *
 * A failed batch is split: its messages are redelivered one at a time, each under the retry policy,
 * so a poison message is isolated without spending its neighbours' attempts, and a transient outage
 * is ridden out with backoff. Schema failures are deterministic and go to the DLQ at once.
 */
import type { BatchHandler, BusHeaders, BusMessage, RetryPolicy } from '../../shared/ports/bus.ts';
import { DLQ_HEADERS, MESSAGE_ID_HEADER, describeError, dlqTopicOf, type DeadLetterReason } from '../../shared/bus/dlq.ts';
import { backoffMs } from '../../shared/bus/retry.ts';

/** The bus itself failed (not a handler, not a schema): storage, a broker, or misuse. */
export class BusError extends Error {
  override readonly name: string = 'BusError';
}

/** A message as stored: the value is still text. */
export type RawMessage = BusMessage<string>;

export interface DeadLetter { topic: string; key: string; value: string; headers: BusHeaders }

export interface BatchRun<V> {
  group: string;
  /** One partition's messages in offset order. */
  messages: readonly RawMessage[];
  decode(topic: string, text: string): unknown;
  handler: BatchHandler<V>;
  retry: RetryPolicy;
  /** Stop or revoke: no further attempts start; a handler that resolves is still committed. */
  signal: AbortSignal;
  /** Durably record `deadLetters` and that everything up to and including `upTo` is done. */
  commit(upTo: RawMessage, deadLetters: DeadLetter[]): Promise<void>;
  onFailure?(err: unknown, info: { attempt: number; messages: number; offset: string }): void;
}

/** `topic/partition/offset`, or the producer's `message-id`. */
export function messageIdOf(m: Pick<RawMessage, 'topic' | 'partition' | 'offset' | 'headers'>): string {
  return m.headers[MESSAGE_ID_HEADER] ?? `${m.topic}/${m.partition}/${m.offset}`;
}

export function deadLetter(m: RawMessage, group: string, reason: DeadLetterReason, err: unknown, attempts: number): DeadLetter {
  const { name, message } = describeError(err);
  return {
    topic: dlqTopicOf(m.topic),
    key: m.key,
    value: m.value,
    headers: {
      ...m.headers,
      [MESSAGE_ID_HEADER]: m.id,
      [DLQ_HEADERS.reason]: reason,
      [DLQ_HEADERS.error]: message,
      [DLQ_HEADERS.errorName]: name,
      [DLQ_HEADERS.topic]: m.topic,
      [DLQ_HEADERS.partition]: String(m.partition),
      [DLQ_HEADERS.offset]: m.offset,
      [DLQ_HEADERS.group]: group,
      [DLQ_HEADERS.attempts]: String(attempts),
      [DLQ_HEADERS.at]: new Date().toISOString(),
    },
  };
}

/** Resolves after `ms`, or early (with false) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); resolve(ok); };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

type Entry<V> = { raw: RawMessage; msg?: BusMessage<V>; bad?: DeadLetter };

/** Runs one batch to completion; resolves `false` when stopped before everything was committed. */
export async function processBatch<V>(run: BatchRun<V>): Promise<boolean> {
  const { group, handler, signal } = run;
  const entries: Entry<V>[] = run.messages.map((raw) => {
    try {
      return { raw, msg: { ...raw, value: run.decode(raw.topic, raw.value) as V } };
    } catch (err) {
      return { raw, bad: deadLetter(raw, group, 'schema', err, 0) };
    }
  });
  const last = run.messages[run.messages.length - 1];
  if (!last) return true;
  const good = entries.flatMap((e) => (e.msg ? [e.msg] : []));
  const allBad = entries.flatMap((e) => (e.bad ? [e.bad] : []));
  if (good.length === 0) {
    await run.commit(last, allBad);
    return true;
  }
  try {
    await handler(good, { group, attempt: 1, signal });
    await run.commit(last, allBad);
    return true;
  } catch (err) {
    run.onFailure?.(err, { attempt: 1, messages: good.length, offset: good[0]!.offset });
    return isolate(run, entries, good.length === 1 ? 1 : 0, err);
  }
}

/** One message at a time; `spent` attempts were already used by a failed batch of one. */
async function isolate<V>(run: BatchRun<V>, entries: Entry<V>[], spent: number, lastError: unknown): Promise<boolean> {
  const { group, handler, retry, signal } = run;
  let pending: DeadLetter[] = [];
  let failedBefore = true; // the batch just failed: wait before the next attempt too
  for (const entry of entries) {
    if (entry.bad) { pending.push(entry.bad); continue; }
    let attempt = spent;
    let error = lastError;
    let ok = false;
    while (!ok && attempt < retry.maximumAttempts) {
      if (failedBefore && !(await sleep(backoffMs(retry, Math.max(1, attempt)), signal))) return false;
      if (signal.aborted) return false;
      attempt++;
      try {
        await handler([entry.msg!], { group, attempt, signal });
        ok = true;
      } catch (err) {
        error = err;
        run.onFailure?.(err, { attempt, messages: 1, offset: entry.raw.offset });
      }
      failedBefore = !ok;
    }
    if (!ok) pending.push(deadLetter(entry.raw, group, 'handler', error, attempt));
    await run.commit(entry.raw, pending);
    pending = [];
    spent = 0;
  }
  const last = entries[entries.length - 1]!;
  if (pending.length) await run.commit(last.raw, pending);
  return true;
}
