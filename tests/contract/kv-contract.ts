/**
 * The KV contract: what every KV adapter (Upstash, the gateway over redis-server, …) must do.
 * Keys live under a random prefix, so the suite may share a database with other users.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Ratelimit } from '@upstash/ratelimit';
import type { Redis } from '@upstash/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kv } from '../../shared/ports/kv.ts';

export type KvUnderTest = Kv & { redis: Redis };

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

/** Polls `probe` until it returns true; fails after `timeoutMs`. */
async function eventually(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Registers the KV contract suite for one adapter; `setup` runs once before and `teardown` once after. */
export function kvContract(
  name: string,
  setup: () => Promise<{ kv: KvUnderTest; teardown(): Promise<void> }>,
): void {
  describe(`KV contract: ${name}`, () => {
    let kv: KvUnderTest;
    let teardown: (() => Promise<void>) | undefined;
    const prefix = `kv-contract:${randomUUID()}:`;
    const key = (k: string) => prefix + k;

    beforeAll(async () => {
      ({ kv, teardown } = await setup());
    }, 60_000);
    afterAll(async () => {
      await teardown?.();
    }, 60_000);

    it('answers ping', async () => {
      await expect(kv.ping()).resolves.toBeUndefined();
    });

    it('gets null for a missing key and what was set otherwise', async () => {
      expect(await kv.get(key('missing'))).toBeNull();
      expect(await kv.set(key('a'), 'one')).toBe(true);
      expect(await kv.get(key('a'))).toBe('one');
      expect(await kv.set(key('a'), 'two')).toBe(true);
      expect(await kv.get(key('a'))).toBe('two');
    });

    it('keeps values verbatim, including ones that look like numbers or JSON', async () => {
      for (const value of ['123', '00123', '1e3', 'true', 'null', '{"a":1}', '[1,2]', '', ' spaced ']) {
        await kv.set(key('verbatim'), value);
        expect(await kv.get(key('verbatim'))).toBe(value);
      }
    });

    it('sets an expiry in seconds, and the key then expires', async () => {
      expect(await kv.set(key('ttl'), 'v', { ttlSeconds: 1 })).toBe(true);
      expect(await kv.redis.ttl(key('ttl'))).toBe(1);
      const pttl = await kv.redis.pttl(key('ttl'));
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(1000);
      await eventually(async () => (await kv.get(key('ttl'))) === null, 5_000, 'the key to expire');
    });

    it('sets with nx only when the key is absent', async () => {
      expect(await kv.set(key('nx'), 'first', { nx: true })).toBe(true);
      expect(await kv.set(key('nx'), 'second', { nx: true })).toBe(false);
      expect(await kv.get(key('nx'))).toBe('first');
      expect(await kv.set(key('nx-ttl'), 'x', { nx: true, ttlSeconds: 30 })).toBe(true);
      expect(await kv.redis.ttl(key('nx-ttl'))).toBeGreaterThan(25);
    });

    it('deletes keys and counts only those that existed', async () => {
      await kv.set(key('d1'), '1');
      await kv.set(key('d2'), '2');
      expect(await kv.del(key('d1'), key('d2'), key('d-missing'))).toBe(2);
      expect(await kv.get(key('d1'))).toBeNull();
      expect(await kv.del(key('d1'))).toBe(0);
      expect(await kv.del()).toBe(0);
    });

    it('increments counters and rejects non-integers', async () => {
      expect(await kv.incr(key('n'))).toBe(1);
      expect(await kv.incr(key('n'))).toBe(2);
      expect(await kv.get(key('n'))).toBe('2');
      await kv.set(key('not-a-number'), 'abc');
      await expect(kv.incr(key('not-a-number'))).rejects.toThrow(/not an integer/);
    });

    it('sets expiries on existing keys only', async () => {
      await kv.set(key('e'), 'v');
      expect(await kv.redis.ttl(key('e'))).toBe(-1);
      expect(await kv.expire(key('e'), 100)).toBe(true);
      expect(await kv.redis.ttl(key('e'))).toBeGreaterThan(95);
      expect(await kv.expire(key('e-missing'), 100)).toBe(false);
    });

    it('keeps sorted sets through the raw client', async () => {
      const z = key('z');
      expect(await kv.redis.zadd(z, { score: 2, member: 'b' }, { score: 1, member: 'a' }, { score: 3, member: 'ü' })).toBe(3);
      expect(await kv.redis.zrange(z, 0, -1)).toEqual(['a', 'b', 'ü']);
      expect(await kv.redis.zrange(z, 0, -1, { withScores: true })).toEqual(['a', '1', 'b', '2', 'ü', '3']);
      expect(await kv.redis.zrem(z, 'a', 'nope')).toBe(1);
      expect(await kv.redis.zcard(z)).toBe(2);
    });

    it('runs pipelines in order and reports each error in place', async () => {
      const p = key('pipe');
      expect(await kv.redis.pipeline().set(p, '1').incr(p).get(p).exec()).toEqual(['OK', 2, '2']);
      const rows = await kv.redis.pipeline().set(p, 'x').incr(p).get(p).exec({ keepErrors: true });
      expect(rows[0]).toMatchObject({ result: 'OK' });
      expect(rows[1].error).toMatch(/not an integer/);
      expect(rows[2]).toMatchObject({ result: 'x' });
    });

    it('runs multi-exec transactions as one unit', async () => {
      const t = key('tx');
      expect(await kv.redis.multi().set(t, '1').incr(t).get(t).exec()).toEqual(['OK', 2, '2']);
      // Concurrent transactions never interleave: each sees its own two increments back to back.
      const c = key('tx-counter');
      const results = await Promise.all(
        Array.from({ length: 20 }, () => kv.redis.multi().incr(c).incr(c).get(c).exec() as Promise<[number, number, string]>),
      );
      for (const [a, b, read] of results) {
        expect(b).toBe(a + 1);
        expect(read).toBe(String(b));
      }
      expect(results.map(([a]) => a).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => 2 * i + 1));
    });

    it('evaluates Lua through kv.eval and leaves the script cached for EVALSHA', async () => {
      const script = `redis.call('SET', KEYS[1], ARGV[1]); return {redis.call('INCRBY', KEYS[2], ARGV[2]), redis.call('GET', KEYS[1])}`;
      expect(await kv.eval(script, [key('ev-s'), key('ev-n')], ['é', 5])).toEqual([5, 'é']);
      expect(await kv.redis.scriptExists(sha1(script))).toEqual([1]);
      expect(await kv.eval(script, [key('ev-s'), key('ev-n')], ['x', 2])).toEqual([7, 'x']);
      await expect(kv.eval('return redis.call("INCR", KEYS[1])', [key('ev-s')], [])).rejects.toThrow(/not an integer/);
    });

    it('loads a script and runs it by the SHA1 the client computes', async () => {
      const script = `return ARGV[1] .. ':' .. KEYS[1] .. ':${randomUUID()}'`;
      const sha = await kv.redis.scriptLoad(script);
      expect(sha).toBe(sha1(script));
      expect(await kv.redis.evalsha(sha, ['k'], ['v'])).toMatch(/^v:k:/);
    });

    it('runs scripts carrying Upstash\'s allow-key-locking shebang by EVAL and EVALSHA', async () => {
      const script = `#!lua flags=allow-key-locking\nreturn redis.call('INCRBY', KEYS[1], ARGV[1]) -- ${randomUUID()}`;
      expect(await kv.eval(script, [key('shebang')], [3])).toBe(3);
      expect(await kv.redis.scriptExists(sha1(script))).toEqual([1]);
      expect(await kv.eval(script, [key('shebang')], [4])).toBe(7);
      const sha = await kv.redis.scriptLoad(script);
      expect(sha).toBe(sha1(script));
      expect(await kv.redis.evalsha(sha, [key('shebang')], ['1'])).toBe(8);
    });

    it('round-trips non-ASCII and binary-ish strings exactly', async () => {
      const values = ['Привет, мир', '日本語テキスト', 'emoji 🚀👩‍🔬', 'nul\u0000byte', 'ctrl\u0001\u001f\u007f', 'latin-1 ÿþ',
        'OK', 'PONG', 'T0s=', 'QUJD', '"quoted"\\backslash\n'];
      for (const [i, value] of values.entries()) {
        await kv.set(key(`b64:${i}`), value);
        expect(await kv.get(key(`b64:${i}`))).toBe(value);
      }
      const z = key('b64-z');
      const [first, ...rest] = values.map((member, score) => ({ score, member }));
      await kv.redis.zadd(z, first!, ...rest);
      expect(await kv.redis.zrange(z, 0, -1)).toEqual(values);
      expect(await kv.eval('return ARGV', [], values)).toEqual(values);
    });

    it('limits with @upstash/ratelimit sliding windows: 3 pass, the 4th is blocked', async () => {
      const limiter = new Ratelimit({
        redis: kv.redis,
        limiter: Ratelimit.slidingWindow(3, '10 s'),
        prefix: key('ratelimit'),
        timeout: 0, // never fail open: a slow backend must not look like an allowed request
      });
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await limiter.limit('user-1'));
      expect(results.map((r) => r.success)).toEqual([true, true, true, false]);
      expect(results.map((r) => r.remaining)).toEqual([2, 1, 0, 0]);
      expect(results[3]!.limit).toBe(3);
      expect((await limiter.limit('user-2')).success).toBe(true);
    });
  });
}
