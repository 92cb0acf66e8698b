/**
 * The notification participant: NOTIFY stores a notification for the customer and answers NOTIFIED.
 * Its effects live in the platform database, beside the bus, so dedupe, the notification and the
 * reply commit in one transaction — exactly once, end to end. After the commit the notifications
 * are pushed to their recipients' KV streams (shared/notifications/stream.ts), where the edge picks
 * them up for live subscribers. A push is idempotent, and a failed one fails the batch: it comes
 * back as duplicates, which are pushed again from the stored rows.
 */
import type postgres from 'postgres';
import type { BatchHandler } from '../../../shared/ports/bus.ts';
import type { BionicTopics, SagaCommand } from '../../../shared/bus/topics.ts';
import type { Logger } from '../../../shared/log.ts';
import type { Kv } from '../../../shared/ports/kv.ts';
import { pushNotification, type NotificationItem } from '../../../shared/notifications/stream.ts';
import { firstDeliveries, type WorkerBus } from '../../bus/index.ts';
import { commandPayloads, outgoing, replyTo } from '../messages.ts';
import { pipelinedTx } from '../pipelined-tx.ts';

export const NOTIFICATION_GROUP = 'saga-notification';

export interface NotificationRow {
  id: string;
  recipient: string;
  kind: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  source_message_id: string;
  created_at: Date;
}

export const itemOf = (r: NotificationRow): NotificationItem => ({
  id: String(r.id), kind: r.kind, title: r.title, body: r.body, data: r.data, createdAt: r.created_at.toISOString(),
});

/** The text a customer reads. */
function render(c: SagaCommand) {
  const p = commandPayloads.notify.parse(c.payload);
  const approved = p.outcome === 'APPROVED';
  return {
    recipient: p.recipient,
    kind: approved ? 'order.approved' : 'order.rejected',
    title: approved ? `Order #${p.orderId} approved` : `Order #${p.orderId} declined`,
    body: approved
      ? `Your order for ${p.modelName} (${p.price}) is approved and the funds are reserved.`
      : `Your order for ${p.modelName} (${p.price}) could not be approved: ${p.reason ?? 'no reason given'}.`,
    data: { orderId: p.orderId, sagaId: c.sagaId, outcome: approved ? 'APPROVED' : 'REJECTED', modelName: p.modelName, price: p.price },
    source_message_id: c.messageId,
  };
}

export function notificationHandler(opts: { platform: postgres.Sql; bus: WorkerBus<BionicTopics>; kv?: Kv; log: Logger }): BatchHandler<SagaCommand> {
  return async (messages) => {
    const commands = messages.map((m) => ({ id: m.value.messageId, ...m.value }));
    const rows = await pipelinedTx(opts.platform, async (tx) => {
      const { fresh } = await firstDeliveries(tx, NOTIFICATION_GROUP, commands);
      // Fresh ones are stored; all of them, fresh or redelivered, come back (redelivered ones are pushed
      // to KV again, a no-op when they got there). The outer SELECT sees the table before the INSERT.
      const all = await tx<NotificationRow[]>`
        WITH ins AS (
          INSERT INTO notifications (recipient, kind, title, body, data, source_message_id)
          SELECT recipient, kind, title, body, data, source_message_id
          FROM jsonb_to_recordset(${tx.json(fresh.map(render) as never)})
            AS n(recipient text, kind text, title text, body text, data jsonb, source_message_id text)
          ON CONFLICT (source_message_id) DO NOTHING
          RETURNING id, recipient, kind, title, body, data, source_message_id, created_at)
        SELECT * FROM ins
        UNION ALL
        SELECT id, recipient, kind, title, body, data, source_message_id, created_at FROM notifications
        WHERE source_message_id = ANY(${commands.map((c) => c.id)}::text[])
        ORDER BY id`;
      const bySource = new Map(all.map((r) => [r.source_message_id, r]));
      const replies = fresh.flatMap(({ id, ...c }) => {
        const row = bySource.get(id);
        return row ? [replyTo(c, 'NOTIFIED', { notificationId: String(row.id) })] : [];
      });
      if (replies.length) await opts.bus.publish('saga.events', replies.map(outgoing), { tx });
      return all;
    });
    if (!opts.kv || rows.length === 0) return;
    const byRecipient = new Map<string, NotificationRow[]>();
    for (const r of rows) byRecipient.set(r.recipient, [...(byRecipient.get(r.recipient) ?? []), r]);
    // Recipients in parallel; one recipient's notifications in their database order.
    await Promise.all([...byRecipient].map(async ([recipient, list]) => {
      for (const r of list) await pushNotification(opts.kv!, recipient, itemOf(r));
    }));
  };
}
