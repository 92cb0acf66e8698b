import { describe, expect, it } from 'vitest';
import { keyRanges } from './replica.ts';

describe('keyRanges', () => {
  it('covers [lo, hi] with contiguous, disjoint ranges, at most `slices` of them', () => {
    for (const [lo, hi, slices] of [[1n, 1_000_000n, 4], [5n, 5n, 4], [-10n, 7n, 3], [0n, 2n, 8], [1n, 9_007_199_254_740_993n, 4]] as const) {
      const r = keyRanges({ column: 'id', lo, hi, slices });
      expect(r.length).toBeGreaterThan(0);
      expect(r.length).toBeLessThanOrEqual(slices);
      expect(r[0]![0]).toBe(lo);
      expect(r.at(-1)![1]).toBe(hi);
      for (let i = 1; i < r.length; i++) expect(r[i]![0]).toBe(r[i - 1]![1] + 1n);
      for (const [a, b] of r) expect(a <= b).toBe(true);
    }
    expect(keyRanges({ column: 'id', lo: 3n, hi: 2n, slices: 4 })).toEqual([]);
  });
});
