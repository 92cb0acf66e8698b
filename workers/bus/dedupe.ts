/**
 * Deduplication for idempotent handlers. Delivery is at-least-once, so a handler records the ids of
 * the messages it processed in `bus_processed` — in the same transaction as its effects — and skips
 * the ones already there. Effects then happen exactly once even when a batch is redelivered after a
 * crash. A concurrent duplicate (a consumer that lost its partition still finishing) waits on the
 * first one's row lock and is reported as a duplicate once that commits.
 *
 * ```ts
 * handler: (messages) => sql.begin(async (tx) => {
 *   const { fresh } = await firstDeliveries(tx, 'saga-orchestrator', messages);
 *   for (const m of fresh) await apply(tx, m);
 * })
 * ```
 */
import { execOf, type PgTx } from './pg-log.ts';

export interface Deliveries<M> {
  /** Seen for the first time: process these. */
  fresh: M[];
  /** Already processed by this consumer (or twice in this batch): skip these. */
  duplicates: M[];
}

/**
 * Records `messages` (by `id`) as processed by `consumer` and splits them into fresh and duplicate.
 * Call it inside the handler's transaction: if that rolls back, nothing was recorded.
 */
export async function firstDeliveries<M extends { id: string }>(db: PgTx, consumer: string, messages: readonly M[]): Promise<Deliveries<M>> {
  if (messages.length === 0) return { fresh: [], duplicates: [] };
  const rows = await execOf(db)(
    `INSERT INTO bus_processed (consumer, message_id) SELECT $1, unnest($2::text[])
     ON CONFLICT DO NOTHING RETURNING message_id`,
    [consumer, messages.map((m) => m.id)],
  );
  const inserted = new Set(rows.map((r) => r.message_id as string));
  const out: Deliveries<M> = { fresh: [], duplicates: [] };
  for (const m of messages) {
    // The first occurrence of an id takes the insert; a repeat within the batch is a duplicate.
    if (inserted.delete(m.id)) out.fresh.push(m);
    else out.duplicates.push(m);
  }
  return out;
}

/** Forgets processed ids older than `olderThanMs` (keep it well above any redelivery delay). */
export async function pruneProcessed(db: PgTx, olderThanMs: number): Promise<number> {
  const rows = await execOf(db)(
    `WITH gone AS (DELETE FROM bus_processed WHERE processed_at < now() - make_interval(secs => $1::float8 / 1000) RETURNING 1)
     SELECT count(*)::int AS n FROM gone`,
    [olderThanMs],
  );
  return Number(rows[0]?.n ?? 0);
}
