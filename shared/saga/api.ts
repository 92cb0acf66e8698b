/**
 * The orders API the workers serve (router/routers/orders.ts, saga.ts): input schemas, the views
 * clients get back, the port the routers call and its one error class. Web APIs only: the router
 * imports this, the workers implement it (workers/saga/orders-service.ts).
 */
import { z } from 'zod';

export const ORDER_STATUSES = ['DRAFT', 'APPROVED', 'REJECTED', 'NOTIFICATION', 'FINISHED', 'CANCELLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const SAGA_STATES = ['DRAFT', 'APPROVED', 'REJECTED', 'NOTIFICATION', 'FINISHED'] as const;
export type SagaState = (typeof SAGA_STATES)[number];

/** Database ids are 64-bit: accepted as safe integers or decimal strings, handed on as strings. */
const entityId = z
  .union([z.number().int().positive().max(Number.MAX_SAFE_INTEGER), z.string().regex(/^[1-9]\d{0,17}$/, 'must be a positive integer')])
  .transform(String);

const note = z.string().trim().max(2000);

export const createOrderInput = z.object({
  customerId: entityId,
  modelId: z.number().int().positive().max(2_147_483_647),
  /** Chosen by the caller, unique per order: a retried request returns the order it created. */
  idempotencyKey: z.string().min(8).max(100).regex(/^[A-Za-z0-9._:-]+$/, 'may contain letters, digits and . _ : - only'),
  note: note.optional(),
});
export type CreateOrderInput = z.output<typeof createOrderInput>;

export const orderIdInput = z.object({ id: entityId });

export const listOrdersInput = z.object({
  limit: z.number().int().min(1).max(100).default(20),
  /** `nextCursor` of the previous page; absent for the first page. */
  cursor: z.string().max(64).nullish(),
  status: z.enum(ORDER_STATUSES).optional(),
  customerId: entityId.optional(),
});
export type ListOrdersInput = z.output<typeof listOrdersInput>;

export const updateOrderInput = z.object({
  id: entityId,
  /** The version the caller read; a stale one is refused with CONFLICT. */
  version: z.number().int().min(1),
  note: note.nullable(),
});
export type UpdateOrderInput = z.output<typeof updateOrderInput>;

export const sagaOfOrderInput = z.object({ orderId: entityId });

export interface OrderView {
  id: string;
  customerId: string;
  customerUsername: string;
  modelId: number;
  modelName: string;
  status: OrderStatus;
  /** Decimal string: money never passes through a float. */
  price: string;
  note: string | null;
  version: number;
  /** `null` for orders that were imported rather than registered through the API. */
  sagaId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface SagaCommandRef { messageId: string; type: string; topic: string }

export interface SagaHistoryEntry {
  at: Date;
  eventId: string;
  eventType: string;
  causationId: string | null;
  fromState: SagaState | null;
  toState: SagaState | null;
  /** `ignored`: the event did not fit the saga's state and changed nothing (`reason` says why). */
  outcome: 'applied' | 'ignored';
  reason: string | null;
  version: number | null;
  commands: SagaCommandRef[];
}

export interface SagaView {
  id: string;
  kind: string;
  state: SagaState;
  version: number;
  context: Record<string, unknown>;
  /** The command whose reply the saga waits for. */
  awaiting: string | null;
  deadlineAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  history: SagaHistoryEntry[];
}

/** Who acts (audit) and, for customers, whose orders they may see. */
export interface OrderActor {
  username: string;
  /** Set for callers who may only see their own orders (their customer username). */
  ownOnly?: boolean;
  /** The caller's region (data residency): only orders and customers of this region's CRM are reachable. */
  region?: string;
  /** The caller's subject, for refusal log lines. */
  userId?: string;
}

/** What the orders routers need from the workers. */
export interface OrdersPort {
  /** Registers an order and starts its saga; the same idempotency key returns the same order. */
  create(input: CreateOrderInput, actor: OrderActor): Promise<{ order: OrderView; created: boolean }>;
  get(id: string, actor: OrderActor): Promise<OrderView | null>;
  /** Newest first; `nextCursor` is null on the last page. */
  list(input: ListOrdersInput, actor: OrderActor): Promise<{ items: OrderView[]; nextCursor: string | null }>;
  /** Optimistic locking: throws {@link OrderError} `CONFLICT` when `version` is stale. */
  update(input: UpdateOrderInput, actor: OrderActor): Promise<OrderView>;
  /** The saga of an order (of the actor's region) with its full history; null when the order has none. */
  saga(orderId: string, actor?: OrderActor): Promise<SagaView | null>;
}

export type OrderErrorCode = 'NOT_FOUND' | 'CONFLICT' | 'BAD_REQUEST';

/** A refusal the caller can act on; the router turns `code` into the tRPC error code. */
export class OrderError extends Error {
  override readonly name = 'OrderError';
  constructor(readonly code: OrderErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
