/** The crash test's idempotent handler body, shared by the killed children and the test's last consumer. */
import type postgres from 'postgres';
import type { BusMessage } from '../../shared/ports/bus.ts';
import { firstDeliveries } from '../../workers/bus/dedupe.ts';
import type { TestValue } from '../contract/bus-support.ts';

/**
 * Applies a batch exactly once: dedupe, effects (`crash_effects`) and a delivery log (`crash_log`,
 * marking duplicates) in one transaction. `inside` runs last inside the transaction.
 */
export async function apply(sql: postgres.Sql, consumer: string, messages: BusMessage<TestValue>[], inside?: () => Promise<void>) {
  await sql.begin(async (tx) => {
    const { fresh, duplicates } = await firstDeliveries(tx, 'crash-test', messages);
    await tx`INSERT INTO crash_effects (message_id, seq)
      SELECT * FROM unnest(${fresh.map((m) => m.id)}::text[], ${fresh.map((m) => m.value.seq)}::int[])`;
    await tx`INSERT INTO crash_log (message_id, duplicate, consumer)
      SELECT id, id = ANY(${duplicates.map((m) => m.id)}::text[]), ${consumer} FROM unnest(${messages.map((m) => m.id)}::text[]) AS id`;
    await inside?.();
  });
}
