/**
 * OLTP port over postgres.js (PostgreSQL). One instance per database (crm, telemetry, platform).
 *
 * Type mapping is postgres.js's default on purpose: `int8`/`bigint` and `numeric` come back as
 * strings (no silent precision loss above 2^53 or in money columns), `int2`/`int4`/`float*` as
 * numbers, `timestamptz` as `Date`, `json`/`jsonb` parsed. Callers convert where they need to.
 * Errors are postgres.js's `PostgresError`, passed through untouched: `.code` is the SQLSTATE
 * (e.g. `23505` unique violation), so callers can branch on it.
 */
import postgres from 'postgres';
import type { Oltp, OltpQueryable } from '../../shared/ports/oltp.ts';

/** An {@link Oltp} that also exposes its postgres.js client for COPY, LISTEN and migrations. */
export type PostgresOltp = Oltp & { readonly sql: postgres.Sql };

type Params = Parameters<postgres.Sql['unsafe']>[1];

function queryable(sql: postgres.Sql | postgres.TransactionSql): OltpQueryable {
  return {
    async query<T>(text: string, params?: readonly unknown[]): Promise<T[]> {
      const rows = await sql.unsafe(text, params as Params);
      // postgres.js returns an array subclass carrying `count`, `columns`, …: hand out a plain array.
      return Array.from(rows) as T[];
    },
  };
}

/**
 * Connects lazily (the first query opens a connection) to one PostgreSQL database.
 * @param url `postgres://user:pass@host:port/db`
 * @param opts.max pool size (default 10)
 */
export function createPostgresOltp(url: string, opts: { max?: number } = {}): PostgresOltp {
  const sql = postgres(url, {
    max: opts.max ?? 10,
    onnotice: () => {},
    connection: { application_name: 'bionicpro' },
  });
  const { query } = queryable(sql);
  return {
    sql,
    query,
    async transaction<T>(fn: (tx: OltpQueryable) => Promise<T>): Promise<T> {
      // `sql.begin` would await arrays of promises returned by `fn`; wrapping keeps `T` exact.
      const box = await sql.begin(async (tx) => ({ value: await fn(queryable(tx)) }));
      return box.value as T;
    },
    async ping() {
      await sql.unsafe('SELECT 1');
    },
    async close() {
      await sql.end({ timeout: 5 });
    },
  };
}
