import { describe, expect, it } from 'vitest';
import { reportToCsv } from './csv.ts';
import { parseReportKey, reportObjectKey, reportVersionKey } from './keys.ts';
import { daysOf, parsePeriod, standardPeriods } from './period.ts';
import type { Report } from './schema.ts';

describe('report periods', () => {
  it('resolves relative names against today (UTC)', () => {
    expect(parsePeriod('day', '2025-01-15')).toEqual({ id: '2025-01-15', kind: 'day', from: '2025-01-15', to: '2025-01-15' });
    // 15 Jan 2025 is a Wednesday of ISO week 3 (Mon 13 – Sun 19).
    expect(parsePeriod('week', '2025-01-15')).toEqual({ id: '2025-W03', kind: 'week', from: '2025-01-13', to: '2025-01-19' });
    expect(parsePeriod('month', '2024-02-10')).toEqual({ id: '2024-02', kind: 'month', from: '2024-02-01', to: '2024-02-29' });
  });

  it('numbers ISO weeks across year ends', () => {
    // 1 Jan 2021 (a Friday) belongs to 2020-W53; 30 Dec 2024 (a Monday) starts 2025-W01.
    expect(parsePeriod('week', '2021-01-01')?.id).toBe('2020-W53');
    expect(parsePeriod('2025-W01')).toMatchObject({ from: '2024-12-30', to: '2025-01-05' });
    expect(parsePeriod('2021-W53')).toBeNull(); // 2021 has 52 weeks
  });

  it('parses canonical ids and refuses impossible dates and ranges', () => {
    expect(parsePeriod('2025-03')).toMatchObject({ kind: 'month', from: '2025-03-01', to: '2025-03-31' });
    expect(parsePeriod('2025-01-01_2025-01-20')).toMatchObject({ kind: 'range', from: '2025-01-01', to: '2025-01-20' });
    for (const bad of ['2025-02-30', '2025-13', '2025-01-20_2025-01-01', '2024-01-01_2025-12-31', 'yesterday', '../x', '1999-01-01']) {
      expect(parsePeriod(bad), bad).toBeNull();
    }
  });

  it('lists every day of a period and the standard periods', () => {
    expect(daysOf({ from: '2024-02-27', to: '2024-03-01' })).toEqual(['2024-02-27', '2024-02-28', '2024-02-29', '2024-03-01']);
    expect(standardPeriods('2025-01-08').map((p) => p.id)).toEqual(['2025-01-08', '2025-W02', '2025-W01', '2025-01', '2024-12']);
  });
});

describe('report keys', () => {
  it('puts the version into the key and parses it back', () => {
    expect(reportVersionKey('0b6c-u1')).toBe('reports:version:0b6c-u1');
    const key = reportObjectKey('0b6c-u1', 7, '2025-01');
    expect(key).toBe('reports/0b6c-u1/v7/2025-01.json');
    expect(parseReportKey(key)).toEqual({ userId: '0b6c-u1', version: 7, periodId: '2025-01' });
  });

  it('refuses owner ids that could escape their prefix', () => {
    for (const bad of ['../u2', 'a/b', '', 'u 1']) expect(() => reportObjectKey(bad, 1, 'day')).toThrow();
  });
});

describe('CSV export', () => {
  it('writes one row per day with empty cells for missing measures', () => {
    const day = { activeMinutes: 0, actions: 0, errors: 0, errorRate: null, latencyP50Ms: null, latencyP95Ms: null, batteryMin: null, batteryAvg: null, gripForceAvg: null };
    const csv = reportToCsv({ daily: [{ ...day, day: '2025-01-01', activeMinutes: 90, actions: 300, errors: 3, errorRate: 0.01, latencyP50Ms: 81.5 }, { ...day, day: '2025-01-02' }] } as Report);
    expect(csv.split('\r\n')).toEqual([
      'day,active_minutes,actions,errors,error_rate,latency_p50_ms,latency_p95_ms,battery_min_pct,battery_avg_pct,grip_force_avg_n',
      '2025-01-01,90,300,3,0.01,81.5,,,,',
      '2025-01-02,0,0,0,,,,,,',
      '',
    ]);
  });
});
