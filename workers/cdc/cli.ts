/**
 * `node --import tsx workers/cdc/cli.ts <command>`: run CDC in the foreground, show its status,
 * resync one table, or drop the slot. With `REGIONS`, CDC runs per region (shared/cdc/regions.ts):
 * `start` runs every region's, the other commands act on the one `--region` names.
 * Exit codes: 0 done, 1 failed, 2 bad usage or configuration.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { z } from 'zod';
import { busConfigOf, busEnv } from '../../shared/bus/config.ts';
import { bionicCodec } from '../../shared/bus/topics.ts';
import { ConfigError } from '../../shared/config.ts';
import { cdcRegionsOf, CdcRegionError, chooseCdcRegion, type RegionCdc } from '../../shared/cdc/regions.ts';
import { findRegion, regionsConfigOf, regionsEnv, type RegionsConfig } from '../../shared/regions/config.ts';
import { createLogger } from '../../shared/log.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import { ChdbDirectoryInUseError, createClickHouseOlap, type ClickHouseOlap } from '../adapters/olap-clickhouse.ts';
import { createBus, loadTopicSpecs } from '../bus/index.ts';
import { MIGRATION_DIRS, migratePostgres } from '../db/migrate.ts';
import { cdcConfigOf, cdcEnv, type CdcOptions } from '../../shared/cdc/config.ts';
import { parseLsn } from './lsn.ts';
import { startRegionalCdc } from './regions.ts';
import { Replica } from './replica.ts';
import { CrmSource, SIGNAL_PREFIX } from './source.ts';

const HELP = `Usage: node --import tsx workers/cdc/cli.ts <command> [options]

Change data capture: CRM PostgreSQL → bus → ClickHouse replicas crm_<table> (README: "Change data capture").

Commands:
  start             run capture and sink in the foreground until SIGINT/SIGTERM
                    (for when the worker runs with CDC_ENABLED=false: chDB lets one process use its directory)
  status [--json]   the slot (lag, retained WAL) and, when ClickHouse is reachable, every table's state
  resync <table>    reload <table> into its replica at a consistent point, rebuilding it if its schema
                    changed (a quarantined table); the running capture does the work
      --wait          wait until the capture has taken the request
  drop-slot         drop the replication slot and the publication; the next start loads every table again
      --force         end the session that holds the slot first
      --keep-publication
  --region <id>     the region whose CDC status, resync and drop-slot act on: required for resync and
                    drop-slot when REGIONS lists several (each region has its own slot <CDC_SLOT>_<id>);
                    status without it shows every region (a JSON array with --json); start runs them all
  -h, --help        show this help

Environment:
  CRM_DATABASE_URL        the CRM database (wal_level=logical, a role with REPLICATION); without REGIONS only
  REGIONS, REGION_<ID>_CRM_DATABASE_URL, REGION_<ID>_CLICKHOUSE_DATABASE, …
                          regions (README "Data residency"): each region's CRM is captured into its own
                          ClickHouse database; the central CRM is not captured
  PLATFORM_DATABASE_URL   the bus (start)
  CLICKHOUSE_URL          a ClickHouse server; unset: chDB in CHDB_PATH (default ./data/chdb)
  CLICKHOUSE_USER, CLICKHOUSE_PASSWORD, CLICKHOUSE_DATABASE (default bionic), LOG_LEVEL
  CDC_SLOT, CDC_PUBLICATION, CDC_TABLES, CDC_HEARTBEAT_MS, CDC_LAG_ALERT_SECONDS, CDC_LAG_ALERT_BYTES,
  CDC_BATCH_MAX, CDC_ACK_INTERVAL_MS, CDC_SINK_GROUP, CDC_ROLE, CDC_SNAPSHOT_SOURCE_URL, and the bus's
  KAFKA_* / BUS_* variables (README: "Event bus")
`;

const envSchema = z.object({
  ...busEnv,
  ...cdcEnv,
  ...regionsEnv,
  // Required without REGIONS only (cdcRegionsOf says so).
  CRM_DATABASE_URL: z.string().url().optional(),
  PLATFORM_DATABASE_URL: z.string().url().optional(),
  CLICKHOUSE_URL: z.string().url().optional(),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: z.string().default(''),
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('bionic'),
  CHDB_PATH: z.string().min(1).default('./data/chdb'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
});
type Env = z.output<typeof envSchema>;

/** The environment as parsed, and the regions read from it like the worker's. */
interface Setup { env: Env; options: CdcOptions; regions: RegionsConfig; plans: RegionCdc[] }

