/**
 * Forward-only schema migrations for the PostgreSQL databases (crm, telemetry, platform) and ClickHouse.
 *
 * Files are `NNN_name.sql`, applied in name order and recorded in `schema_migrations` with their
 * sha256. An applied file must never change: the runner refuses to run if one did (write a new
 * migration instead).
 *
 * PostgreSQL: the whole file runs as one multi-statement query (so `$$` bodies need no parsing) in
 * one transaction together with its record; a session advisory lock keeps concurrent runners (several
 * workers starting at once) from applying anything twice. Statements that refuse transactions
 * (`CREATE INDEX CONCURRENTLY`, …) are therefore not supported.
 *
 * ClickHouse has no DDL transactions: statements (split on `;` at line end) run one by one and the
 * record is written last, so a file that failed half-way runs again from its start — write ClickHouse
 * migrations idempotent (`IF NOT EXISTS`). Run them from one process (chDB allows only one anyway).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';
import type { Olap } from '../../shared/ports/olap.ts';

/** A migration could not be read or applied, or an applied one changed; `file` names it when known. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  constructor(message: string, readonly file?: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Receives progress messages; `fields` are structured details (file, directory) for a logger. */
export type MigrationLog = (message: string, fields?: Record<string, unknown>) => void;

export interface MigrationFile { name: string; path: string; checksum: string; sql: string }

/** The repository's migration directories. */
export const MIGRATION_DIRS = {
  crm: fileURLToPath(new URL('../../infra/migrations/crm', import.meta.url)),
  telemetry: fileURLToPath(new URL('../../infra/migrations/telemetry', import.meta.url)),
  platform: fileURLToPath(new URL('../../infra/migrations/platform', import.meta.url)),
  clickhouse: fileURLToPath(new URL('../../infra/clickhouse', import.meta.url)),
} as const;

const FILE_NAME = /^\d{3,}_[A-Za-z0-9_-]+\.sql$/;

/** Reads `dir`'s migrations in apply order. Any other `.sql` file is an error, not silently skipped. */
export async function readMigrations(dir: string): Promise<MigrationFile[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
  } catch (err) {
    throw new MigrationError(`cannot read migration directory ${dir}`, undefined, { cause: err });
  }
  const files: MigrationFile[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (!FILE_NAME.test(name)) throw new MigrationError(`${path}: migration files must be named NNN_name.sql`, path);
    const bytes = await readFile(path);
    files.push({ name, path, checksum: createHash('sha256').update(bytes).digest('hex'), sql: bytes.toString('utf8') });
  }
  return files;
}

/** Files not yet applied; throws if an applied file's checksum differs from the recorded one. */
function pending(files: MigrationFile[], applied: Map<string, string>, log: MigrationLog): MigrationFile[] {
  for (const f of files) {
    const recorded = applied.get(f.name);
    if (recorded !== undefined && recorded !== f.checksum) {
      throw new MigrationError(
        `migration ${f.path} was changed after it was applied (checksum ${f.checksum.slice(0, 12)}…, ` +
          `recorded ${recorded.slice(0, 12)}…); add a new migration instead of editing an applied one`,
        f.path,
      );
    }
  }
  const known = new Set(files.map((f) => f.name));
  for (const name of applied.keys()) if (!known.has(name)) log('applied migration has no file any more', { name });
  return files.filter((f) => !applied.has(f.name));
}

/**
 * Applies the pending migrations in `dir` to one PostgreSQL database.
 * @param db a postgres.js client, or anything carrying one as `sql` (the OLTP adapter)
 * @returns the names of the files applied now, in order
 */
