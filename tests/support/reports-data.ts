/**
 * Test data for reports: `user_prosthesis_stats` rows with sensible defaults, and a chDB OLAP with
 * that table created from its DDL file (only that file, so other features' migrations cannot change
 * what a reports test sees).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Olap } from '../../shared/ports/olap.ts';
import { createClickHouseOlap } from '../../workers/adapters/olap-clickhouse.ts';

// A type alias (not an interface) so rows fit the OLAP port's `Record<string, unknown>`.
export type StatRow = {
  user_id: string; chip_id: string; day: string;
  active_minutes: number; actions: number; errors: number; error_rate: number;
  latency_p50_ms: number; latency_p95_ms: number; battery_min: number; battery_avg: number; grip_force_avg: number;
  top_error_codes: string[]; _version: number;
};

export function statRow(over: Partial<StatRow> & Pick<StatRow, 'user_id' | 'chip_id' | 'day'>): StatRow {
  const row: StatRow = {
    active_minutes: 120, actions: 400, errors: 4, error_rate: 0, latency_p50_ms: 80, latency_p95_ms: 160,
    battery_min: 30, battery_avg: 65, grip_force_avg: 20, top_error_codes: [], _version: 1, ...over,
  };
  row.error_rate = row.actions > 0 ? row.errors / row.actions : 0;
  return row;
}

const DDL = fileURLToPath(new URL('../../infra/clickhouse/001_user_prosthesis_stats.sql', import.meta.url));

/** chDB in `dir` with `user_prosthesis_stats` created. One per process (a chDB rule). */
export async function openStatsOlap(dir: string): Promise<Olap> {
  const olap = await createClickHouseOlap({ user: 'default', password: '', database: 'bionic', chdbPath: dir });
  await olap.command(readFileSync(DDL, 'utf8'));
  return olap;
}