function usage(message: string): never {
  process.stderr.write(`error: ${message}\n\n${HELP}`);
  process.exit(2);
}

function readSetup(): Setup {
  const cleaned = Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v !== '')) as Record<string, string>;
  const r = envSchema.safeParse(cleaned);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => ({ variable: String(i.path[0]), message: i.message })));
  const env = r.data;
  const regions = regionsConfigOf(cleaned, 'worker', env.REGIONS, {
    crmDatabaseUrl: env.CRM_DATABASE_URL, clickhouseDatabase: env.CLICKHOUSE_DATABASE, reportsBucket: 'reports', s3Region: 'us-east-1',
  });
  const { options } = cdcConfigOf(env);
  return { env, options, regions, plans: cdcRegionsOf(options, regions) };
}

/** The CDC of the region `--region` names (optional with one region). */
function planOf(s: Setup, region: string | undefined): RegionCdc {
  try {
    const id = chooseCdcRegion(s.plans.map((p) => p.region), region);
    return s.plans.find((p) => p.region === id)!;
  } catch (err) {
    if (!(err instanceof CdcRegionError)) throw err;
    usage(err.reason === 'REGION_REQUIRED' ? `--region is required: ${err.message}` : err.message);
  }
}

const openOlap = (e: Env): Promise<ClickHouseOlap> => createClickHouseOlap({
  url: e.CLICKHOUSE_URL, user: e.CLICKHOUSE_USER, password: e.CLICKHOUSE_PASSWORD, database: e.CLICKHOUSE_DATABASE, chdbPath: e.CHDB_PATH,
});

/** A region's ClickHouse database, as the worker's region stores see it (workers/regions/stores.ts). */
const regionOlap = (olap: ClickHouseOlap, regions: RegionsConfig, id: string): Olap =>
  regions.implicit ? olap : olap.withDatabase(findRegion(regions, id)!.clickhouseDatabase!);

async function start({ env: e, options, regions }: Setup): Promise<void> {
  if (!e.PLATFORM_DATABASE_URL) throw new ConfigError([{ variable: 'PLATFORM_DATABASE_URL', message: 'is required by start (the bus lives there)' }]);
  const log = createLogger({ level: e.LOG_LEVEL, base: { service: 'cdc', pid: process.pid } });
  const platform = postgres(e.PLATFORM_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await migratePostgres(platform, MIGRATION_DIRS.platform); // the bus's tables
  } finally {
    await platform.end();
  }
  const olap = await openOlap(e);
  const topics = await loadTopicSpecs();
  const bus = await createBus(busConfigOf(e), { platformUrl: e.PLATFORM_DATABASE_URL, codec: bionicCodec, log, topics });
  const cdc = await startRegionalCdc({
    regions: { config: regions, get: (id) => ({ olap: regionOlap(olap, regions, id) }) }, bus, log, options, topics,
  });
  log.notice('cdc running; stop with Ctrl-C', { regions: cdc.regions });
  await new Promise<void>((resolve) => {
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve());
  });
  log.notice('cdc stopping');
  await cdc.stop();
  await bus.close();
  await olap.close();
}

/** Every region's status without `--region` (an array with `--json`), one region's with it. */
async function statuses(s: Setup, region: string | undefined, json: boolean): Promise<void> {
  const plans = region === undefined && s.plans.length > 1 ? s.plans : [planOf(s, region)];
  const all = [];
  for (const plan of plans) all.push(await status(s, plan));
  process.stdout.write(json
    ? JSON.stringify(plans.length > 1 ? all.map((a) => a.json) : all[0]!.json, null, 2) + '\n'
    : all.map((a) => a.text).join('\n\n') + '\n');
}

