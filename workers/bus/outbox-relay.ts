/**
 * Transactional outbox for buses that live outside PostgreSQL (Kafka). A publish inside a caller's
 * transaction writes to `bus_outbox` instead; after commit the relay hands the rows to the broker in
 * id order and deletes them. A rolled-back transaction leaves nothing to relay. Delivery to the broker
 * is at-least-once: a crash between send and delete sends those rows again (consumers dedupe).
 * One relay works at a time across processes (a transaction-scoped advisory lock).
 */
import type postgres from 'postgres';
import { backoffMs, resolveRetryPolicy } from '../../shared/bus/retry.ts';
import { createLogger, type Logger } from '../../shared/log.ts';
import { sleep } from './consume.ts';
import { execOf, type PgTx, type StoredMessage } from './pg-log.ts';
import { Waker } from './pg-waker.ts';

const CHANNEL = 'bus_outbox';
const WAKE = 'ready';

/** Writes encoded messages to the outbox on `db` (normally the caller's transaction). */
export async function writeOutbox(db: PgTx, topic: string, messages: readonly StoredMessage[]): Promise<void> {
  if (messages.length === 0) return;
  await execOf(db)(
    `WITH ins AS (
       INSERT INTO bus_outbox (topic, key, value, headers)
       SELECT $1, k, v, h::jsonb FROM unnest($2::text[], $3::text[], $4::text[]) AS m(k, v, h) RETURNING 1)
     SELECT count(*) AS n, pg_notify('${CHANNEL}', '${WAKE}') FROM ins`,
    [topic, messages.map((m) => m.key), messages.map((m) => m.value), messages.map((m) => (m.headers ? JSON.stringify(m.headers) : null))],
  );
}

export interface OutboxRelay {
  /** Relays one batch now; returns how many rows it handed over (0 when another relay holds the lock). */
  drain(): Promise<number>;
  stop(): Promise<void>;
}

export interface OutboxRelayOptions {
  sql: postgres.Sql;
  /** Hands one topic's messages to the broker; resolves when it acknowledged them. */
  send(topic: string, messages: StoredMessage[]): Promise<void>;
  batchSize?: number;
  /** Fallback poll (default 5 s): NOTIFY wakes the relay on commit. */
  pollIntervalMs?: number;
  log?: Logger;
}

const RETRY = resolveRetryPolicy({ initialIntervalMs: 100, maximumIntervalMs: 5_000 });

/** Starts relaying in the background. */
export async function startOutboxRelay(opts: OutboxRelayOptions): Promise<OutboxRelay> {
  const { sql } = opts;
  const logger = opts.log ?? createLogger({ level: 'silent' });
  const batchSize = opts.batchSize ?? 500;
  const waker = await Waker.listen(sql, CHANNEL);
  const stopping = new AbortController();

  const drain = () =>
    sql.begin(async (tx) => {
      const [lock] = await tx`SELECT pg_try_advisory_xact_lock(hashtext('bionicpro:bus-outbox')) AS ok`;
      if (!lock?.ok) return 0;
      const rows = await tx`SELECT id, topic, key, value, headers FROM bus_outbox ORDER BY id LIMIT ${batchSize}`;
      // Consecutive runs per topic, in id order, so one topic's messages keep their commit order.
      for (let i = 0; i < rows.length; ) {
        let j = i;
        while (j < rows.length && rows[j]!.topic === rows[i]!.topic) j++;
        const run = rows.slice(i, j).map((r) => ({ key: r.key as string, value: r.value as string, headers: r.headers }));
        await opts.send(rows[i]!.topic as string, run);
        i = j;
      }
      if (rows.length) await tx`DELETE FROM bus_outbox WHERE id = ANY(${rows.map((r) => r.id)}::bigint[])`;
      return rows.length;
    });

  const loop = (async () => {
    let failures = 0;
    while (!stopping.signal.aborted) {
      const since = waker.seq(WAKE);
      try {
        const n = await drain();
        failures = 0;
        if (n === batchSize) continue;
      } catch (err) {
        logger.error('bus outbox relay failed; retrying', { err });
        await sleep(backoffMs(RETRY, ++failures), stopping.signal);
        continue;
      }
      await waker.wait(WAKE, since, opts.pollIntervalMs ?? 5_000, stopping.signal);
    }
  })();

  return {
    drain,
    async stop() {
      stopping.abort();
      await loop;
      await waker.close();
    },
  };
}
