import { describe, expect, it } from 'vitest';
import { slices } from './statements.ts';
import { backfillWindows, incrementalWindow, windowOf } from './window.ts';

const d = (s: string) => new Date(s);
const iso = (w: { from: Date; to: Date; hourFrom: Date; hourTo: Date; dayFrom: Date; dayTo: Date }) =>
  Object.fromEntries(Object.entries(w).map(([k, v]) => [k, v.toISOString()]));

describe('ETL windows', () => {
  it('an incremental run reads from the watermark minus the allowance, in whole hours and days', () => {
    const w = incrementalWindow({ now: d('2026-03-10T00:20:00Z'), watermark: d('2026-03-10T00:05:00Z'), earliest: null, lateAllowanceMs: 2 * 3_600_000 });
    expect(iso(w!)).toEqual({
      from: '2026-03-09T22:05:00.000Z', to: '2026-03-10T00:20:00.000Z',
      hourFrom: '2026-03-09T22:00:00.000Z', hourTo: '2026-03-10T01:00:00.000Z',
      dayFrom: '2026-03-09T00:00:00.000Z', dayTo: '2026-03-11T00:00:00.000Z',
    });
  });

  it('the first run starts at the earliest reading\'s day; without readings there is nothing to do', () => {
    const w = incrementalWindow({ now: d('2026-03-10T12:00:00Z'), watermark: null, earliest: d('2026-03-01T07:30:00Z'), lateAllowanceMs: 0 });
    expect(w!.hourFrom.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(incrementalWindow({ now: d('2026-03-10T12:00:00Z'), watermark: null, earliest: null, lateAllowanceMs: 0 })).toBeNull();
  });

  it('an exact hour is not rounded up; a window is at least one hour', () => {
    expect(windowOf(d('2026-03-10T10:00:00Z'), d('2026-03-10T12:00:00Z')).hourTo.toISOString()).toBe('2026-03-10T12:00:00.000Z');
    expect(windowOf(d('2026-03-10T10:00:00Z'), d('2026-03-10T10:00:00Z')).hourTo.toISOString()).toBe('2026-03-10T11:00:00.000Z');
  });

  it('backfills whole days, inclusive, in chunks', () => {
    const ws = backfillWindows(d('2026-03-01'), d('2026-03-05'), 2);
    expect(ws.map((w) => [w.dayFrom.toISOString().slice(0, 10), w.dayTo.toISOString().slice(0, 10)])).toEqual([
      ['2026-03-01', '2026-03-03'], ['2026-03-03', '2026-03-05'], ['2026-03-05', '2026-03-06'],
    ]);
  });

  it('splits a read into contiguous whole-hour slices', () => {
    const s = slices(d('2026-03-10T00:00:00Z'), d('2026-03-10T05:00:00Z'), 2);
    expect(s.map(([a, b]) => [a.getUTCHours(), b.getUTCHours()])).toEqual([[0, 3], [3, 5]]);
    expect(slices(d('2026-03-10T00:00:00Z'), d('2026-03-10T01:00:00Z'), 4)).toHaveLength(1);
  });
});
