import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineCodec } from '../../shared/bus/codec.ts';
import { DLQ_HEADERS } from '../../shared/bus/dlq.ts';
import { backoffMs, DEFAULT_RETRY_POLICY, resolveRetryPolicy } from '../../shared/bus/retry.ts';
import type { BusMessage } from '../../shared/ports/bus.ts';
import { processBatch, type DeadLetter, type RawMessage } from './consume.ts';

const codec = defineCodec([{ topic: 't', schema: z.object({ n: z.number() }) }]);
const raw = (offset: number, value: unknown, headers: Record<string, string> = {}): RawMessage => ({
  topic: 't', partition: 2, offset: String(offset), key: `k${offset}`, value: typeof value === 'string' ? value : JSON.stringify(value),
  headers, timestamp: new Date(0), id: `t/2/${offset}`,
});
const retry = resolveRetryPolicy({ maximumAttempts: 3, initialIntervalMs: 1, maximumIntervalMs: 1 });

function harness(messages: RawMessage[], fail: (batch: BusMessage<{ n: number }>[], attempt: number) => boolean, opts: { signal?: AbortSignal; maximumAttempts?: number } = {}) {
  const calls: { ns: number[]; attempt: number }[] = [];
  const commits: { upTo: string; dead: DeadLetter[] }[] = [];
  const run = processBatch<{ n: number }>({
    group: 'g', messages, decode: codec.decode, retry: { ...retry, maximumAttempts: opts.maximumAttempts ?? 3 },
    signal: opts.signal ?? new AbortController().signal,
    handler: async (batch, ctx) => {
      calls.push({ ns: batch.map((m) => m.value.n), attempt: ctx.attempt });
      if (fail(batch, ctx.attempt)) throw new TypeError(`failed on ${batch.map((m) => m.value.n)}`);
    },
    commit: async (upTo, dead) => { commits.push({ upTo: upTo.offset, dead }); },
  });
  return { run, calls, commits };
}

describe('processBatch', () => {
  it('hands the decoded batch over once and commits up to its last message', async () => {
    const h = harness([raw(5, { n: 1 }), raw(6, { n: 2 })], () => false);
    expect(await h.run).toBe(true);
    expect(h.calls).toEqual([{ ns: [1, 2], attempt: 1 }]);
    expect(h.commits).toEqual([{ upTo: '6', dead: [] }]);
  });

  it('splits a failed batch, retries the poison message alone, dead-letters it, and keeps its neighbours', async () => {
    const h = harness([raw(0, { n: 0 }), raw(1, { n: 1 }, { 'x-a': 'b' }), raw(2, { n: 2 })], (b) => b.some((m) => m.value.n === 1));
    expect(await h.run).toBe(true);
    expect(h.calls).toEqual([
      { ns: [0, 1, 2], attempt: 1 }, { ns: [0], attempt: 1 },
      { ns: [1], attempt: 1 }, { ns: [1], attempt: 2 }, { ns: [1], attempt: 3 }, { ns: [2], attempt: 1 },
    ]);
    expect(h.commits.map((c) => [c.upTo, c.dead.length])).toEqual([['0', 0], ['1', 1], ['2', 0]]);
    const letter = h.commits[1]!.dead[0]!;
    expect(letter).toMatchObject({ topic: 't.dlq', key: 'k1', value: '{"n":1}' });
    expect(letter.headers).toMatchObject({
      'x-a': 'b', 'message-id': 't/2/1', [DLQ_HEADERS.reason]: 'handler', [DLQ_HEADERS.attempts]: '3',
      [DLQ_HEADERS.error]: 'failed on 1', [DLQ_HEADERS.errorName]: 'TypeError', [DLQ_HEADERS.offset]: '1', [DLQ_HEADERS.partition]: '2',
    });
  });

  it('counts a failed batch of one as that message\'s first attempt', async () => {
    const h = harness([raw(9, { n: 9 })], () => true, { maximumAttempts: 2 });
    await h.run;
    expect(h.calls.map((c) => c.attempt)).toEqual([1, 2]);
    expect(h.commits[0]!.dead[0]!.headers[DLQ_HEADERS.attempts]).toBe('2');
  });

  it('redelivers a message that recovers within its attempts, without dead letters', async () => {
    const h = harness([raw(3, { n: 3 })], (_b, attempt) => attempt < 3);
    await h.run;
    expect(h.calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(h.commits).toEqual([{ upTo: '3', dead: [] }]);
  });

  it('dead-letters values that fail the schema at once, in offset order with the others', async () => {
    const h = harness([raw(0, 'not json'), raw(1, { n: 1 }), raw(2, { n: 'two' }), raw(3, { n: 3 })], (b) => b.some((m) => m.value.n === 1));
    await h.run;
    expect(h.calls.map((c) => c.ns)).toEqual([[1, 3], [1], [1], [1], [3]]);
    expect(h.commits.map((c) => [c.upTo, c.dead.map((d) => `${d.headers[DLQ_HEADERS.offset]}:${d.headers[DLQ_HEADERS.reason]}`)])).toEqual([
      ['1', ['0:schema', '1:handler']], ['3', ['2:schema']],
    ]);
    expect(h.commits[0]!.dead[0]!.headers[DLQ_HEADERS.error]).toMatch(/not JSON/);
    const allBad = harness([raw(0, '{}'), raw(1, '[')], () => false);
    await allBad.run;
    expect(allBad.calls).toEqual([]);
    expect(allBad.commits.map((c) => [c.upTo, c.dead.length])).toEqual([['1', 2]]);
  });

  it('stops retrying when aborted, committing nothing', async () => {
    const abort = new AbortController();
    const h = harness([raw(0, { n: 0 })], () => { abort.abort(); return true; }, { signal: abort.signal });
    expect(await h.run).toBe(false);
    expect(h.calls).toHaveLength(1);
    expect(h.commits).toEqual([]);
  });

  it('still commits a batch that succeeds after the stop began', async () => {
    const abort = new AbortController();
    const h = harness([raw(0, { n: 0 })], () => { abort.abort(); return false; }, { signal: abort.signal });
    expect(await h.run).toBe(true);
    expect(h.commits).toHaveLength(1);
  });
});

describe('retry policy', () => {
  it('backs off exponentially up to the maximum', () => {
    const p = DEFAULT_RETRY_POLICY;
    expect([1, 2, 3, 8, 9, 20].map((a) => backoffMs(p, a))).toEqual([200, 400, 800, 25_600, 30_000, 30_000]);
  });

  it('rejects nonsense', () => {
    expect(() => resolveRetryPolicy({ maximumAttempts: 0 })).toThrow(/maximumAttempts/);
    expect(() => resolveRetryPolicy({ backoffCoefficient: 0.5 })).toThrow(/backoffCoefficient/);
    expect(() => resolveRetryPolicy({ initialIntervalMs: 10, maximumIntervalMs: 5 })).toThrow(/maximumIntervalMs/);
  });
});
