/**
 * The migration runner against embedded PostgreSQL and chDB: the repository's migrations apply to
 * fresh databases, re-runs are no-ops, edited migrations are refused, failures roll back, and
 * concurrent runners take turns. Also the telemetry partition helper the schema ships.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresService } from '../infra/dev/services/postgres.ts';
import type { Olap } from '../shared/ports/olap.ts';
import { createClickHouseOlap } from '../workers/adapters/olap-clickhouse.ts';
import { createPostgresOltp } from '../workers/adapters/oltp-postgres.ts';
import {
  MIGRATION_DIRS, MigrationError, migrateAll, migrateClickHouse, migratePostgres, readMigrations, splitStatements,
} from '../workers/db/migrate.ts';

let dir: string;
let pg: PostgresService;
let olap: Olap;
const clients: postgres.Sql[] = [];

/** A fresh database and a client for it (closed in afterAll). */
async function freshDb(name: string, max = 3): Promise<postgres.Sql> {
  await pg.ensureDatabase(name);
  const sql = postgres(pg.databaseUrl(name), { max, onnotice: () => {} });
  clients.push(sql);
  return sql;
}

async function migrationDir(name: string, files: Record<string, string>): Promise<string> {
  const d = join(dir, name);
  await mkdir(d, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(d, file), text);
  return d;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'migrate-test-'));
  pg = await startPostgres({ dataDir: join(dir, 'pg') });
  olap = await createClickHouseOlap({ user: 'default', password: '', database: 'migrate_test', chdbPath: join(dir, 'chdb') });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.end({ timeout: 5 })));
  await olap?.close();
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('repository migrations', () => {
  let crm: postgres.Sql, telemetry: postgres.Sql;
  let platform: ReturnType<typeof createPostgresOltp>;

  beforeAll(async () => {
    crm = await freshDb('crm');
    telemetry = await freshDb('telemetry');
    await pg.ensureDatabase('platform');
    platform = createPostgresOltp(pg.databaseUrl('platform'), { max: 2 });
  });
  afterAll(async () => {
    await platform?.close();
  });

  it('apply to fresh databases, every file once, in order', async () => {
    const logged: string[] = [];
    const applied = await migrateAll({ crm, telemetry, platform, olap }, (m, f) => logged.push(`${m} ${String(f?.file)}`));
    const expected = [];
    for (const [target, d] of [['crm', MIGRATION_DIRS.crm], ['telemetry', MIGRATION_DIRS.telemetry], ['platform', MIGRATION_DIRS.platform], ['clickhouse', MIGRATION_DIRS.clickhouse]] as const) {
      for (const f of await readMigrations(d)) expected.push({ target, name: f.name });
    }
    expect(applied).toEqual(expected);
    expect(logged).toHaveLength(expected.length);
    expect(logged[0]).toContain('crm/001_init.sql');

    const tables = async (sql: postgres.Sql) =>
      (await sql<{ t: string }[]>`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'`).map((r) => r.t);
    expect(await tables(crm)).toEqual(expect.arrayContaining(
      ['customers', 'prosthesis_models', 'prostheses', 'orders', 'customer_accounts', 'audit_log', 'schema_migrations'],
    ));
    expect(await tables(telemetry)).toEqual(expect.arrayContaining(['telemetry_events_default', 'telemetry_batches']));
    const [partitioned] = await telemetry`SELECT relkind FROM pg_class WHERE relname = 'telemetry_events'`;
    expect(partitioned!.relkind).toBe('p');
    expect(await platform.query("SELECT to_regclass('audit_events') IS NOT NULL AS ok")).toEqual([{ ok: true }]);
    // CDC keys every CRM table by its primary key.
    const withoutPk = await crm`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'r'
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')`;
    expect(withoutPk).toEqual([]);
    expect(await olap.query("SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'user_prosthesis_stats'"))
      .toEqual([{ engine: 'ReplacingMergeTree' }]);
    const recorded = await crm<{ name: string; checksum: string }[]>`SELECT name, checksum FROM schema_migrations`;
    expect(recorded.map((r) => r.name)).toContain('001_init.sql');
    expect(recorded[0]!.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('apply nothing on a second run', async () => {
    expect(await migrateAll({ crm, telemetry, platform, olap })).toEqual([]);
  });

  it('enforce the CRM constraints the saga and CDC rely on', async () => {
    await crm`INSERT INTO customers (id, username, full_name, email) VALUES (1, 'user1', 'A B', 'a@example.com')`;
    await expect(crm`INSERT INTO customers (username, full_name, email) VALUES ('user2', 'C D', 'A@EXAMPLE.COM')`)
      .rejects.toMatchObject({ code: '23505' });
    await crm`INSERT INTO prosthesis_models (id, name, kind, manufacturer, price) VALUES (1, 'M', 'hand', 'X', 100)`;
    await expect(crm`INSERT INTO orders (customer_id, model_id, status, price) VALUES (1, 1, 'SHIPPED', 1)`)
      .rejects.toMatchObject({ code: '23514' });
    await expect(crm`INSERT INTO customer_accounts (customer_id, balance) VALUES (1, -1)`).rejects.toMatchObject({ code: '23514' });
    await expect(crm`INSERT INTO prostheses (chip_id, model_id, customer_id, serial) VALUES ('CHIP-1', 1, 999, 'S1')`)
      .rejects.toMatchObject({ code: '23503' });
    const [o] = await crm`INSERT INTO orders (customer_id, model_id, price, idempotency_key) VALUES (1, 1, 10, 'k1') RETURNING status, version`;
    expect(o).toEqual({ status: 'DRAFT', version: 1 });
    await expect(crm`INSERT INTO orders (customer_id, model_id, price, idempotency_key) VALUES (1, 1, 10, 'k1')`)
      .rejects.toMatchObject({ code: '23505' });
  });

  it('ship an idempotent monthly partition helper that rescues rows from the default partition', async () => {
    await telemetry`SET TIME ZONE 'Asia/Tokyo'`; // bounds must still be UTC months
    await telemetry`INSERT INTO telemetry_events (chip_id, ts, kind, battery_pct) VALUES ('C1', '2031-03-31T23:30:00Z', 'status', 50)`;
    const where = async () => (await telemetry`SELECT tableoid::regclass::text AS p FROM telemetry_events WHERE chip_id = 'C1'`)[0]!.p;
    expect(await where()).toBe('telemetry_events_default');
    const [first] = await telemetry`SELECT telemetry_ensure_partitions('2031-02-15', '2031-04-01') AS n`;
    expect(first!.n).toBe(3);
    expect(await where()).toBe('telemetry_events_y2031m03');
    const [again] = await telemetry`SELECT telemetry_ensure_partitions('2031-02-01', '2031-04-30') AS n`;
    expect(again!.n).toBe(0);
    await expect(telemetry`INSERT INTO telemetry_events (chip_id, ts, kind) VALUES ('C1', now(), 'error')`)
      .rejects.toMatchObject({ code: '23514' }); // an error event needs its error code
  });
});

describe('migration runner', () => {
  it('refuses to run when an applied PostgreSQL migration changed, naming the file', async () => {
    const sql = await freshDb('mig_checksum');
    const d = await migrationDir('pg-checksum', { '001_a.sql': 'CREATE TABLE a (id int PRIMARY KEY);\n' });
    expect(await migratePostgres(sql, d)).toEqual(['001_a.sql']);
    await writeFile(join(d, '001_a.sql'), 'CREATE TABLE a (id bigint PRIMARY KEY);\n');
    await writeFile(join(d, '002_b.sql'), 'CREATE TABLE b (id int PRIMARY KEY);\n');
    const err = await migratePostgres(sql, d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).file).toBe(join(d, '001_a.sql'));
    expect((err as Error).message).toContain('001_a.sql');
    expect((await sql`SELECT to_regclass('b') AS b`)[0]!.b).toBeNull();
  });

  it('refuses to run when an applied ClickHouse migration changed', async () => {
    const d = await migrationDir('ch-checksum', { '001_x.sql': 'CREATE TABLE IF NOT EXISTS x (id UInt32) ENGINE = MergeTree ORDER BY id;\n' });
    expect(await migrateClickHouse(olap, d)).toEqual(['001_x.sql']);
    expect(await migrateClickHouse(olap, d)).toEqual([]);
    await writeFile(join(d, '001_x.sql'), 'CREATE TABLE IF NOT EXISTS x (id UInt64) ENGINE = MergeTree ORDER BY id;\n');
    await expect(migrateClickHouse(olap, d)).rejects.toThrow(MigrationError);
    await expect(migrateClickHouse(olap, d)).rejects.toThrow(/001_x\.sql/);
  });

  it('rolls a failed PostgreSQL migration back entirely and records nothing for it', async () => {
    const sql = await freshDb('mig_failure');
    const d = await migrationDir('pg-failure', {
      '001_ok.sql': 'CREATE TABLE ok (id int PRIMARY KEY);',
      '002_bad.sql': 'CREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\nSELECT 1/0;\n',
    });
    const err = await migratePostgres(sql, d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect((err as MigrationError).file).toBe(join(d, '002_bad.sql'));
    expect((err as MigrationError).cause).toMatchObject({ code: '22012' });
    expect((await sql`SELECT to_regclass('half') AS t`)[0]!.t).toBeNull();
    expect((await sql`SELECT name FROM schema_migrations`).map((r) => r.name)).toEqual(['001_ok.sql']);
    // Never applied, so it may be fixed in place.
    await writeFile(join(d, '002_bad.sql'), 'CREATE TABLE half (id int PRIMARY KEY);\n');
    expect(await migratePostgres(sql, d)).toEqual(['002_bad.sql']);
  });

  it('runs dollar-quoted bodies containing semicolons', async () => {
    const sql = await freshDb('mig_dollar');
    const d = await migrationDir('pg-dollar', {
      '001_fn.sql': `CREATE FUNCTION two() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1;
  RETURN 2;
END;
$$;
SELECT 1;
`,
    });
    await migratePostgres(sql, d);
    expect((await sql`SELECT two() AS v`)[0]!.v).toBe(2);
  });

  it('lets concurrent runners take turns: each migration is applied exactly once', async () => {
    const name = 'mig_concurrent';
    await pg.ensureDatabase(name);
    const d = await migrationDir('pg-concurrent', {
      '001_a.sql': 'CREATE TABLE a (id int PRIMARY KEY);',
      '002_b.sql': 'CREATE TABLE b (id int PRIMARY KEY);',
      '003_c.sql': 'INSERT INTO a VALUES (1);',
    });
    const holder = await freshDb(name, 2);
    const runners = [await freshDb(name, 2), await freshDb(name, 2), await freshDb(name, 2)];
    // Hold the runners' lock so all three are provably waiting at the same time.
    const lock = await holder.reserve();
    await lock`SELECT pg_advisory_lock(hashtext('bionicpro:migrations'))`;
    let waiting = 0;
    let allWaiting!: () => void;
    const gate = new Promise<void>((r) => (allWaiting = r));
    const runs = runners.map((sql) =>
      migratePostgres(sql, d, (m) => {
        if (m.startsWith('waiting') && ++waiting === runners.length) allWaiting();
      }),
    );
    await gate;
    expect((await holder`SELECT to_regclass('schema_migrations') AS t`)[0]!.t).toBeNull();
    await lock`SELECT pg_advisory_unlock(hashtext('bionicpro:migrations'))`;
    lock.release();
    const results = await Promise.all(runs);
    expect(results.flat().sort()).toEqual(['001_a.sql', '002_b.sql', '003_c.sql']);
    expect(results.filter((r) => r.length > 0)).toHaveLength(1);
    expect((await holder`SELECT count(*)::int AS n FROM a`)[0]!.n).toBe(1);
    expect((await holder`SELECT count(*)::int AS n FROM schema_migrations`)[0]!.n).toBe(3);
  });

  it('rejects files that do not follow NNN_name.sql and unreadable directories', async () => {
    const d = await migrationDir('bad-names', { 'init.sql': 'SELECT 1;' });
    await expect(readMigrations(d)).rejects.toThrow(/NNN_name\.sql/);
    await expect(readMigrations(join(dir, 'does-not-exist'))).rejects.toThrow(MigrationError);
  });

  it('splits ClickHouse scripts on semicolons at line ends only', () => {
    const script = `-- header comment
CREATE TABLE t (s String DEFAULT 'a;b') ENGINE = Memory;

-- between
INSERT INTO t VALUES ('x; y');
   -- trailing comment only
`;
    expect(splitStatements(script)).toEqual([
      "-- header comment\nCREATE TABLE t (s String DEFAULT 'a;b') ENGINE = Memory",
      "-- between\nINSERT INTO t VALUES ('x; y')",
    ]);
  });
});
