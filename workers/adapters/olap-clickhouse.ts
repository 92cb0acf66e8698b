/**
 * OLAP port over `@clickhouse/client`: a ClickHouse server when `cfg.url` is set, otherwise chDB
 * in-process through the client's `connection` hook (`chdb/connection`). Same verbs either way.
 *
 * chDB quirks handled here: the client's `database` option never reaches the chDB connection, so
 * the adapter runs `USE <database>` once on each session (the session keeps it); a chDB session runs
 * one statement at a time, so calls are queued and run in call order (unqueued, a later query can
 * overtake an insert still encoding its rows); and only one process may bind a data directory.
 * Two sessions share the directory: `command` (the long statements) queues on one, `query`,
 * `insert` and `ping` on the other, so a long load does not stall short work. Calls of the two kinds
 * issued without awaiting each other may therefore finish in either order.
 */
import { createClient, type ClickHouseClient, type ClickHouseClientConfigOptions } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { OlapConfig } from '../../shared/config.ts';
import type { Olap, OlapParams } from '../../shared/ports/olap.ts';

/** The adapter's Olap, which can also hand out views of other databases of the same ClickHouse. */
export interface ClickHouseOlap extends Olap {
  /**
   * The same ClickHouse (server, or the same chDB sessions) with `database` as the default database,
   * created on first use. The view's `close` is a no-op: closing this adapter closes it.
   * Used for each region's database (data residency).
   */
  withDatabase(database: string): Olap;
}

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
export async function createClickHouseOlap(cfg: OlapConfig): Promise<ClickHouseOlap> {
  checkName(cfg.database);
  return cfg.url ? openServer(cfg, cfg.url) : openChdb(cfg);
}

const DATABASE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
function checkName(database: string) {
  if (!DATABASE_NAME.test(database)) throw new Error(`invalid ClickHouse database name: ${database}`);
}

async function openServer(cfg: OlapConfig, url: string): Promise<ClickHouseOlap> {
  const auth = { url, username: cfg.user, password: cfg.password, clickhouse_settings: SETTINGS };
  const create = async (database: string) => {
    const boot = createClient(auth);
    try {
      await boot.command({ query: `CREATE DATABASE IF NOT EXISTS \`${database}\`` });
    } finally {
      await boot.close();
    }
  };
  await create(cfg.database);
  // ETL's INSERT … SELECT over a backfill can run for minutes; the client's 30 s default is too short.
  const laneOf = (database: string): Lane => {
    const client = createClient({ ...auth, database, request_timeout: 600_000 });
    return { client, run: (task) => task() };
  };
  const lane = laneOf(cfg.database);
  const views: Lane[] = [];
  const root = wrap(lane, lane);
  return {
    ...root,
    withDatabase(database) {
      checkName(database);
      const view = laneOf(database);
      views.push(view);
      // Created once, before the view's first call.
      const ready = create(database);
      ready.catch(() => {});
      const gated: Lane = { client: view.client, run: (task) => ready.then(task) };
      return { ...wrap(gated, gated), close: async () => {} };
    },
    close: async () => {
      await root.close();
      await Promise.allSettled(views.map((v) => v.client.close()));
    },
  };
}

async function openChdb(cfg: OlapConfig): Promise<ClickHouseOlap> {
  const path = resolve(cfg.chdbPath);
  mkdirSync(path, { recursive: true });
  let long: Lane;
  try {
    long = await openLane(path, cfg.database);
  } catch (err) {
    const owner = statusPid(path);
    if (owner !== undefined && owner !== process.pid && isAlive(owner)) throw new ChdbDirectoryInUseError(path, owner, { cause: err });
    // e.g. this process already has another directory open: chDB's own message says so.
    throw new Error(`chDB failed to open data directory ${path}: ${(err as Error).message}`, { cause: err });
  }
  // A chDB session runs one statement at a time, so a minutes-long ETL or snapshot statement would
  // hold up the CDC sink's inserts and health pings behind it. A second session on the same
  // directory (chDB allows several in one process) takes everything but `command`: the two run side by side.
  let short: Lane;
  try {
    short = await openLane(path, cfg.database);
  } catch (err) {
    await long.client.close();
    throw err;
  }
  const root = wrap(long, short, cfg.database);
  return {
    ...root,
    withDatabase(database) {
      checkName(database);
      return { ...wrap(long, short, database), close: async () => {} };
    },
  };
}

