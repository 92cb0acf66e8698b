/**
 * A transaction that does not wait for its own BEGIN. postgres.js's `sql.begin` sends BEGIN and
 * waits for the answer before the first statement, and every awaited statement is another round
 * trip; on a busy machine each round trip is two context switches and a wake-up of the backend.
 * Here the transaction runs on a reserved connection where postgres.js pipelines: BEGIN goes out
 * in the same write as the first statement, and statements issued without awaiting in between
 * (`Promise.all`) travel together too. PostgreSQL still runs them one after another, in the order
 * sent — so callers keep their statement order, only the waiting goes.
 *
 * Semantics are `sql.begin`'s: READ COMMITTED, COMMIT when `fn` resolves, ROLLBACK when it throws.
 * A statement that fails makes every later one in the transaction fail too ("current transaction
 * is aborted"); `fn` sees the first error as usual.
 */
import type postgres from 'postgres';

/** Where a saga handler runs its statements: a `sql.begin` transaction or a pipelined one. */
export type SagaTx = postgres.TransactionSql | postgres.ReservedSql;

export async function pipelinedTx<T>(sql: postgres.Sql, fn: (tx: postgres.ReservedSql) => Promise<T>): Promise<T> {
  const tx = await sql.reserve();
  try {
    // Not awaited: it leaves with the first statement. If it fails, that statement fails as well.
    const begin = tx`BEGIN`.execute();
    begin.catch(() => {});
    let result: T;
    try {
      result = await fn(tx);
      await begin;
    } catch (err) {
      await tx`ROLLBACK`.catch(() => {});
      throw err;
    }
    const commit = await tx`COMMIT`;
    // PostgreSQL answers COMMIT of a failed transaction with ROLLBACK (a statement `fn` did not await).
    if (commit.command === 'ROLLBACK') throw new Error('transaction rolled back at COMMIT: a statement in it failed');
    return result;
  } finally {
    tx.release();
  }
}
