/**
 * CSV export of a report: one row per day (RFC 4180, CRLF line ends, header row). Every cell is a
 * date or a number the schema checked, so no cell can start a spreadsheet formula.
 */
import type { DailyRow, Report } from './schema.ts';

const COLUMNS: [header: string, cell: (r: DailyRow) => string | number | null][] = [
  ['day', (r) => r.day],
  ['active_minutes', (r) => r.activeMinutes],
  ['actions', (r) => r.actions],
  ['errors', (r) => r.errors],
  ['error_rate', (r) => r.errorRate],
  ['latency_p50_ms', (r) => r.latencyP50Ms],
  ['latency_p95_ms', (r) => r.latencyP95Ms],
  ['battery_min_pct', (r) => r.batteryMin],
  ['battery_avg_pct', (r) => r.batteryAvg],
  ['grip_force_avg_n', (r) => r.gripForceAvg],
];

const cell = (v: string | number | null) => (v === null ? '' : typeof v === 'number' ? String(Math.round(v * 10_000) / 10_000) : v);

/** The report's daily rows as CSV text. */
export function reportToCsv(report: Report): string {
  const lines = [COLUMNS.map(([h]) => h).join(',')];
  for (const row of report.daily) lines.push(COLUMNS.map(([, get]) => cell(get(row))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** A download file name: `bionicpro-report-2025-01.csv`. */
export const csvFileName = (report: Report) => `bionicpro-report-${report.period.id}.csv`;
