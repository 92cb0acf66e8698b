/**
 * What the order saga's messages carry. Every message uses the bus's saga envelope
 * (shared/bus/topics.ts: messageId, sagaId, type, payload, ts, causationId); these schemas type the
 * `payload` per message type. Commands carry the saga's whole context — a handful of fields — so a
 * participant never has to ask anyone for more.
 */
import { z } from 'zod';
import type { SagaCommand } from '../../shared/bus/topics.ts';
import { MESSAGE_ID_HEADER } from '../../shared/bus/dlq.ts';
import type { OutgoingMessage } from '../../shared/ports/bus.ts';
import { REGION_ID } from '../../shared/regions/config.ts';

const money = z.string().regex(/^\d{1,10}(\.\d{1,2})?$/, 'must be a decimal amount');
const id = z.string().regex(/^\d{1,19}$/, 'must be a decimal id');

/** REGISTER's payload, and the start of every saga's context. */
export const registerPayload = z.object({
  orderId: id,
  customerId: id,
  /** The customer's username: who is notified. */
  recipient: z.string().min(1).max(200),
  modelId: z.number().int().positive(),
  modelName: z.string().min(1).max(200),
  price: money,
  /** The customer's region (data residency): every participant acts on that region's CRM. Absent: the central CRM. */
  region: z.string().regex(REGION_ID).optional(),
});

/** Facts the saga accumulates as it goes. */
export const sagaContextSchema = registerPayload.extend({
  outcome: z.enum(['APPROVED', 'REJECTED']).optional(),
  reason: z.string().max(500).optional(),
  reserved: money.optional(),
  orderStatus: z.string().optional(),
  orderVersion: z.number().int().optional(),
  notificationId: z.string().optional(),
});
export type SagaContext = z.infer<typeof sagaContextSchema>;

/** Payload schema of each event the orchestrator accepts (participants' replies and its own TIMEOUT). */
export const eventPayloads = {
  REGISTER: registerPayload,
  ORDER_APPROVED: z.object({ reserved: money }),
  ORDER_REJECTED: z.object({ reason: z.string().min(1).max(500) }),
  DEAL_UPDATED: z.object({ orderStatus: z.string().min(1), orderVersion: z.number().int() }),
  NOTIFIED: z.object({ notificationId: z.string().min(1) }),
  TIMEOUT: z.object({ reason: z.string().min(1).max(500) }),
} as const;
export type SagaEventType = keyof typeof eventPayloads;

export const COMMAND_TOPICS = {
  APPROVE_ORDER: 'profile.commands',
  RELEASE_FUNDS: 'profile.commands',
  APPROVE_DEAL: 'deals.commands',
  REJECT_DEAL: 'deals.commands',
  NOTIFY: 'notification.commands',
} as const;
export type CommandType = keyof typeof COMMAND_TOPICS;
export type CommandTopic = (typeof COMMAND_TOPICS)[CommandType];

/** What each participant reads from a command's payload (the context). */
export const commandPayloads = {
  profile: sagaContextSchema.pick({ orderId: true, customerId: true, price: true }),
  deals: sagaContextSchema.pick({ orderId: true, reason: true }),
  notify: sagaContextSchema.pick({ orderId: true, recipient: true, modelName: true, price: true, outcome: true, reason: true }),
};

/** The bus message for a saga envelope: keyed by saga, named by its message id for deduplication. */
export function outgoing(m: SagaCommand): OutgoingMessage<SagaCommand> {
  return { key: m.sagaId, value: m, headers: { [MESSAGE_ID_HEADER]: m.messageId } };
}

/** A participant's reply to `command`: its id is derived from the command's, so re-sending it is a duplicate. */
export function replyTo(command: SagaCommand, type: SagaEventType, payload: Record<string, unknown>): SagaCommand {
  return { messageId: `${command.messageId}/reply`, sagaId: command.sagaId, type, payload, ts: Date.now(), causationId: command.messageId };
}
