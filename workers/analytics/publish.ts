/**
 * The ETL's last step per region: append the day rows it just wrote, pseudonymised, to the central
 * analytics table `<CLICKHOUSE_DATABASE>.prosthesis_stats_pseudo` (infra/clickhouse/003_analytics.sql).
 *
 * Node computes the pseudonyms of the run's users (workers/analytics/pseudonym.ts: the key never
 * reaches ClickHouse) and writes them to the region's `user_pseudonyms`; then one `INSERT … SELECT`
 * inside ClickHouse joins the region's `user_prosthesis_stats` with them and writes only pseudonym,
 * region, day, model kind and metrics to the central database — subjects and chip ids never leave
 * the region's database. The region's view and the central database are the same ClickHouse, so
 * the central table is named by its qualified name.
 */
import type { Olap } from '../../shared/ports/olap.ts';
import type { EtlSources } from '../etl/sources.ts';
import { DAILY_TABLE } from '../etl/statements.ts';
import { weighted } from '../reports/query.ts';
import { pseudonymizer } from './pseudonym.ts';

export const PSEUDO_TABLE = 'prosthesis_stats_pseudo';
export const PSEUDONYMS_TABLE = 'user_pseudonyms';

export interface AnalyticsPublisher {
  /** Publishes the (user, day) rows version `version` wrote in [dayFrom, dayTo); idempotent per version. */
  publish(o: { version: number; dayFrom: Date; dayTo: Date }): Promise<{ users: number; rows: number }>;
}

export interface PublisherOptions {
  /** The region's ClickHouse database (its view of the worker's ClickHouse). */
  olap: Olap;
  region: string;
  /** `ANALYTICS_PSEUDONYM_KEY`. */
  key: string;
  /** The central database (`CLICKHOUSE_DATABASE`) holding `prosthesis_stats_pseudo`. */
  centralDatabase: string;
  /** Where the region's CRM is read from (device → model kind). */
  sources: EtlSources;
}

const chDate = (d: Date) => d.toISOString().slice(0, 10);

/** The publishing step of one region's ETL job (see the module comment). */
export function createAnalyticsPublisher(o: PublisherOptions): AnalyticsPublisher {
  const pseudo = pseudonymizer(o.key, o.region);
  const central = `\`${o.centralDatabase}\`.${PSEUDO_TABLE}`;
  // The (user, day) keys this run rewrote: a repaired device's old days, not every user's.
  const written = `SELECT user_id, day FROM ${DAILY_TABLE} WHERE _version = {version:UInt64} AND day >= {from:Date} AND day < {to:Date}`;
  const kinds = `SELECT p.chip_id AS chip_id, any(m.kind) AS kind
    FROM ${o.sources.crm('prostheses')} AS p INNER JOIN ${o.sources.crm('prosthesis_models')} AS m ON toString(m.id) = toString(p.model_id)
    GROUP BY p.chip_id`;
  const insert = `INSERT INTO ${central} (pseudo_id, region, day, model_kind, devices, active_minutes, actions, errors, error_rate,
      latency_p50_ms, latency_p95_ms, battery_min, battery_avg, grip_force_avg, _version)
    SELECT p.pseudo_id, {region:String}, s.day, if(k.kind = '', 'unknown', k.kind) AS kind_of, count(), sum(s.active_minutes),
      sum(s.actions), sum(s.errors), if(sum(s.actions) > 0, sum(s.errors) / sum(s.actions), 0),
      ${weighted('latency_p50_ms')}, ${weighted('latency_p95_ms')}, min(s.battery_min), avg(s.battery_avg), ${weighted('grip_force_avg')},
      {version:UInt64}
    FROM ${DAILY_TABLE} AS s FINAL
    INNER JOIN (SELECT user_id, pseudo_id FROM ${PSEUDONYMS_TABLE} FINAL WHERE user_id IN (SELECT user_id FROM (${written}))) AS p ON p.user_id = s.user_id
    LEFT JOIN (${kinds}) AS k ON k.chip_id = s.chip_id
    WHERE (s.user_id, s.day) IN (${written})
    GROUP BY p.pseudo_id, s.day, kind_of
    SETTINGS session_timezone = 'UTC', max_partitions_per_insert_block = 10000`;

  return {
    async publish({ version, dayFrom, dayTo }) {
      const params = { version, from: chDate(dayFrom), to: chDate(dayTo), region: o.region };
      const users = await o.olap.query<{ user_id: string }>(`SELECT DISTINCT user_id FROM (${written})`, params);
      if (users.length === 0) return { users: 0, rows: 0 };
      await o.olap.insert(PSEUDONYMS_TABLE, users.map((u) => ({ user_id: u.user_id, pseudo_id: pseudo(u.user_id), _version: version })));
      await o.olap.command(insert, params);
      const [n] = await o.olap.query<{ n: string }>(
        `SELECT count() AS n FROM ${central} WHERE region = {region:String} AND _version = {version:UInt64} AND day >= {from:Date} AND day < {to:Date}`, params);
      return { users: users.length, rows: Number(n?.n ?? 0) };
    },
  };
}
