/**
 * An embedded PostgreSQL in a temp directory with the `platform` database migrated: what the bus
 * suites, the crash test and the bus benchmark run against.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { startPostgres } from '../../infra/dev/services/postgres.ts';
import { migratePostgres, MIGRATION_DIRS } from '../../workers/db/migrate.ts';

export interface PlatformDb {
  url: string;
  /** A small pool for the test's own queries. */
  sql: postgres.Sql;
  /** Runs `fn` in a transaction, then commits or rolls it back. */
  transaction(fn: (tx: postgres.TransactionSql) => Promise<void>, outcome: 'commit' | 'rollback'): Promise<void>;
  stop(): Promise<void>;
}

export async function startPlatformDb(name: string): Promise<PlatformDb> {
  const dir = await mkdtemp(join(tmpdir(), `bionic-${name}-`));
  const pg = await startPostgres({ dataDir: dir });
  await pg.ensureDatabase('platform');
  const url = pg.databaseUrl('platform');
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  await migratePostgres(sql, MIGRATION_DIRS.platform);
  return {
    url,
    sql,
    async transaction(fn, outcome) {
      const rollback = new Error('roll back on purpose');
      await sql.begin(async (tx) => {
        await fn(tx);
        if (outcome === 'rollback') throw rollback;
      }).catch((err) => { if (err !== rollback) throw err; });
    },
    async stop() {
      await sql.end({ timeout: 5 });
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
