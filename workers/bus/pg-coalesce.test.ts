import { describe, expect, it } from 'vitest';
import { Coalescer } from './pg-coalesce.ts';

/** A runner that records each merged call and can be held open or made to fail per request. */
function recorder(fail: (n: number) => boolean = () => false) {
  const calls: number[][] = [];
  let release: () => void = () => {};
  let gate: Promise<void> | null = null;
  const run = async (reqs: number[]) => {
    calls.push(reqs);
    if (gate) await gate;
    if (reqs.some(fail)) throw new Error(`bad request in ${reqs.join(',')}`);
    return reqs.map((n) => n * 10);
  };
  const hold = () => { gate = new Promise((r) => (release = () => { gate = null; r(); })); };
  return { calls, run, hold, release: () => release() };
}

describe('Coalescer', () => {
  it('merges the requests of one turn into one call and answers each with its own result', async () => {
    const r = recorder();
    const c = new Coalescer(r.run);
    expect(await Promise.all([1, 2, 3].map((n) => c.call(n)))).toEqual([10, 20, 30]);
    expect(r.calls).toEqual([[1, 2, 3]]);
  });

  it('queues what arrives while a call is in flight for the next merged call', async () => {
    const r = recorder();
    const c = new Coalescer(r.run);
    r.hold();
    const first = c.call(1);
    await new Promise((res) => setImmediate(res));
    expect(r.calls).toEqual([[1]]);
    const later = [2, 3, 4].map((n) => c.call(n));
    await new Promise((res) => setImmediate(res));
    expect(r.calls).toHaveLength(1); // concurrency 1: the rest wait for the first
    r.release();
    expect(await Promise.all([first, ...later])).toEqual([10, 20, 30, 40]);
    expect(r.calls).toEqual([[1], [2, 3, 4]]);
  });

  it('runs up to `concurrency` merged calls at once and at most `maxWeight` in each', async () => {
    const r = recorder();
    const c = new Coalescer(r.run, { concurrency: 2, maxWeight: 5, weight: (n) => n });
    r.hold();
    const all = [1, 2, 3, 9, 1].map((n) => c.call(n));
    await new Promise((res) => setImmediate(res));
    expect(r.calls).toEqual([[1, 2], [3]]);
    r.release();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 90, 10]);
    expect(r.calls).toEqual([[1, 2], [3], [9], [1]]); // 9 alone is over the limit, and still goes
  });

  it('after a merged call fails, runs each request alone: only the bad one fails', async () => {
    const r = recorder((n) => n === 2);
    const c = new Coalescer(r.run);
    const results = await Promise.allSettled([1, 2, 3].map((n) => c.call(n)));
    expect(results.map((x) => (x.status === 'fulfilled' ? x.value : 'failed'))).toEqual([10, 'failed', 30]);
    expect(r.calls).toEqual([[1, 2, 3], [1], [2], [3]]);
    expect(await c.call(4)).toBe(40); // and it goes on
  });
});
