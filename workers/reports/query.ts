/**
 * What a report reads from ClickHouse: one user's `user_prosthesis_stats` rows for a period,
 * aggregated per day, per device, and the most frequent error codes. All of it is summed inside
 * ClickHouse; Node only shapes the few dozen rows that come back. `FINAL` keeps only the newest
 * row per (user, chip, day): an ETL re-run inserts a higher `_version` of the same key.
 */
import type { Olap } from '../../shared/ports/olap.ts';
import type { ReportPeriod } from '../../shared/reports/period.ts';

/** Sums come back as strings (64-bit integers are quoted); measures are `null` without data. */
export interface DayAggregate {
  day: string;
  active_minutes: string | number;
  actions: string | number;
  errors: string | number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  battery_min: number | null;
  battery_avg: number | null;
  grip_force_avg: number | null;
}

export interface DeviceAggregate {
  chip_id: string;
  active_minutes: string | number;
  actions: string | number;
  errors: string | number;
  first_day: string;
  last_day: string;
}

export interface ErrorCodeCount { code: string; days: string | number }

// Means weighted by actions (a device that barely moved says little about latency); a day with
// rows but no actions falls back to the plain mean so its battery still shows.
// Columns are qualified (`s.`) because the output aliases reuse their names.
/** A day's mean of `col` over stats rows aliased `s`, weighted by actions (also used by the pseudonymised analytics). */
export const weighted = (col: string) =>
  `if(sum(s.actions) > 0, sum(s.${col} * s.actions) / sum(s.actions), avg(s.${col}))`;

const FROM = 'FROM user_prosthesis_stats AS s FINAL WHERE s.user_id = {userId:String} AND s.day BETWEEN {from:Date} AND {to:Date}';

export async function queryReportRows(olap: Olap, userId: string, period: Pick<ReportPeriod, 'from' | 'to'>) {
  const params = { userId, from: period.from, to: period.to };
  const days = await olap.query<DayAggregate>(
    `SELECT toString(s.day) AS day, sum(s.active_minutes) AS active_minutes, sum(s.actions) AS actions, sum(s.errors) AS errors,
       ${weighted('latency_p50_ms')} AS latency_p50_ms, ${weighted('latency_p95_ms')} AS latency_p95_ms,
       toFloat64(min(s.battery_min)) AS battery_min, avg(s.battery_avg) AS battery_avg, ${weighted('grip_force_avg')} AS grip_force_avg
     ${FROM} GROUP BY s.day ORDER BY s.day`,
    params,
  );
  const devices = await olap.query<DeviceAggregate>(
    `SELECT s.chip_id AS chip_id, sum(s.active_minutes) AS active_minutes, sum(s.actions) AS actions, sum(s.errors) AS errors,
       toString(min(s.day)) AS first_day, toString(max(s.day)) AS last_day
     ${FROM} GROUP BY s.chip_id ORDER BY s.chip_id`,
    params,
  );
  const errorCodes = await olap.query<ErrorCodeCount>(
    `SELECT code, count() AS days FROM user_prosthesis_stats AS s FINAL ARRAY JOIN s.top_error_codes AS code
     WHERE s.user_id = {userId:String} AND s.day BETWEEN {from:Date} AND {to:Date} GROUP BY code ORDER BY days DESC, code LIMIT 10`,
    params,
  );
  return { days, devices, errorCodes };
}
