/**
 * `analytics.*` on the workers: reads the central pseudonymised table only
 * (`prosthesis_stats_pseudo` in CLICKHOUSE_DATABASE, written by the ETL per region through
 * workers/analytics/publish.ts), never a region's database.
 */
import type { AnalyticsQuery, AnalyticsService, PseudoDailyRow, RegionDayAggregate } from '../../shared/analytics/port.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import { weighted } from '../reports/query.ts';
import { PSEUDO_TABLE } from './publish.ts';

export interface AnalyticsServiceDeps {
  /** The central ClickHouse database. */
  olap: Olap;
  regions: readonly string[];
}

interface DailyRow {
  pseudo_id: string; region: string; day: string; model_kind: string; devices: number; active_minutes: number; actions: number;
  errors: number; error_rate: number; latency_p50_ms: number | null; latency_p95_ms: number | null; battery_min: number | null;
  battery_avg: number | null; grip_force_avg: number | null;
}

interface SummaryRow {
  region: string; day: string; users: string; devices: string; active_minutes: string; actions: string; errors: string;
  latency_p50_ms: number | null; latency_p95_ms: number | null; battery_avg: number | null; grip_force_avg: number | null;
}

/** `FROM … WHERE …` of a query; columns qualified, as output aliases (`toString(day) AS day`) would shadow them. */
function from(q: AnalyticsQuery) {
  const params: Record<string, unknown> = { from: q.from, to: q.to };
  let sql = `FROM ${PSEUDO_TABLE} AS t FINAL WHERE t.day BETWEEN {from:Date} AND {to:Date}`;
  if (q.region !== undefined) { sql += ' AND t.region = {region:String}'; params.region = q.region; }
  if (q.modelKind !== undefined) { sql += ' AND t.model_kind = {modelKind:String}'; params.modelKind = q.modelKind; }
  return { sql, params };
}

/** The `analytics.*` service over the central database's pseudonymised table. */
export function createAnalyticsService(deps: AnalyticsServiceDeps): AnalyticsService {
  return {
    regions: deps.regions,
    async daily(q) {
      const w = from(q);
      const rows = await deps.olap.query<DailyRow>(
        `SELECT t.pseudo_id AS pseudo_id, t.region AS region, toString(t.day) AS day, t.model_kind AS model_kind, t.devices AS devices,
           t.active_minutes AS active_minutes, t.actions AS actions, t.errors AS errors, t.error_rate AS error_rate,
           t.latency_p50_ms AS latency_p50_ms, t.latency_p95_ms AS latency_p95_ms, t.battery_min AS battery_min,
           t.battery_avg AS battery_avg, t.grip_force_avg AS grip_force_avg
         ${w.sql} ORDER BY t.day, t.region, t.pseudo_id, t.model_kind LIMIT {limit:UInt32}`,
        { ...w.params, limit: q.limit + 1 },
      );
      return {
        truncated: rows.length > q.limit,
        rows: rows.slice(0, q.limit).map((r): PseudoDailyRow => ({
          pseudoId: r.pseudo_id, region: r.region, day: r.day, modelKind: r.model_kind, devices: r.devices,
          activeMinutes: r.active_minutes, actions: r.actions, errors: r.errors, errorRate: r.error_rate,
          latencyP50Ms: r.latency_p50_ms, latencyP95Ms: r.latency_p95_ms, batteryMin: r.battery_min,
          batteryAvg: r.battery_avg, gripForceAvg: r.grip_force_avg,
        })),
      };
    },
    async summary(q) {
      const w = from(q);
      const rows = await deps.olap.query<SummaryRow>(
        // Measures weighted by actions, as in the reports (`weighted` reads rows aliased `s`).
        `SELECT s.region AS region, toString(s.day) AS day, uniqExact(s.pseudo_id) AS users, sum(s.devices) AS devices,
           sum(s.active_minutes) AS active_minutes, sum(s.actions) AS actions, sum(s.errors) AS errors,
           ${weighted('latency_p50_ms')} AS latency_p50_ms, ${weighted('latency_p95_ms')} AS latency_p95_ms,
           avg(s.battery_avg) AS battery_avg, ${weighted('grip_force_avg')} AS grip_force_avg
         FROM (SELECT t.* ${w.sql}) AS s GROUP BY s.region, s.day ORDER BY s.day, s.region`,
        w.params,
      );
      return {
        rows: rows.map((r): RegionDayAggregate => {
          const actions = Number(r.actions);
          const errors = Number(r.errors);
          return {
            region: r.region, day: r.day, users: Number(r.users), devices: Number(r.devices), activeMinutes: Number(r.active_minutes),
            actions, errors, errorRate: actions > 0 ? errors / actions : 0, latencyP50Ms: r.latency_p50_ms, latencyP95Ms: r.latency_p95_ms,
            batteryAvg: r.battery_avg, gripForceAvg: r.grip_force_avg,
          };
        }),
      };
    },
  };
}
