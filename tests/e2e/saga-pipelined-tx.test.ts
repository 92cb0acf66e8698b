/**
 * workers/saga/pipelined-tx.ts against a real PostgreSQL: the same all-or-nothing as `sql.begin`,
 * with BEGIN and unawaited statements sharing round trips.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresService } from '../../infra/dev/services/postgres.ts';
import { pipelinedTx } from '../../workers/saga/pipelined-tx.ts';

let dir: string;
let pg: PostgresService;
let sql: postgres.Sql;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bionic-pipelined-tx-'));
  pg = await startPostgres({ dataDir: join(dir, 'pg') });
  sql = postgres(pg.databaseUrl('postgres'), { max: 2, onnotice: () => {} });
  await sql`CREATE TABLE t (id int PRIMARY KEY)`;
}, 120_000);
afterAll(async () => {
  await sql?.end({ timeout: 5 });
  await pg?.stop();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

const ids = async () => (await sql<{ id: number }[]>`SELECT id FROM t ORDER BY id`).map((r) => r.id);

describe('pipelinedTx', () => {
  it('commits what fn did, in the order it was sent, inside one transaction', async () => {
    const result = await pipelinedTx(sql, async (tx) => {
      const [a, b] = await Promise.all([tx`INSERT INTO t VALUES (1) RETURNING txid_current() AS x`, tx`INSERT INTO t VALUES (2) RETURNING txid_current() AS x`]);
      // Still inside: the second statement sees the first, and both ran in one transaction.
      const [{ n }] = await tx<[{ n: number }]>`SELECT count(*)::int AS n FROM t`;
      return { n, same: a[0]!.x === b[0]!.x };
    });
    expect(result).toEqual({ n: 2, same: true });
    expect(await ids()).toEqual([1, 2]);
  }, 60_000);

  it('rolls everything back when fn throws', async () => {
    await expect(pipelinedTx(sql, async (tx) => {
      await tx`INSERT INTO t VALUES (3)`;
      throw new Error('changed my mind');
    })).rejects.toThrow('changed my mind');
    expect(await ids()).toEqual([1, 2]);
  }, 60_000);

  it('rolls back, and says so, when a statement fn did not await failed', async () => {
    await expect(pipelinedTx(sql, async (tx) => {
      tx`INSERT INTO t VALUES (4)`.execute().catch(() => {});
      tx`INSERT INTO t VALUES (1)`.execute().catch(() => {}); // duplicate key: the transaction is aborted
    })).rejects.toThrow(/rolled back at COMMIT/);
    expect(await ids()).toEqual([1, 2]);
  }, 60_000);

  it('gives the connection back every time', async () => {
    // The pool has two connections: leaking one per call would hang by the third.
    for (let i = 0; i < 5; i++) await pipelinedTx(sql, async (tx) => tx`SELECT 1`).catch(() => {});
    for (let i = 0; i < 5; i++) await pipelinedTx(sql, async () => { throw new Error('x'); }).catch(() => {});
    expect(await sql`SELECT 1 AS one`).toEqual([{ one: 1 }]);
  }, 60_000);
});
