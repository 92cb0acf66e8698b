/**
 * The ETL's ClickHouse statements. All heavy work is `INSERT … SELECT` inside ClickHouse: hours
 * are aggregated straight from PostgreSQL (parallel time slices), days are merged from hours, and
 * the users whose day rows changed are found by comparing row hashes with the previous good version.
 */
import { DAILY_PARTS, HOURLY_PART_COLUMNS, HOURLY_PART_VALUES, HOURLY_PARTS, METRIC_COLUMNS, METRIC_VALUES } from './metrics.ts';
import type { EtlSources } from './sources.ts';

export interface Statement { sql: string; params: Record<string, unknown> }

export const HOURLY_TABLE = 'user_prosthesis_stats_hourly';
export const DAILY_TABLE = 'user_prosthesis_stats';

// Day and hour boundaries are UTC whatever the server's zone; a long first load may touch many months.
const SETTINGS = "SETTINGS session_timezone = 'UTC', max_partitions_per_insert_block = 10000";

/** `YYYY-MM-DD hh:mm:ss.ffffff` in UTC, as a DateTime64(6, 'UTC') parameter. */
export const chTime = (d: Date) => d.toISOString().replace('T', ' ').replace('Z', '000');
const chDate = (d: Date) => d.toISOString().slice(0, 10);

/** Splits [from, to) into `n` slices of whole hours (fewer when the window is shorter). */
export function slices(from: Date, to: Date, n: number): [Date, Date][] {
  const hours = Math.max(1, Math.ceil((to.getTime() - from.getTime()) / 3_600_000));
  const per = Math.ceil(hours / Math.max(1, Math.min(n, hours)));
  const out: [Date, Date][] = [];
  for (let t = from.getTime(); t < to.getTime(); t += per * 3_600_000) out.push([new Date(t), new Date(Math.min(to.getTime(), t + per * 3_600_000))]);
  return out;
}

/**
 * Recomputes every (user, chip, hour) with readings in [from, to) — whole hours — as version `version`.
 * `chips` restricts the read to some devices (late uploads).
 */
export function hourlyInsert(src: EtlSources, o: { from: Date; to: Date; version: number; readSlices: number; chips?: string[] }): Statement {
  const params: Record<string, unknown> = { version: o.version };
  const chipFilter = o.chips ? ' AND chip_id IN {chips:Array(String)}' : '';
  if (o.chips) params.chips = o.chips;
  // Each slice is its own PostgreSQL query (the filter is pushed down), read in parallel.
  const reads = slices(o.from, o.to, o.readSlices).map(([a, b], i) => {
    params[`f${i}`] = chTime(a);
    params[`t${i}`] = chTime(b);
    return `SELECT chip_id, ts, kind, response_ms, error_code, battery_pct, grip_force_n FROM ${src.telemetryEvents}
      WHERE ts >= {f${i}:DateTime64(6, 'UTC')} AND ts < {t${i}:DateTime64(6, 'UTC')}${chipFilter}`;
  });
  const sql = `INSERT INTO ${HOURLY_TABLE} (user_id, chip_id, hour, ${METRIC_COLUMNS.join(', ')}, ${HOURLY_PART_COLUMNS.join(', ')}, _version)
    SELECT o.user_id, a.chip_id, a.hour, ${METRIC_VALUES}, ${HOURLY_PART_VALUES}, {version:UInt64}
    FROM (
      SELECT e.chip_id AS chip_id, toStartOfHour(e.ts) AS hour, ${HOURLY_PARTS}
      FROM (${reads.join('\n      UNION ALL ')}) AS e
      GROUP BY chip_id, hour
    ) AS a
    -- Owners are joined to the hours, not to every reading: one lookup per device-hour.
    INNER JOIN (${src.chipOwners}) AS o ON o.chip_id = a.chip_id
    ${SETTINGS}`;
  return { sql, params };
}

/** Recomputes every (user, chip, day) in [dayFrom, dayTo) from its hours, as version `version`. */
export function dailyInsert(o: { dayFrom: Date; dayTo: Date; version: number; chips?: string[] }): Statement {
  const params: Record<string, unknown> = { version: o.version, from: chDate(o.dayFrom), to: chDate(o.dayTo) };
  if (o.chips) params.chips = o.chips;
  const sql = `INSERT INTO ${DAILY_TABLE} (user_id, chip_id, day, ${METRIC_COLUMNS.join(', ')}, _version)
    SELECT user_id, chip_id, day, ${METRIC_VALUES}, {version:UInt64}
    FROM (
      SELECT h.user_id AS user_id, h.chip_id AS chip_id, toDate(h.hour) AS day, ${DAILY_PARTS}
      FROM ${HOURLY_TABLE} AS h FINAL
      WHERE h.hour >= toDateTime({from:Date}, 'UTC') AND h.hour < toDateTime({to:Date}, 'UTC')${o.chips ? ' AND h.chip_id IN {chips:Array(String)}' : ''}
      GROUP BY user_id, chip_id, day
    )
    ${SETTINGS}`;
  return { sql, params };
}

/**
 * Users with a day row written by `version` that differs from the newest row of a version up to
 * `previous` (the last good run), or that is new. Rows of failed runs in between are ignored, so a
 * retry still invalidates what its failed attempt changed; a merge that already dropped the old row
 * can only make a user count as changed, never hide one.
 */
export function affectedUsers(o: { dayFrom: Date; dayTo: Date; version: number; previous: number }): Statement {
  const hash = `cityHash64(${METRIC_COLUMNS.join(', ')})`;
  const sql = `SELECT DISTINCT user_id FROM (
      SELECT user_id, chip_id, day,
        argMaxIf(h, _version, _version = {version:UInt64}) AS new_h, countIf(_version = {version:UInt64}) AS new_n,
        argMaxIf(h, _version, _version <= {previous:UInt64}) AS old_h, countIf(_version <= {previous:UInt64}) AS old_n
      FROM (SELECT user_id, chip_id, day, _version, ${hash} AS h FROM ${DAILY_TABLE}
            WHERE day >= {from:Date} AND day < {to:Date} AND _version <= {version:UInt64})
      GROUP BY user_id, chip_id, day
    ) WHERE new_n > 0 AND (old_n = 0 OR new_h != old_h)
    ORDER BY user_id`;
  return { sql, params: { version: o.version, previous: o.previous, from: chDate(o.dayFrom), to: chDate(o.dayTo) } };
}

/** Readings aggregated and rows written by `version` within the days it touched. */
export function runCounts(o: { dayFrom: Date; dayTo: Date; version: number }): Statement {
  const sql = `SELECT
      (SELECT sum(events) FROM ${HOURLY_TABLE} WHERE hour >= toDateTime({from:Date}, 'UTC') AND hour < toDateTime({to:Date}, 'UTC') AND _version = {version:UInt64}) AS rows_read,
      (SELECT count() FROM ${HOURLY_TABLE} WHERE hour >= toDateTime({from:Date}, 'UTC') AND hour < toDateTime({to:Date}, 'UTC') AND _version = {version:UInt64})
        + (SELECT count() FROM ${DAILY_TABLE} WHERE day >= {from:Date} AND day < {to:Date} AND _version = {version:UInt64}) AS rows_written`;
  return { sql, params: { version: o.version, from: chDate(o.dayFrom), to: chDate(o.dayTo) } };
}
