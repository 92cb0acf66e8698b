/**
 * One run at a time across every worker process: a PostgreSQL session advisory lock held on a
 * reserved connection for the whole run. PostgreSQL drops it the moment that session ends, so a
 * crashed worker never blocks the next run; the run's final bookkeeping goes over the same session,
 * so a run that lost its connection (and with it the lock) cannot commit a watermark.
 */
import type postgres from 'postgres';

export const lockName = (job: string) => `bionicpro:etl:${job}`;

/**
 * Runs `fn` holding the job's lock, or returns `{ acquired: false }` at once when another session
 * holds it.
 */
export async function withRunLock<T>(
  sql: postgres.Sql,
  job: string,
  fn: (session: postgres.ReservedSql) => Promise<T>,
): Promise<{ acquired: true; value: T } | { acquired: false }> {
  const session = await sql.reserve();
  try {
    const [row] = await session<{ ok: boolean }[]>`SELECT pg_try_advisory_lock(hashtext(${lockName(job)})) AS ok`;
    if (!row?.ok) return { acquired: false };
    try {
      return { acquired: true, value: await fn(session) };
    } finally {
      await session`SELECT pg_advisory_unlock(hashtext(${lockName(job)}))`.catch(() => {});
    }
  } finally {
    session.release();
  }
}
