/**
 * What the CDC suites and benchmark run against: one embedded PostgreSQL (wal_level=logical) with
 * the `crm` and `platform` databases migrated, a chDB directory, the PostgreSQL bus, a way to await
 * CDC's progress events, and an exact comparison of CRM tables with their ClickHouse replicas.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { startPostgres, type PostgresService } from '../../infra/dev/services/postgres.ts';
import { bionicCodec, type BionicTopics } from '../../shared/bus/topics.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import { createClickHouseOlap } from '../../workers/adapters/olap-clickhouse.ts';
import { createPostgresBus, WORKER_COPY_MIN_BYTES, type PostgresBus, type PostgresBusOptions } from '../../workers/bus/postgres-bus.ts';
import type { CdcEvent } from '../../workers/cdc/index.ts';
import { parseLsn } from '../../workers/cdc/lsn.ts';
import { migratePostgres, MIGRATION_DIRS } from '../../workers/db/migrate.ts';

export interface CdcDatabases {
  dir: string;
  pg: PostgresService;
  crmUrl: string;
  platformUrl: string;
  /** The test's own pool on the CRM database. */
  crm: postgres.Sql;
  chdbPath: string;
  /** `pg_current_wal_lsn()` now: once CDC acknowledges past it, every earlier commit is in ClickHouse. */
  walPosition(): Promise<bigint>;
  stop(): Promise<void>;
}

