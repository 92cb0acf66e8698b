/**
 * The deals participant: records the saga's decision on the order. APPROVE_DEAL moves a DRAFT order
 * to APPROVED; REJECT_DEAL moves a DRAFT or APPROVED one to REJECTED (a rejection after approval is
 * the timeout's compensation). Both answer DEAL_UPDATED with the order's status and version.
 * The order is updated with optimistic locking (`WHERE version = <read>`), like every writer of
 * orders: an operator's concurrent `orders.update` makes this attempt miss, and it re-reads.
 */
import type { SagaTx } from '../pipelined-tx.ts';
import type { SagaCommand } from '../../../shared/bus/topics.ts';
import { commandPayloads, replyTo } from '../messages.ts';
import { crmParticipant, type CrmParticipantOptions } from './crm-participant.ts';

export const DEALS_GROUP = 'saga-deals';
const ATTEMPTS = 5;

const TARGETS: Record<string, { to: string; from: readonly string[] }> = {
  APPROVE_DEAL: { to: 'APPROVED', from: ['DRAFT'] },
  REJECT_DEAL: { to: 'REJECTED', from: ['DRAFT', 'APPROVED'] },
};

/** The order kept changing under every attempt. The bus retries the command later. */
export class OrderBusyError extends Error {
  override readonly name = 'OrderBusyError';
}

async function updateDeal(tx: SagaTx, c: SagaCommand): Promise<SagaCommand> {
  const target = TARGETS[c.type];
  if (!target) throw new Error(`deals: unknown command ${c.type}`);
  const { orderId } = commandPayloads.deals.parse(c.payload);
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    // Read and conditional write in one statement; the write still checks the version it read, so
    // a concurrent writer (an operator's orders.update) makes it miss instead of being overwritten.
    const [r] = await tx<{ status: string; version: number; new_status: string | null; new_version: number | null }[]>`
      WITH cur AS (SELECT status, version FROM orders WHERE id = ${orderId}),
      upd AS (
        UPDATE orders o SET status = ${target.to}, version = o.version + 1 FROM cur
        WHERE o.id = ${orderId} AND o.version = cur.version AND cur.status = ANY(${target.from as string[]}::text[])
        RETURNING o.status, o.version)
      SELECT cur.status, cur.version, upd.status AS new_status, upd.version AS new_version FROM cur LEFT JOIN upd ON true`;
    if (!r) throw new Error(`deals: order ${orderId} does not exist`);
    if (r.new_status !== null) return replyTo(c, 'DEAL_UPDATED', { orderStatus: r.new_status, orderVersion: r.new_version });
    // Already there, or somewhere the command cannot move it from (cancelled): report what it is.
    if (r.status === target.to || !target.from.includes(r.status)) {
      return replyTo(c, 'DEAL_UPDATED', { orderStatus: r.status, orderVersion: r.version });
    }
  }
  throw new OrderBusyError(`order ${orderId} changed under ${ATTEMPTS} attempts`);
}

export function dealsHandler(opts: Omit<CrmParticipantOptions, 'name' | 'handle'>) {
  return crmParticipant({ ...opts, name: DEALS_GROUP, handle: updateDeal });
}
