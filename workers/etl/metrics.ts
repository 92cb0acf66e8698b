/**
 * The metrics, defined once: what each means (README "Telemetry and ETL" shows {@link METRICS}) and
 * the ClickHouse expressions that compute them. Hours aggregate raw readings into mergeable parts
 * (`a_*`); days merge their hours' parts; both finish the parts into the same metric columns.
 *
 * Readings: `action` and `error` readings are actions the user attempted (an `error` is one that
 * failed); `status` readings are the device's periodic battery reports. Days and hours are UTC.
 */

export interface MetricDefinition { column: string; type: string; definition: string }

export const METRICS: readonly MetricDefinition[] = [
  { column: 'active_minutes', type: 'UInt32', definition: 'distinct clock minutes with at least one action or error reading' },
  { column: 'actions', type: 'UInt32', definition: 'action + error readings (actions attempted)' },
  { column: 'errors', type: 'UInt32', definition: 'error readings' },
  { column: 'error_rate', type: 'Float64', definition: 'errors / actions; 0 when there were no actions' },
  { column: 'latency_p50_ms', type: 'Nullable(Float64)', definition: 'median `response_ms` of action and error readings, linear interpolation between the two middle values (numpy/Excel PERCENTILE.INC); NULL without such readings' },
  { column: 'latency_p95_ms', type: 'Nullable(Float64)', definition: '95th percentile of the same, same interpolation: value at rank 0.95·(n−1) counting from 0' },
  { column: 'battery_min', type: 'Nullable(UInt8)', definition: 'lowest `battery_pct` of any reading; NULL without battery readings' },
  { column: 'battery_avg', type: 'Nullable(Float64)', definition: 'mean `battery_pct` over every reading that has one' },
  { column: 'grip_force_avg', type: 'Nullable(Float64)', definition: 'mean `grip_force_n` over readings that have one (successful grips; legs have none → NULL), summed in millinewtons' },
  { column: 'top_error_codes', type: 'Array(String)', definition: 'up to 3 most frequent error codes, most frequent first, ties by code' },
];

const ACTION = "e.kind != 'status'";
const TIMED = `${ACTION} AND e.response_ms IS NOT NULL`;

/** Per (user, chip, hour) parts from raw readings `e` (telemetry_events columns). */
export const HOURLY_PARTS = `
  toUInt32(uniqExactIf(toStartOfMinute(e.ts), ${ACTION})) AS a_active_minutes,
  toUInt32(countIf(${ACTION})) AS a_actions,
  toUInt32(countIf(e.kind = 'error')) AS a_errors,
  toUInt32(count()) AS a_events,
  toUInt32(countIf(${TIMED})) AS a_latency_n,
  quantilesExactInclusiveStateIf(0.5, 0.95)(toUInt32(assumeNotNull(e.response_ms)), ${TIMED}) AS a_latency_state,
  finalizeAggregation(a_latency_state) AS a_latency_q,
  min(e.battery_pct) AS a_battery_min,
  toUInt64(sumIf(assumeNotNull(e.battery_pct), e.battery_pct IS NOT NULL)) AS a_battery_sum,
  toUInt32(count(e.battery_pct)) AS a_battery_n,
  toInt64(sumIf(toInt64(round(assumeNotNull(e.grip_force_n) * 1000)), e.grip_force_n IS NOT NULL)) AS a_grip_sum_mn,
  toUInt32(count(e.grip_force_n)) AS a_grip_n,
  sumMapIf(map(assumeNotNull(e.error_code), toUInt64(1)), e.kind = 'error' AND e.error_code IS NOT NULL) AS a_error_counts`;

/** Per (user, chip, day) parts merged from hourly rows `h` (user_prosthesis_stats_hourly FINAL). */
export const DAILY_PARTS = `
  sum(h.active_minutes) AS a_active_minutes,
  sum(h.actions) AS a_actions,
  sum(h.errors) AS a_errors,
  sum(h.latency_n) AS a_latency_n,
  quantilesExactInclusiveMerge(0.5, 0.95)(h.latency_state) AS a_latency_q,
  min(h.battery_min) AS a_battery_min,
  sum(h.battery_sum) AS a_battery_sum,
  sum(h.battery_n) AS a_battery_n,
  sum(h.grip_sum_mn) AS a_grip_sum_mn,
  sum(h.grip_n) AS a_grip_n,
  sumMap(h.error_counts) AS a_error_counts`;

/** The metric columns, in {@link METRICS} order, finished from either kind of parts. */
export const METRIC_VALUES = `
  a_active_minutes,
  a_actions,
  a_errors,
  if(a_actions = 0, 0, a_errors / a_actions),
  if(a_latency_n = 0, NULL, a_latency_q[1]),
  if(a_latency_n = 0, NULL, a_latency_q[2]),
  CAST(a_battery_min AS Nullable(UInt8)),
  if(a_battery_n = 0, NULL, a_battery_sum / a_battery_n),
  if(a_grip_n = 0, NULL, a_grip_sum_mn / a_grip_n / 1000),
  arraySlice(arrayMap(x -> x.1, arraySort(x -> (-toInt64(x.2), x.1), arrayZip(mapKeys(a_error_counts), mapValues(a_error_counts)))), 1, 3)`;

/** The hourly table's part columns, filled from {@link HOURLY_PARTS}. */
export const HOURLY_PART_COLUMNS = ['events', 'latency_n', 'latency_state', 'battery_sum', 'battery_n', 'grip_sum_mn', 'grip_n', 'error_counts'] as const;
export const HOURLY_PART_VALUES = 'a_events, a_latency_n, a_latency_state, a_battery_sum, a_battery_n, a_grip_sum_mn, a_grip_n, a_error_counts';

export const METRIC_COLUMNS = METRICS.map((m) => m.column);
