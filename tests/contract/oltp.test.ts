/**
 * OLTP contract against embedded PostgreSQL through the postgres.js adapter, plus what is specific
 * to that adapter (type mapping, the exposed client).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresService } from '../../infra/dev/services/postgres.ts';
import { createPostgresOltp, type PostgresOltp } from '../../workers/adapters/oltp-postgres.ts';
import { oltpContract } from './oltp-contract.ts';

let dir: string;
let pg: PostgresService;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'oltp-test-'));
  pg = await startPostgres({ dataDir: dir });
  await pg.ensureDatabase('oltp_contract');
}, 120_000);

afterAll(async () => {
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

oltpContract('postgres.js → embedded PostgreSQL', async () => createPostgresOltp(pg.databaseUrl('oltp_contract'), { max: 3 }));

describe('postgres.js OLTP adapter', () => {
  let db: PostgresOltp;
  beforeAll(() => {
    db = createPostgresOltp(pg.databaseUrl('oltp_contract'), { max: 2 });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('returns int8 and numeric as strings, without losing precision', async () => {
    const [row] = await db.query<{ big: unknown; money: unknown; small: unknown }>(
      'SELECT 9007199254740993::int8 AS big, 12345678901.23::numeric(14,2) AS money, 42::int4 AS small',
    );
    expect(row).toEqual({ big: '9007199254740993', money: '12345678901.23', small: 42 });
  });

  it('identifies itself to the server and exposes its postgres.js client', async () => {
    const [row] = await db.sql<{ name: string }[]>`SELECT current_setting('application_name') AS name`;
    expect(row!.name).toBe('bionicpro');
  });

  it('does not leak a transaction connection after a failure', async () => {
    // Two failing transactions on a pool of two, then a normal query: it must not wait for a connection.
    for (let i = 0; i < 2; i++) {
      await expect(db.transaction(async (tx) => { await tx.query('SELECT 1/0'); })).rejects.toMatchObject({ code: '22012' });
    }
    const rows = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'bionicpro' AND state LIKE 'idle in transaction%'",
    );
    expect(rows[0]!.n).toBe(0);
  });
});
