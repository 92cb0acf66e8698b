/**
 * `bionic migrate [targets…]`: applies pending migrations with the worker's runner
 * (workers/db/migrate.ts): forward-only, checksummed, serialised by an advisory lock, so running it
 * next to starting workers, or twice, is safe.
 */
import pc from 'picocolors';
import type postgres from 'postgres';
import type { Env } from '../../shared/config.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import { ChdbDirectoryInUseError, createClickHouseOlap } from '../adapters/olap-clickhouse.ts';
import { migrateAll, type AppliedMigration } from '../db/migrate.ts';
import { closeAll, connect } from './db.ts';
import { requireVars } from './env.ts';
import { CliError, EXIT } from './errors.ts';
import type { Output } from './output.ts';

export const MIGRATION_TARGETS = ['crm', 'telemetry', 'platform', 'clickhouse'] as const;
export type MigrationTarget = (typeof MIGRATION_TARGETS)[number];
/** Without targets: the three PostgreSQL databases (the worker migrates ClickHouse at start). */
export const DEFAULT_TARGETS: readonly MigrationTarget[] = ['crm', 'telemetry', 'platform'];

const URL_VAR = { crm: 'CRM_DATABASE_URL', telemetry: 'TELEMETRY_DATABASE_URL', platform: 'PLATFORM_DATABASE_URL' } as const;

/** Checks the target names given on the command line; an empty list means the defaults. */
export function parseTargets(args: readonly string[]): MigrationTarget[] {
  const unknown = args.filter((a) => !(MIGRATION_TARGETS as readonly string[]).includes(a));
  if (unknown.length) throw new CliError(`unknown migration target "${unknown.join('", "')}" (choose from ${MIGRATION_TARGETS.join(', ')})`, EXIT.USAGE);
  return args.length ? MIGRATION_TARGETS.filter((t) => args.includes(t)) : [...DEFAULT_TARGETS];
}

async function openOlap(env: Env): Promise<Olap> {
  const e = requireVars(env, ['CLICKHOUSE_URL', 'CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD', 'CLICKHOUSE_DATABASE', 'CHDB_PATH']);
  try {
    return await createClickHouseOlap({
      url: e.CLICKHOUSE_URL, user: e.CLICKHOUSE_USER, password: e.CLICKHOUSE_PASSWORD, database: e.CLICKHOUSE_DATABASE, chdbPath: e.CHDB_PATH,
    });
  } catch (err) {
    if (err instanceof ChdbDirectoryInUseError) {
      throw new CliError(`chDB directory ${e.CHDB_PATH} is in use by a running worker, which applies ClickHouse migrations itself at start`, EXIT.FAILURE, { cause: err });
    }
    throw err;
  }
}

/** Runs the migrations of `targets` and reports them on `out`. */
export async function migrate(targets: readonly MigrationTarget[], env: Env, out: Output): Promise<AppliedMigration[]> {
  const pgTargets = targets.filter((t): t is Exclude<MigrationTarget, 'clickhouse'> => t !== 'clickhouse');
  // Every variable is checked before anything connects, so one run names every problem.
  const vars = requireVars(env, pgTargets.map((t) => URL_VAR[t]));
  const pools: Partial<Record<MigrationTarget, postgres.Sql>> = {};
  let olap: Olap | undefined;
  const started = performance.now();
  try {
    for (const t of pgTargets) pools[t] = await connect(t, vars[URL_VAR[t]]!);
    if (targets.includes('clickhouse')) olap = await openOlap(env);
    const applied = await migrateAll({ ...pools, olap }, (message, fields) => {
      if (message === 'applying migration') out.progress(`applying ${String(fields?.file ?? '').replace(/^.*\/(infra\/)/, '$1')}`);
      else out.progress(`${message} ${fields ? JSON.stringify(fields) : ''}`);
    });
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    out.json({ applied });
    for (const t of targets) {
      const names = applied.filter((a) => a.target === t).map((a) => a.name);
      out.line(`${pc.green('✔')} ${t.padEnd(10)} ${names.length ? `${names.length} applied: ${names.join(', ')}` : pc.dim('up to date')}`);
    }
    out.line(`${applied.length} migration${applied.length === 1 ? '' : 's'} applied in ${secs} s`);
    return applied;
  } finally {
    await olap?.close();
    await closeAll(Object.values(pools));
  }
}
