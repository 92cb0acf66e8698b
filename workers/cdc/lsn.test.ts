import { describe, expect, it } from 'vitest';
import { formatLsn, lsnOfVersion, parseLsn, snapshotVersion, versionOf } from './lsn.ts';

describe('LSNs and versions', () => {
  it('parses and formats LSNs as PostgreSQL writes them', () => {
    expect(parseLsn('0/1B86FC9')).toBe(0x1b86fc9n);
    expect(parseLsn('00000000/01B87088')).toBe(0x1b87088n);
    expect(parseLsn('16/b374d848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(formatLsn(parseLsn('FFFFFFFF/FFFFFFFF'))).toBe('FFFFFFFF/FFFFFFFF');
    expect(formatLsn(0x1b86fc9n)).toBe('0/1B86FC9');
    expect(() => parseLsn('1B86FC9')).toThrow(RangeError);
    expect(() => formatLsn(1n << 64n)).toThrow(RangeError);
  });

  it('orders versions by commit LSN, then by position in the transaction, with no ties', () => {
    const a = parseLsn('0/1000');
    const b = parseLsn('0/1001');
    expect(versionOf(a, 0)).toBeLessThan(versionOf(a, 1));
    expect(versionOf(a, 4_000_000)).toBeLessThan(versionOf(b, 0));
    expect(lsnOfVersion(versionOf(b, 7))).toBe(b);
  });

  it('puts a snapshot above every change of its transaction and below the next transaction', () => {
    const p = parseLsn('5/10');
    expect(snapshotVersion(p)).toBeGreaterThan(versionOf(p, 0xfffffffe));
    expect(snapshotVersion(p)).toBeLessThan(versionOf(p + 1n, 0));
    expect(() => versionOf(p, 0xffffffff)).toThrow(RangeError);
    expect(() => versionOf(p, -1)).toThrow(RangeError);
    // The largest LSN still fits ClickHouse's UInt128.
    expect(snapshotVersion((1n << 64n) - 1n) < 1n << 128n).toBe(true);
  });
});
