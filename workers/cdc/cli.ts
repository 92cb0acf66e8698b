/**
 * `node --import tsx workers/cdc/cli.ts <command>`: run CDC in the foreground, show its status,
 * resync one table, or drop the slot. Exit codes: 0 done, 1 failed, 2 bad usage or configuration.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { z } from 'zod';
import { busConfigOf, busEnv } from '../../shared/bus/config.ts';
import { bionicCodec } from '../../shared/bus/topics.ts';
import { ConfigError } from '../../shared/config.ts';
import { createLogger } from '../../shared/log.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import { ChdbDirectoryInUseError, createClickHouseOlap } from '../adapters/olap-clickhouse.ts';
import { createBus, loadTopicSpecs } from '../bus/index.ts';
import { MIGRATION_DIRS, migratePostgres } from '../db/migrate.ts';
import { cdcConfigOf, cdcEnv, type CdcOptions } from '../../shared/cdc/config.ts';
import { startCdc } from './index.ts';
import { parseLsn } from './lsn.ts';
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
  -h, --help        show this help

Environment:
  CRM_DATABASE_URL        the CRM database (wal_level=logical, a role with REPLICATION)
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
  CRM_DATABASE_URL: z.string().url(),
  PLATFORM_DATABASE_URL: z.string().url().optional(),
  CLICKHOUSE_URL: z.string().url().optional(),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: z.string().default(''),
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('bionic'),
  CHDB_PATH: z.string().min(1).default('./data/chdb'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
});
type Env = z.output<typeof envSchema>;

function usage(message: string): never {
  process.stderr.write(`error: ${message}\n\n${HELP}`);
  process.exit(2);
}

function readEnv(): Env {
  const cleaned = Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v !== ''));
  const r = envSchema.safeParse(cleaned);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => ({ variable: String(i.path[0]), message: i.message })));
  return r.data;
}

const openOlap = (e: Env): Promise<Olap> => createClickHouseOlap({
  url: e.CLICKHOUSE_URL, user: e.CLICKHOUSE_USER, password: e.CLICKHOUSE_PASSWORD, database: e.CLICKHOUSE_DATABASE, chdbPath: e.CHDB_PATH,
});

async function start(e: Env, options: CdcOptions): Promise<void> {
  if (!e.PLATFORM_DATABASE_URL) throw new ConfigError([{ variable: 'PLATFORM_DATABASE_URL', message: 'is required by start (the bus lives there)' }]);
  const log = createLogger({ level: e.LOG_LEVEL, base: { service: 'cdc', pid: process.pid } });
  const platform = postgres(e.PLATFORM_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await migratePostgres(platform, MIGRATION_DIRS.platform); // the bus's tables
  } finally {
    await platform.end();
  }
  const olap = await openOlap(e);
  const bus = await createBus(busConfigOf(e), { platformUrl: e.PLATFORM_DATABASE_URL, codec: bionicCodec, log, topics: await loadTopicSpecs() });
  const cdc = await startCdc({ crmUrl: e.CRM_DATABASE_URL, olap, bus, log, options });
  log.notice('cdc running; stop with Ctrl-C');
  await new Promise<void>((resolve) => {
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve());
  });
  log.notice('cdc stopping');
  await cdc.stop();
  await bus.close();
  await olap.close();
}

async function status(e: Env, options: CdcOptions, json: boolean): Promise<void> {
  const source = new CrmSource(e.CRM_DATABASE_URL, options);
  try {
    const [slot, published] = await Promise.all([source.slot(), source.publicationTables()]);
    let tables: unknown = null;
    let note: string | null = null;
    try {
      if (!e.CLICKHOUSE_URL && !existsSync(e.CHDB_PATH)) throw new Error(`no chDB directory at ${e.CHDB_PATH}`);
      const olap = await openOlap(e);
      try {
        const replica = new Replica(olap);
        await replica.init();
        tables = [...(await replica.states()).values()].map((s) => ({ table: s.table, status: s.status, reason: s.reason, snapshotRows: s.snapshotRows }));
      } finally {
        await olap.close();
      }
    } catch (err) {
      note = err instanceof ChdbDirectoryInUseError
        ? 'table states: chDB is open in the running worker; ask it through cdc.status'
        : `table states unavailable: ${(err as Error).message}`;
    }
    if (json) {
      process.stdout.write(JSON.stringify({ slot, publication: published, tables, note }, null, 2) + '\n');
      return;
    }
    const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
    const out = [
      slot
        ? `slot ${slot.name}: ${slot.active ? `active (pid ${slot.activePid})` : 'inactive'}, confirmed ${slot.confirmedFlushLsn}, wal_status ${slot.walStatus}\n` +
          `  lag ${mb(slot.lagBytes)} behind ${slot.currentLsn}, retained WAL ${mb(slot.retainedBytes)}`
        : `slot ${options.slot}: does not exist (the next start creates it and loads every table)`,
      `publication ${options.publication}: ${published ? published.join(', ') || '(no tables)' : 'does not exist'}`,
      ...(Array.isArray(tables) ? tables.map((t) => `  ${t.table.padEnd(24)} ${t.status.padEnd(12)} ${t.snapshotRows ?? ''} ${t.reason ?? ''}`.trimEnd()) : []),
      ...(note ? [note] : []),
    ];
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await source.close();
  }
}

async function resync(e: Env, options: CdcOptions, table: string, wait: boolean): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) usage(`not a table name: ${table}`);
  const source = new CrmSource(e.CRM_DATABASE_URL, options);
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

async function dropSlot(e: Env, options: CdcOptions, force: boolean, keepPublication: boolean): Promise<void> {
  const source = new CrmSource(e.CRM_DATABASE_URL, options);
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
      options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, wait: { type: 'boolean' }, force: { type: 'boolean' }, 'keep-publication': { type: 'boolean' } },
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
  const env = readEnv();
  const { options } = cdcConfigOf(env);
  switch (command) {
    case 'start': return start(env, options);
    case 'status': return status(env, options, values.json ?? false);
    case 'resync': if (args.length !== 1) usage('resync takes one table name'); return resync(env, options, args[0]!, values.wait ?? false);
    case 'drop-slot': return dropSlot(env, options, values.force ?? false, values['keep-publication'] ?? false);
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