export async function startCdcDatabases(name: string): Promise<CdcDatabases> {
  const dir = await mkdtemp(join(tmpdir(), `bionic-${name}-`));
  const pg = await startPostgres({ dataDir: join(dir, 'pg') });
  await pg.ensureDatabase('crm');
  await pg.ensureDatabase('platform');
  const crmUrl = pg.databaseUrl('crm');
  const platformUrl = pg.databaseUrl('platform');
  const crm = postgres(crmUrl, { max: 8, onnotice: () => {} });
  const platform = postgres(platformUrl, { max: 1, onnotice: () => {} });
  await migratePostgres(crm, MIGRATION_DIRS.crm);
  await migratePostgres(platform, MIGRATION_DIRS.platform);
  await platform.end();
  return {
    dir, pg, crmUrl, platformUrl, crm, chdbPath: join(dir, 'chdb'),
    walPosition: async () => parseLsn((await crm`SELECT pg_current_wal_lsn()::text AS l`)[0]!.l as string),
    async stop() {
      await crm.end({ timeout: 5 });
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const openOlap = (chdbPath: string): Promise<Olap> =>
  createClickHouseOlap({ user: 'default', password: '', database: 'bionic', chdbPath });

/** The bus CDC runs on in these suites, COPY as in the workers' bus; `o` overrides (e.g. a lower `copyMinBytes`). */
export const openBus = (platformUrl: string, o: Pick<PostgresBusOptions<BionicTopics>, 'copyMinBytes'> = {}): Promise<PostgresBus<BionicTopics>> =>
  createPostgresBus<BionicTopics>({
    url: platformUrl, codec: bionicCodec, retention: false, defaultPartitions: 4, rebalanceIntervalMs: 200, pollIntervalMs: 1_000,
    copyMinBytes: WORKER_COPY_MIN_BYTES, ...o,
  });

/** Collects CDC events; `until` resolves when one matches, or fails loudly after a timeout. */
export class CdcEvents {
  readonly seen: CdcEvent[] = [];
  private waiters: { test: (e: CdcEvent) => boolean; resolve: (e: CdcEvent) => void }[] = [];

  readonly push = (e: CdcEvent): void => {
    this.seen.push(e);
    if (this.seen.length > 20_000) this.seen.splice(0, 10_000);
    this.waiters = this.waiters.filter((w) => (w.test(e) ? (w.resolve(e), false) : true));
  };

  until<E extends CdcEvent>(test: (e: CdcEvent) => e is E, what: string, timeoutMs?: number): Promise<E>;
  until(test: (e: CdcEvent) => boolean, what: string, timeoutMs?: number): Promise<CdcEvent>;
  until(test: (e: CdcEvent) => boolean, what: string, timeoutMs = 60_000): Promise<CdcEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      this.waiters.push({ test, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  }

  /** Resolves once the slot is acknowledged past `lsn`: everything committed before it is in ClickHouse. */
  acknowledgedPast(lsn: bigint, timeoutMs = 60_000): Promise<CdcEvent> {
    return this.until((e) => e.type === 'acknowledged' && parseLsn(e.lsn) >= lsn, `acknowledgement past ${lsn}`, timeoutMs);
  }
}

/** CRM rows in a canonical text form: PostgreSQL side. */
async function pgRows(crm: postgres.Sql, table: string): Promise<{ columns: string[]; rows: Map<string, string> }> {
  const cols = await crm<{ name: string; type: string; pk: boolean }[]>`
    SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
      EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey)) AS pk
    FROM pg_attribute a WHERE a.attrelid = ${`public.${table}`}::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`;
  const expr = (c: { name: string; type: string }) => {
    const q = `"${c.name}"`;
    if (c.type === 'timestamp with time zone') return `to_char(${q} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`;
    if (c.type === 'timestamp without time zone') return `to_char(${q}, 'YYYY-MM-DD HH24:MI:SS.US')`;
    if (c.type === 'date') return `to_char(${q}, 'YYYY-MM-DD')`;
    if (c.type === 'boolean') return `CASE WHEN ${q} THEN 'true' WHEN NOT ${q} THEN 'false' END`;
    return `${q}::text`;
  };
  const rows = await crm.unsafe(`SELECT ${cols.map((c) => `${expr(c)} AS "${c.name}"`).join(', ')} FROM public."${table}"`);
  const kinds = cols.map((c) => c.type);
  return { columns: cols.map((c) => c.name), rows: keyed(rows as Record<string, string | null>[], cols.map((c) => c.name), cols.filter((c) => c.pk).map((c) => c.name), kinds) };
}

function norm(v: string | null, type: string): string | null {
  if (v === null) return null;
  if (/^(numeric|double precision|real)/.test(type) && /^-?\d/.test(v)) {
    return type.startsWith('numeric') ? v.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '') : String(Number(v));
  }
  return v;
}

function keyed(rows: Record<string, string | null>[], columns: string[], pk: string[], kinds: string[]): Map<string, string> {
  return new Map(rows.map((r) => [
    JSON.stringify(pk.map((k) => r[k])),
    JSON.stringify(columns.map((c, i) => norm(r[c] ?? null, kinds[i]!))),
  ]));
}

/** Compares a CRM table with `crm_<table> FINAL` row by row on the CRM's columns; empty arrays mean equal. */
export async function diffReplica(crm: postgres.Sql, olap: Olap, table: string) {
  const pg = await pgRows(crm, table);
  const types = await crm<{ name: string; type: string }[]>`
    SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
    WHERE a.attrelid = ${`public.${table}`}::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`;
  const pk = (await crm<{ name: string }[]>`
    SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
    WHERE i.indrelid = ${`public.${table}`}::regclass AND i.indisprimary`).map((r) => r.name);
  const ch = await olap.query<Record<string, string | null>>(
    `SELECT ${pg.columns.map((c) => `toString(\`${c}\`) AS \`${c}\``).join(', ')} FROM crm_${table} FINAL`);
  const chRows = keyed(ch.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : String(v)]))), pg.columns, pk, types.map((t) => t.type));
  const missing: string[] = [];
  const different: string[] = [];
  for (const [k, v] of pg.rows) {
    const got = chRows.get(k);
    if (got === undefined) missing.push(`${k} ${v}`);
    else if (got !== v) different.push(`${k}\n  crm: ${v}\n  ch:  ${got}`);
  }
  const extra = [...chRows.keys()].filter((k) => !pg.rows.has(k)).map((k) => `${k} ${chRows.get(k)}`);
  return { rows: pg.rows.size, missing: missing.slice(0, 5), extra: extra.slice(0, 5), different: different.slice(0, 5), counts: { missing: missing.length, extra: extra.length, different: different.length } };
}