async function status(s: Setup, { region, crmUrl, options }: RegionCdc): Promise<{ json: unknown; text: string }> {
  const e = s.env;
  const source = new CrmSource(crmUrl, options);
  try {
    const [slot, published] = await Promise.all([source.slot(), source.publicationTables()]);
    let tables: unknown = null;
    let note: string | null = null;
    try {
      if (!e.CLICKHOUSE_URL && !existsSync(e.CHDB_PATH)) throw new Error(`no chDB directory at ${e.CHDB_PATH}`);
      const olap = await openOlap(e);
      try {
        const replica = new Replica(regionOlap(olap, s.regions, region));
        await replica.init();
        tables = [...(await replica.states()).values()].map((t) => ({ table: t.table, status: t.status, reason: t.reason, snapshotRows: t.snapshotRows }));
      } finally {
        await olap.close();
      }
    } catch (err) {
      note = err instanceof ChdbDirectoryInUseError
        ? 'table states: chDB is open in the running worker; ask it through cdc.status'
        : `table states unavailable: ${(err as Error).message}`;
    }
    const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    const out = [
      ...(s.regions.implicit ? [] : [`region ${region}`]),
      slot
        ? `slot ${slot.name}: ${slot.active ? `active (pid ${slot.activePid})` : 'inactive'}, confirmed ${slot.confirmedFlushLsn}, wal_status ${slot.walStatus}\n` +
          `  lag ${mb(slot.lagBytes)} behind ${slot.currentLsn}, retained WAL ${mb(slot.retainedBytes)}`
        : `slot ${options.slot}: does not exist (the next start creates it and loads every table)`,
      `publication ${options.publication}: ${published ? published.join(', ') || '(no tables)' : 'does not exist'}`,
      ...(Array.isArray(tables) ? tables.map((t) => `  ${t.table.padEnd(24)} ${t.status.padEnd(12)} ${t.snapshotRows ?? ''} ${t.reason ?? ''}`.trimEnd()) : []),
      ...(note ? [note] : []),
    ];
    return { json: { region, slot, publication: published, tables, note }, text: out.join('\n') };
  } finally {
    await source.close();
  }
}

async function resync({ crmUrl, options }: RegionCdc, table: string, wait: boolean): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) usage(`not a table name: ${table}`);
  const source = new CrmSource(crmUrl, options);
  try {
    const published = await source.publicationTables();
    if (!published?.includes(table)) throw new Error(`${table} is not captured (publication ${options.publication}: ${published?.join(', ') ?? 'missing'})`);
    const at = await source.signal([{ type: 'resync', table, id: crypto.randomUUID() }]);
    process.stdout.write(`resync of ${table} requested at ${at} (${SIGNAL_PREFIX}); the capture reloads it in the background\n`);
    if (!wait) return;
    for (;;) {
      const slot = await source.slot();
      if (slot?.confirmedFlushLsn && parseLsn(slot.confirmedFlushLsn) > parseLsn(at)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    process.stdout.write('taken: the snapshot point is recorded; `status` shows the table as snapshotting, then streaming\n');
  } finally {
    await source.close();
  }
}

async function dropSlot({ crmUrl, options }: RegionCdc, force: boolean, keepPublication: boolean): Promise<void> {
  const source = new CrmSource(crmUrl, options);
  try {
    const dropped = await source.dropSlot({ force });
    process.stdout.write(dropped ? `dropped replication slot ${options.slot}\n` : `no replication slot ${options.slot}\n`);
    if (!keepPublication) {
      await source.dropPublication();
      process.stdout.write(`dropped publication ${options.publication}\n`);
    }
    process.stdout.write('the next start creates a new slot and reloads every table in place\n');
  } finally {
    await source.close();
  }
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, wait: { type: 'boolean' }, force: { type: 'boolean' },
        'keep-publication': { type: 'boolean' }, region: { type: 'string' },
      },
      allowPositionals: true, strict: true,
    });
  } catch (err) {
    usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || !command) {
    process.stdout.write(HELP);
    if (!command && !values.help) process.exit(2);
    return;
  }
  if (!['start', 'status', 'resync', 'drop-slot'].includes(command)) usage(`unknown command: ${command}`);
  const setup = readSetup();
  switch (command) {
    case 'start':
      if (values.region !== undefined) usage('start runs the CDC of every region; --region applies to status, resync and drop-slot');
      return start(setup);
    case 'status': return statuses(setup, values.region, values.json ?? false);
    case 'resync': if (args.length !== 1) usage('resync takes one table name'); return resync(planOf(setup, values.region), args[0]!, values.wait ?? false);
    case 'drop-slot': return dropSlot(planOf(setup, values.region), values.force ?? false, values['keep-publication'] ?? false);
    default: usage(`unknown command: ${command}`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    // A configuration problem is a usage error (2); anything else failed (1). The stack is for debugging only.
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    const debug = process.env.LOG_LEVEL === 'debug';
    process.stderr.write(`error: ${debug ? (err as Error).stack ?? err : (err as Error).message ?? err}\n`);
    process.exit(1);
  },
);
