import { describe, expect, it } from 'vitest';
import { TtlCache } from './ttl-cache.ts';

describe('TtlCache', () => {
  it('keeps a value from its start until its lifetime ends', () => {
    const c = new TtlCache<string>(10);
    c.set('a', 'x', 100, 5);
    expect(c.get('a', 100)).toBe('x');
    expect(c.get('a', 104)).toBe('x');
    expect(c.get('a', 105)).toBeUndefined();
    expect(c.size).toBe(0); // the stale entry is gone
  });

  it('treats a clock that stepped back before the start as expired', () => {
    const c = new TtlCache<string>(10);
    c.set('a', 'x', 100, 5);
    expect(c.get('a', 99)).toBeUndefined();
  });

  it('drops the oldest entry beyond its size, and stores nothing with size 0 or ttl 0', () => {
    const c = new TtlCache<number>(2);
    c.set('a', 1, 0, 10);
    c.set('b', 2, 0, 10);
    c.set('c', 3, 0, 10);
    expect([c.get('a', 1), c.get('b', 1), c.get('c', 1)]).toEqual([undefined, 2, 3]);
    c.set('b', 4, 1, 0);
    expect(c.get('b', 1)).toBeUndefined();
    const off = new TtlCache<number>(0);
    off.set('a', 1, 0, 10);
    expect(off.get('a', 1)).toBeUndefined();
  });

  it('forgets on delete', () => {
    const c = new TtlCache<number>(2);
    c.set('a', 1, 0, 10);
    c.delete('a');
    expect(c.get('a', 1)).toBeUndefined();
  });
});
