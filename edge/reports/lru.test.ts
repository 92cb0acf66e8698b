import { describe, expect, it } from 'vitest';
import { ByteLru } from './lru.ts';

describe('ByteLru', () => {
  it('evicts the least recently used entries to stay within its byte budget', () => {
    const lru = new ByteLru<string>({ maxBytes: 100, maxEntryBytes: 60 });
    lru.set('a', 'A', 40);
    lru.set('b', 'B', 40);
    expect(lru.get('a')).toBe('A'); // a is now the most recent
    lru.set('c', 'C', 40);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe('A');
    expect(lru.get('c')).toBe('C');
    expect(lru.bytes).toBe(80);
  });

  it('keeps the order right when the most recent entry is read again, deleted or replaced', () => {
    const lru = new ByteLru<string>({ maxBytes: 100, maxEntryBytes: 50 });
    lru.set('a', 'A', 40);
    lru.set('b', 'B', 40);
    lru.get('b');
    lru.get('b'); // already the most recent
    lru.get('a'); // now a is
    lru.delete('a');
    lru.set('c', 'C', 40);
    lru.get('b'); // b after c
    lru.set('d', 'D', 40); // evicts c, the least recently used
    expect([lru.get('c'), lru.get('b'), lru.get('d')]).toEqual([undefined, 'B', 'D']);
  });

  it('refuses entries above the per-entry limit and replaces an existing key', () => {
    const lru = new ByteLru<string>({ maxBytes: 100, maxEntryBytes: 30 });
    expect(lru.set('big', 'x', 31)).toBe(false);
    expect(lru.size).toBe(0);
    lru.set('k', 'v1', 10);
    lru.set('k', 'v2', 20);
    expect(lru.get('k')).toBe('v2');
    expect(lru.bytes).toBe(20);
  });

  it('caches nothing with a zero budget', () => {
    const lru = new ByteLru<string>({ maxBytes: 0 });
    expect(lru.set('a', 'A', 1)).toBe(false);
    expect(lru.get('a')).toBeUndefined();
  });
});
