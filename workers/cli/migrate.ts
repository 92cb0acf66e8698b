/**
 * `bionic migrate [targets…]`: applies pending migrations with the worker's runner
 * (workers/db/migrate.ts): forward-only, checksummed, serialised by an advisory lock, so running it
 * next to starting workers, or twice, is safe. With `REGIONS` set, `crm`, `telemetry` and
 * `clickhouse` also cover every region's database (`REGION_<ID>_…`), reported as `crm_<id>` and so on.
 */
import pc from 'picocolors';
import type postgres from 'postgres';
import type { Env } from '../../shared/config.ts';
import { ConfigError } from '../../shared/config-fields.ts';
import { regionsConfigOf, regionsEnv, type Region } from '../../shared/regions/config.ts';
import { ChdbDirectoryInUseError, createClickHouseOlap, type ClickHouseOlap } from '../adapters/olap-clickhouse.ts';
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

/** The regions `REGIONS` lists, with their databases (none without `REGIONS`); bad variables are a usage error. */
function regionsOf(env: Env): Region[] {
  const ids = regionsEnv.REGIONS.safeParse(env.REGIONS || undefined);
  if (!ids.success) throw new CliError(`REGIONS ${ids.error.issues[0]?.message ?? 'is invalid'}`, EXIT.USAGE);
  if (!ids.data) return [];
  try {
    return regionsConfigOf(env, 'worker', ids.data, { reportsBucket: 'reports', s3Region: 'unused', clickhouseDatabase: env.CLICKHOUSE_DATABASE || 'bionic' }).regions;
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.USAGE, { cause: err });
    throw err;
  }
}

async function openOlap(env: Env): Promise<ClickHouseOlap> {
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

/** One applied migration; `database` names a region's (`crm_ru`, `clickhouse_ru`) or is the target itself. */
export interface MigrateResult extends AppliedMigration { database: string }

/** Runs the migrations of `targets` (and of every region's databases) and reports them on `out`. */
export async function migrate(targets: readonly MigrationTarget[], env: Env, out: Output): Promise<MigrateResult[]> {
  const pgTargets = targets.filter((t): t is Exclude<MigrationTarget, 'clickhouse'> => t !== 'clickhouse');
  // Every variable is checked before anything connects, so one run names every problem.
  const vars = requireVars(env, pgTargets.map((t) => URL_VAR[t]));
  const regions = regionsOf(env);
  const pools: postgres.Sql[] = [];
  let olap: ClickHouseOlap | undefined;
  const started = performance.now();
  const log = (message: string, fields?: Record<string, unknown>) => {
    if (message === 'applying migration') out.progress(`applying ${String(fields?.file ?? '').replace(/^.*\/(infra\/)/, '$1')}`);
    else out.progress(`${message} ${fields ? JSON.stringify(fields) : ''}`);
  };
  try {
    const open = async (t: Exclude<MigrationTarget, 'clickhouse'>, url: string) => { const sql = await connect(t, url); pools.push(sql); return sql; };
    const applied: MigrateResult[] = [];
    const run = async (suffix: string, targets: Parameters<typeof migrateAll>[0]) => {
      for (const a of await migrateAll(targets, log)) applied.push({ ...a, database: `${a.target}${suffix}` });
    };
    const central: Parameters<typeof migrateAll>[0] = {};
    for (const t of pgTargets) central[t] = await open(t, vars[URL_VAR[t]]!);
    if (targets.includes('clickhouse')) central.olap = olap = await openOlap(env);
    await run('', central);
    for (const r of regions) {
      const regional: Parameters<typeof migrateAll>[0] = {};
      if (targets.includes('crm')) regional.crm = await open('crm', r.crmDatabaseUrl!);
      if (targets.includes('telemetry')) regional.telemetry = await open('telemetry', r.telemetryDatabaseUrl!);
      if (olap) regional.olap = olap.withDatabase(r.clickhouseDatabase!);
      await run(`_${r.id}`, regional);
    }
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    out.json({ applied });
    const databases = targets.flatMap((t) => [t, ...(t === 'platform' ? [] : regions.map((r) => `${t}_${r.id}`))]);
    const width = Math.max(10, ...databases.map((d) => d.length));
    for (const d of databases) {
      const names = applied.filter((a) => a.database === d).map((a) => a.name);
      out.line(`${pc.green('✔')} ${d.padEnd(width)} ${names.length ? `${names.length} applied: ${names.join(', ')}` : pc.dim('up to date')}`);
    }
    out.line(`${applied.length} migration${applied.length === 1 ? '' : 's'} applied in ${secs} s`);
    return applied;
  } finally {
    await olap?.close();
    await closeAll(pools);
  }
}