/** One chDB session, its calls chained one after the other. */
async function openLane(path: string, database: string): Promise<Lane> {
  // chdb pins @clickhouse/client-common 1.23.0 while the client bundles 1.23.1's copy of the same
  // Connection type; the shapes agree at runtime, the nominal types do not.
  const connection = createChdbConnection({ path });
  const client = createClient({ connection: connection as unknown as ClickHouseClientConfigOptions['connection'], clickhouse_settings: SETTINGS });
  try {
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS \`${database}\`` });
    await client.command({ query: `USE \`${database}\`` });
  } catch (err) {
    await client.close();
    throw err;
  }
  let tail: Promise<unknown> = Promise.resolve();
  const run = <T>(task: () => Promise<T>): Promise<T> => {
    const next = tail.then(task, task);
    tail = next.catch(() => {});
    return next;
  };
  // The session's default database: views of other databases switch it inside their queued call.
  let current = database;
  const created = new Set([database]);
  const use = async (db: string) => {
    if (db === current) return;
    if (!created.has(db)) {
      await client.command({ query: `CREATE DATABASE IF NOT EXISTS \`${db}\`` });
      created.add(db);
    }
    await client.command({ query: `USE \`${db}\`` });
    current = db;
  };
  // Rows go to chDB as one JSONEachRow buffer that its own (multithreaded) parser reads, instead of
  // through the client's stream and a statement string: the same format, a quarter less work per row.
  const chdb = (connection as unknown as { chdb: ChdbRaw }).chdb;
  const rawInsert = (table: string, rows: readonly Record<string, unknown>[]) =>
    chdb.rawInsert({ table, values: rows.map((r) => JSON.stringify(r)).join('\n'), format: 'JSONEachRow' }).then(() => {});
  return { client, run, rawInsert, use };
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

/** A client and how its calls run: chained on a chDB session, directly on a server. */
interface Lane {
  client: ClickHouseClient;
  run: <T>(task: () => Promise<T>) => Promise<T>;
  rawInsert?: RowsInsert;
  /** chDB: make `database` the session's default (sessions are shared by every database's view). */
  use?: (database: string) => Promise<void>;
}

/**
 * `command` (DDL, INSERT … SELECT: the long statements) runs on `long`, everything else on `short`.
 * With `database`, each call first makes it the lane's default (chDB lanes are shared by databases).
 */
function wrap(long: Lane, short: Lane, database?: string): Olap {
  const qp = (params?: OlapParams) => (params && Object.keys(params).length > 0 ? params : undefined);
  const on = <T>(lane: Lane, task: () => Promise<T>) =>
    lane.run(async () => {
      if (database && lane.use) await lane.use(database);
      return task();
    });
  return {
    query: <T>(sql: string, params?: OlapParams) =>
      on(short, async () => {
        const rs = await short.client.query({ query: sql, format: 'JSONEachRow', query_params: qp(params) });
        return rs.json<T>();
      }),
    command: (sql, params) =>
      on(long, async () => {
        await long.client.command({ query: sql, query_params: qp(params) });
      }),
    insert: (table, rows) =>
      on(short, async () => {
        if (rows.length === 0) return;
        if (short.rawInsert && PLAIN_TABLE.test(table)) return short.rawInsert(table, rows);
        await short.client.insert({ table, values: rows as Record<string, unknown>[], format: 'JSONEachRow' });
      }),
    ping: () =>
      on(short, async () => {
        const r = await short.client.ping({ select: true });
        if (!r.success) throw r.error;
      }),
    close: async () => {
      await long.run(() => long.client.close());
      if (short !== long) await short.run(() => short.client.close());
    },
  };
}
