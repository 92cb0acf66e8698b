/** PostgreSQL connections for CLI commands: small pools that fail fast with a readable message. */
import postgres from 'postgres';
import { CliError, redactUrl, unreachableReason } from './errors.ts';

/** Seconds to wait for a database before saying it is unreachable. */
const CONNECT_TIMEOUT_S = 10;

/**
 * Opens `url` and checks it answers, so that an unreachable database is reported as one line
 * naming it (exit 1) instead of failing somewhere later.
 * @param name the database's role in messages: `crm`, `telemetry`, `platform`
 */
export async function connect(name: string, url: string, max = 2): Promise<postgres.Sql> {
  const sql = postgres(url, {
    max, connect_timeout: CONNECT_TIMEOUT_S, onnotice: () => {},
    connection: { application_name: 'bionic-cli' },
  });
  try {
    await sql`SELECT 1`;
    return sql;
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    const reason = unreachableReason(err) ?? (err as Error).message;
    throw new CliError(`cannot reach the ${name} database at ${redactUrl(url)}: ${reason}`, undefined, { cause: err });
  }
}

/** Closes pools without letting a slow close hide the command's own outcome. */
export async function closeAll(pools: readonly (postgres.Sql | undefined)[]): Promise<void> {
  await Promise.allSettled(pools.map((p) => p?.end({ timeout: 5 })));
}
