/**
 * The notification participant: NOTIFY stores a notification for the customer and answers NOTIFIED.
 * After the commit the notifications are pushed to their recipients' KV streams
 * (shared/notifications/stream.ts), where the edge picks them up for live subscribers. A push is
 * idempotent, and a failed one fails the batch: it comes back as duplicates, which are pushed again
 * from the stored rows.
 *
 * Where a notification lives follows its saga (data residency, saga/regions.ts):
 * - **No region** (implicit mode, or a saga started before regions were configured): the platform
 *   database, beside the bus, so dedupe, the notification and the reply commit in one transaction —
 *   exactly once, end to end — and the central KV.
 * - **A region**: it is personal data (recipient, outcome, model, price), so it goes to the region's
 *   CRM with the dedupe record and the stored reply, published after the commit (crm-participant.ts),
 *   and to the region's own KV when it has one (else the central KV, where the edge looks for it).
 */
import type postgres from 'postgres';
import type { BatchHandler } from '../../../shared/ports/bus.ts';
import type { BionicTopics, SagaCommand } from '../../../shared/bus/topics.ts';
import type { Logger } from '../../../shared/log.ts';
import type { Kv } from '../../../shared/ports/kv.ts';
import { pushNotification, type NotificationItem } from '../../../shared/notifications/stream.ts';
import { firstDeliveries, type WorkerBus } from '../../bus/index.ts';
import { commandPayloads, outgoing, replyTo } from '../messages.ts';
import { pipelinedTx, type SagaTx } from '../pipelined-tx.ts';
import { regionOfMessage, type SagaCrms } from '../regions.ts';
import { crmParticipant } from './crm-participant.ts';

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

export interface NotificationOptions {
  /** Sagas without a region: the notification, dedupe and reply commit here. */
  platform: postgres.Sql;
  /** Sagas with a region: that region's CRM. Absent: every saga takes the platform path. */
  crm?: SagaCrms;
  bus: WorkerBus<BionicTopics>;
  /** The central KV; without it notifications are only stored. */
  kv?: Kv;
  /** A region's own KV, if it has one (else its people's streams are in the central KV). */
  regionKv?(region: string): Kv | undefined;
  log: Logger;
}

/** A {@link NotificationRow}'s columns, as both databases' `notifications` have them. */
const ROW_COLUMNS = ['id', 'recipient', 'kind', 'title', 'body', 'data', 'source_message_id', 'created_at'];

export function notificationHandler(opts: NotificationOptions): BatchHandler<SagaCommand> {
  const regional = opts.crm && crmParticipant({
    name: NOTIFICATION_GROUP, crm: opts.crm, bus: opts.bus, log: opts.log, handle: storeIn,
    // Fresh and redelivered alike are read back and pushed (a no-op for those already there).
    async afterCommit(crm, region, commands) {
      const kv = (region ? opts.regionKv?.(region) : undefined) ?? opts.kv;
      if (!kv) return;
      await pushAll(kv, await crm<NotificationRow[]>`
        SELECT ${crm(ROW_COLUMNS)} FROM notifications WHERE source_message_id = ANY(${commands.map((c) => c.messageId)}::text[]) ORDER BY id`);
    },
  });
  const central = platformHandler(opts);
  return async (messages, ctx) => {
    const inRegion = regional ? messages.filter((m) => regionOfMessage(m.value) !== undefined) : [];
    const rest = inRegion.length ? messages.filter((m) => regionOfMessage(m.value) === undefined) : messages;
    if (rest.length) await central(rest, ctx);
    if (inRegion.length) await regional!(inRegion, ctx);
  };
}

/** A regional saga's NOTIFY, inside its region's CRM transaction (crm-participant.ts). */
async function storeIn(tx: SagaTx, c: SagaCommand): Promise<SagaCommand> {
  const n = render(c);
  // The dedupe record makes a conflict impossible; were one there, the stored row's id is the answer.
  const [row] = await tx<{ id: string }[]>`
    WITH ins AS (
      INSERT INTO notifications (recipient, kind, title, body, data, source_message_id)
      VALUES (${n.recipient}, ${n.kind}, ${n.title}, ${n.body}, ${tx.json(n.data as never)}, ${n.source_message_id})
      ON CONFLICT (source_message_id) DO NOTHING
      RETURNING id)
    SELECT id FROM ins
    UNION ALL
    SELECT id FROM notifications WHERE source_message_id = ${n.source_message_id}`;
  return replyTo(c, 'NOTIFIED', { notificationId: String(row!.id) });
}

/** Sagas without a region: the platform database and the central KV. */
function platformHandler(opts: NotificationOptions): BatchHandler<SagaCommand> {
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
          RETURNING ${tx(ROW_COLUMNS)})
        SELECT * FROM ins
        UNION ALL
        SELECT ${tx(ROW_COLUMNS)} FROM notifications
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
    if (opts.kv) await pushAll(opts.kv, rows);
  };
}

/** Pushes stored rows to their recipients' streams: recipients in parallel, each one's in database order. */
async function pushAll(kv: Kv, rows: NotificationRow[]): Promise<void> {
  const byRecipient = new Map<string, NotificationRow[]>();
  for (const r of rows) byRecipient.set(r.recipient, [...(byRecipient.get(r.recipient) ?? []), r]);
  await Promise.all([...byRecipient].map(async ([recipient, list]) => {
    for (const r of list) await pushNotification(kv, recipient, itemOf(r));
  }));
}