export async function migratePostgres(
  db: postgres.Sql | { readonly sql: postgres.Sql },
  dir: string,
  log: MigrationLog = () => {},
): Promise<string[]> {
  const sql = typeof db === 'function' ? db : db.sql;
  const files = await readMigrations(dir);
  // A session lock needs one session: reserve a connection for the whole run.
  const conn = await sql.reserve();
  try {
    const [got] = await conn`SELECT pg_try_advisory_lock(hashtext('bionicpro:migrations')) AS ok`;
    if (!got?.ok) {
      log('waiting for another process to finish migrating', { dir });
      await conn`SELECT pg_advisory_lock(hashtext('bionicpro:migrations'))`;
    }
    try {
      await conn`CREATE TABLE IF NOT EXISTS schema_migrations (
        name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
      const rows = await conn<{ name: string; checksum: string }[]>`SELECT name, checksum FROM schema_migrations`;
      const todo = pending(files, new Map(rows.map((r) => [r.name, r.checksum])), log);
      for (const f of todo) {
        log('applying migration', { file: f.path });
        await conn`BEGIN`;
        try {
          await conn.unsafe(f.sql).simple();
          await conn`INSERT INTO schema_migrations (name, checksum) VALUES (${f.name}, ${f.checksum})`;
          await conn`COMMIT`;
        } catch (err) {
          await conn`ROLLBACK`.catch(() => {});
          throw new MigrationError(`migration ${f.path} failed: ${(err as Error).message}`, f.path, { cause: err });
        }
      }
      return todo.map((f) => f.name);
    } finally {
      await conn`SELECT pg_advisory_unlock(hashtext('bionicpro:migrations'))`.catch(() => {});
    }
  } finally {
    conn.release();
  }
}

/** Splits a ClickHouse script on `;` at the end of a line; drops comment-only pieces. */
export function splitStatements(script: string): string[] {
  return script
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('--')));
}

/** Applies the pending ClickHouse migrations in `dir` (into the adapter's database). */
export async function migrateClickHouse(olap: Olap, dir: string, log: MigrationLog = () => {}): Promise<string[]> {
  const files = await readMigrations(dir);
  await olap.command(`CREATE TABLE IF NOT EXISTS schema_migrations
    (name String, checksum String, applied_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY name`);
  const rows = await olap.query<{ name: string; checksum: string }>('SELECT name, checksum FROM schema_migrations');
  const todo = pending(files, new Map(rows.map((r) => [r.name, r.checksum])), log);
  for (const f of todo) {
    log('applying migration', { file: f.path });
    for (const statement of splitStatements(f.sql)) {
      try {
        await olap.command(statement);
      } catch (err) {
        throw new MigrationError(`migration ${f.path} failed: ${(err as Error).message}`, f.path, { cause: err });
      }
    }
    await olap.command(
      'INSERT INTO schema_migrations (name, checksum, applied_at) VALUES ({name:String}, {checksum:String}, now64(3))',
      { name: f.name, checksum: f.checksum },
    );
  }
  return todo.map((f) => f.name);
}

type Pg = postgres.Sql | { readonly sql: postgres.Sql };

/** One migration applied by {@link migrateAll}. */
export interface AppliedMigration { target: 'crm' | 'telemetry' | 'platform' | 'clickhouse'; name: string }

/**
 * Migrates whichever targets are given, in the order crm, telemetry, platform, ClickHouse, from the
 * repository's directories (or `dirs`). Returns everything applied now (empty when up to date).
 */
export async function migrateAll(
  targets: { crm?: Pg; telemetry?: Pg; platform?: Pg; olap?: Olap },
  log: MigrationLog = () => {},
  dirs: { crm?: string; telemetry?: string; platform?: string; clickhouse?: string } = {},
): Promise<AppliedMigration[]> {
  const d = { ...MIGRATION_DIRS, ...dirs };
  const applied: AppliedMigration[] = [];
  for (const target of ['crm', 'telemetry', 'platform'] as const) {
    const db = targets[target];
    if (db) for (const name of await migratePostgres(db, d[target], log)) applied.push({ target, name });
  }
  if (targets.olap) {
    for (const name of await migrateClickHouse(targets.olap, d.clickhouse, log)) applied.push({ target: 'clickhouse', name });
  }
  return applied;
}
