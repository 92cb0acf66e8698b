/**
 * OLAP port over `@clickhouse/client`: a ClickHouse server when `cfg.url` is set, otherwise chDB
 * in-process through the client's `connection` hook (`chdb/connection`). Same verbs either way.
 *
 * chDB quirks handled here: the client's `database` option never reaches the chDB connection, so
 * the adapter runs `USE <database>` once on its session (the session keeps it); a chDB session runs
 * one statement at a time, so calls are queued and run in call order (unqueued, a later query can
 * overtake an insert still encoding its rows); and only one process may bind a data directory.
 */
import { createClient, type ClickHouseClient, type ClickHouseClientConfigOptions } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { OlapConfig } from '../../shared/config.ts';
import type { Olap, OlapParams } from '../../shared/ports/olap.ts';

/** Thrown when the chDB data directory cannot be opened because another process owns it. */
export class ChdbDirectoryInUseError extends Error {
  override readonly name = 'ChdbDirectoryInUseError';
  constructor(readonly path: string, readonly ownerPid: number, options?: ErrorOptions) {
    super(
      `chDB data directory ${path} is in use by another process (pid ${ownerPid}): only one process may open ` +
        'a chDB data directory at a time; stop that process or point CHDB_PATH elsewhere',
      options,
    );
  }
}

// Always: 64-bit integers as JSON strings, so values above 2^53 survive.
const SETTINGS = { output_format_json_quote_64bit_integers: 1 } as const;

/** Creates the OLAP adapter and makes sure `cfg.database` exists and is the default database. */
export async function createClickHouseOlap(cfg: OlapConfig): Promise<Olap> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(cfg.database)) throw new Error(`invalid ClickHouse database name: ${cfg.database}`);
  return cfg.url ? openServer(cfg, cfg.url) : openChdb(cfg);
}

async function openServer(cfg: OlapConfig, url: string): Promise<Olap> {
  const auth = { url, username: cfg.user, password: cfg.password, clickhouse_settings: SETTINGS };
  const boot = createClient(auth);
  try {
    await boot.command({ query: `CREATE DATABASE IF NOT EXISTS \`${cfg.database}\`` });
  } finally {
    await boot.close();
  }
  // ETL's INSERT … SELECT over a backfill can run for minutes; the client's 30 s default is too short.
  const client = createClient({ ...auth, database: cfg.database, request_timeout: 600_000 });
  return wrap(client, (task) => task());
}

async function openChdb(cfg: OlapConfig): Promise<Olap> {
  const path = resolve(cfg.chdbPath);
  mkdirSync(path, { recursive: true });
  let connection: ClickHouseClientConfigOptions['connection'];
  try {
    // chdb pins @clickhouse/client-common 1.23.0 while the client bundles 1.23.1's copy of the same
    // Connection type; the shapes agree at runtime, the nominal types do not.
    connection = createChdbConnection({ path }) as unknown as ClickHouseClientConfigOptions['connection'];
  } catch (err) {
    const owner = statusPid(path);
    if (owner !== undefined && owner !== process.pid && isAlive(owner)) throw new ChdbDirectoryInUseError(path, owner, { cause: err });
    // e.g. this process already has another directory open: chDB's own message says so.
    throw new Error(`chDB failed to open data directory ${path}: ${(err as Error).message}`, { cause: err });
  }
  const client = createClient({ connection, clickhouse_settings: SETTINGS });
  try {
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS \`${cfg.database}\`` });
    await client.command({ query: `USE \`${cfg.database}\`` });
  } catch (err) {
    await client.close();
    throw err;
  }
  // One statement at a time per chDB session: chain every call on the previous one.
  let tail: Promise<unknown> = Promise.resolve();
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task, task);
    tail = run.catch(() => {});
    return run;
  };
  // Rows go to chDB as one JSONEachRow buffer that its own (multithreaded) parser reads, instead of
  // through the client's stream and a statement string: the same format, a quarter less work per row.
  const chdb = (connection as unknown as { chdb: ChdbRaw }).chdb;
  const rawInsert = (table: string, rows: readonly Record<string, unknown>[]) =>
    chdb.rawInsert({ table, values: rows.map((r) => JSON.stringify(r)).join('\n'), format: 'JSONEachRow' }).then(() => {});
  return wrap(client, serial, rawInsert);
}

/** The part of chDB's raw API the adapter uses (`ChdbConnection.chdb`). */
interface ChdbRaw { rawInsert(p: { table: string; values: string; format: 'JSONEachRow' }): Promise<unknown> }
const PLAIN_TABLE = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$/;

/** chDB (like `clickhouse local`) writes `PID: <n>` into `<path>/status` while it owns the directory. */
function statusPid(path: string): number | undefined {
  try {
    const m = /^PID:\s*(\d+)/m.exec(readFileSync(join(path, 'status'), 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type RowsInsert = (table: string, rows: readonly Record<string, unknown>[]) => Promise<void>;

function wrap(client: ClickHouseClient, run: <T>(task: () => Promise<T>) => Promise<T>, rawInsert?: RowsInsert): Olap {
  const qp = (params?: OlapParams) => (params && Object.keys(params).length > 0 ? params : undefined);
  return {
    query: <T>(sql: string, params?: OlapParams) =>
      run(async () => {
        const rs = await client.query({ query: sql, format: 'JSONEachRow', query_params: qp(params) });
        return rs.json<T>();
      }),
    command: (sql, params) =>
      run(async () => {
        await client.command({ query: sql, query_params: qp(params) });
      }),
    insert: (table, rows) =>
      run(async () => {
        if (rows.length === 0) return;
        if (rawInsert && PLAIN_TABLE.test(table)) return rawInsert(table, rows);
        await client.insert({ table, values: rows as Record<string, unknown>[], format: 'JSONEachRow' });
      }),
    ping: () =>
      run(async () => {
        const r = await client.ping({ select: true });
        if (!r.success) throw r.error;
      }),
    close: () => run(() => client.close()),
  };
}
