/**
 * The profile participant: holds customers' funds for orders. APPROVE_ORDER reserves the order's
 * price if the account's available balance (balance − reserved) covers it, and answers
 * ORDER_APPROVED or ORDER_REJECTED; RELEASE_FUNDS (compensation) gives a held reservation back and
 * answers nothing. `order_reservations` has one row per order, so funds are held at most once per
 * order whatever arrives twice, and a release leaves a tombstone no late approval can reuse.
 */
import type { SagaTx } from '../pipelined-tx.ts';
import type { SagaCommand } from '../../../shared/bus/topics.ts';
import { commandPayloads, replyTo } from '../messages.ts';
import { crmParticipant, type CrmParticipantOptions } from './crm-participant.ts';

export const PROFILE_GROUP = 'saga-profile';

async function approveOrder(tx: SagaTx, c: SagaCommand): Promise<SagaCommand> {
  const p = commandPayloads.profile.parse(c.payload);
  // One statement: reserve only if this order holds nothing yet and the available balance covers
  // the price. (The final SELECT sees the rows as they were before the CTEs wrote.)
  const [r] = await tx<[{ existing: string | null; reserved: number; available: string | null }]>`
    WITH existing AS (SELECT status FROM order_reservations WHERE order_id = ${p.orderId}),
    held AS (
      UPDATE customer_accounts SET reserved = reserved + ${p.price}::numeric, version = version + 1
      WHERE customer_id = ${p.customerId} AND balance - reserved >= ${p.price}::numeric AND NOT EXISTS (SELECT 1 FROM existing)
      RETURNING customer_id),
    ins AS (
      INSERT INTO order_reservations (order_id, customer_id, amount, status)
      SELECT ${p.orderId}, customer_id, ${p.price}::numeric, 'held' FROM held RETURNING order_id)
    SELECT (SELECT status FROM existing) AS existing, (SELECT count(*) FROM ins)::int AS reserved,
           (SELECT (balance - reserved)::text FROM customer_accounts WHERE customer_id = ${p.customerId}) AS available`;
  if (r.existing === 'held' || r.reserved === 1) return replyTo(c, 'ORDER_APPROVED', { reserved: p.price });
  if (r.existing) return replyTo(c, 'ORDER_REJECTED', { reason: 'the order was cancelled before funds were reserved' });
  return replyTo(c, 'ORDER_REJECTED', {
    reason: r.available === null ? 'the customer has no account' : `insufficient funds: ${r.available} available, ${p.price} needed`,
  });
}

async function releaseFunds(tx: SagaTx, c: SagaCommand): Promise<null> {
  const p = commandPayloads.profile.parse(c.payload);
  const [released] = await tx<{ customer_id: string; amount: string }[]>`
    UPDATE order_reservations SET status = 'released' WHERE order_id = ${p.orderId} AND status = 'held'
    RETURNING customer_id, amount`;
  if (released) {
    await tx`UPDATE customer_accounts SET reserved = reserved - ${released.amount}::numeric, version = version + 1 WHERE customer_id = ${released.customer_id}`;
    await tx`INSERT INTO audit_log (actor, action, entity, entity_id, details)
      VALUES ('saga', 'funds.released', 'order', ${p.orderId}, ${tx.json({ sagaId: c.sagaId, amount: released.amount })})`;
  } else {
    await tx`INSERT INTO order_reservations (order_id, customer_id, amount, status)
      VALUES (${p.orderId}, ${p.customerId}, 0, 'released') ON CONFLICT (order_id) DO NOTHING`;
  }
  return null;
}

export function profileHandler(opts: Omit<CrmParticipantOptions, 'name' | 'handle' | 'order'>) {
  return crmParticipant({
    ...opts,
    name: PROFILE_GROUP,
    handle: (tx, c) => {
      if (c.type === 'APPROVE_ORDER') return approveOrder(tx, c);
      if (c.type === 'RELEASE_FUNDS') return releaseFunds(tx, c);
      throw new Error(`profile: unknown command ${c.type}`);
    },
    // Accounts are locked in customer order, so concurrent batches cannot deadlock on them.
    order: (cs) => cs.map((c, i) => ({ c, i, k: BigInt(String(c.payload.customerId ?? 0)) }))
      .sort((a, b) => (a.k === b.k ? a.i - b.i : a.k < b.k ? -1 : 1)).map(({ c }) => c),
  });
}
