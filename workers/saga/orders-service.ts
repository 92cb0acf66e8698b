/**
 * The orders API behind router/routers/orders.ts and saga.ts: registering an order (CRM) and
 * starting its saga (a REGISTER event on the bus), reading orders and sagas, and editing an order
 * with optimistic locking.
 *
 * Registering spans two databases, so it is ordered for safety: the order commits in the CRM first,
 * then REGISTER is published, and the call succeeds only after both. If the process dies in between,
 * the caller's retry with the same idempotency key publishes REGISTER again (the orchestrator
 * dedupes it by message id), and the sweeper registers any order left without a saga.
 *
 * Data residency: an order lives in its customer's region's CRM — the caller's region (operators
 * act on customers of their own region only). Its saga is `order-<region>-<id>` (order ids are per
 * database) and carries the region in its context, so every participant acts on that CRM.
 */
import type postgres from 'postgres';
import type { BionicTopics, SagaEvent } from '../../shared/bus/topics.ts';
import {
  OrderError, type CreateOrderInput, type ListOrdersInput, type OrderActor, type OrdersPort, type OrderView,
  type SagaHistoryEntry, type SagaView, type UpdateOrderInput,
} from '../../shared/saga/api.ts';
import type { WorkerBus } from '../bus/index.ts';
import type { Logger } from '../../shared/log.ts';
import { assertSameRegion } from '../../shared/regions/residency.ts';
import { outgoing } from './messages.ts';
import { asSagaCrms, type SagaCrms } from './regions.ts';

/** The saga of an order; `region`: the order's region when regions are configured (ids are per database). */
export const sagaIdOf = (orderId: string, region?: string) => `${sagaPrefix(region)}${orderId}`;
const sagaPrefix = (region?: string) => (region ? `order-${region}-` : 'order-');

interface OrderRow {
  id: string; customer_id: string; customer_username: string; model_id: number; model_name: string; status: OrderView['status'];
  price: string; note: string | null; version: number; saga_id: string | null; created_at: Date; updated_at: Date;
}

const view = (r: OrderRow): OrderView => ({
  id: r.id, customerId: r.customer_id, customerUsername: r.customer_username, modelId: r.model_id, modelName: r.model_name,
  status: r.status, price: r.price, note: r.note, version: r.version, sagaId: r.saga_id, createdAt: r.created_at, updatedAt: r.updated_at,
});

function registerEvent(r: OrderRow, region: string | undefined): SagaEvent {
  const sagaId = r.saga_id ?? sagaIdOf(r.id, region);
  return {
    messageId: `${sagaId}/REGISTER`, sagaId, type: 'REGISTER', ts: Date.now(),
    payload: {
      orderId: r.id, customerId: r.customer_id, recipient: r.customer_username, modelId: r.model_id, modelName: r.model_name, price: r.price,
      ...(region ? { region } : {}),
    },
  };
}

const encodeCursor = (id: string) => btoa(`o:${id}`).replace(/=+$/, '');
function decodeCursor(cursor: string): string {
  let text = '';
  try { text = atob(cursor); } catch { /* reported below */ }
  if (!/^o:[1-9]\d{0,18}$/.test(text)) throw new OrderError('BAD_REQUEST', 'Invalid cursor: pass nextCursor from the previous page');
  return text.slice(2);
}

export interface OrdersServiceDeps {
  /** The CRM (one database), or each region's (saga/regions.ts). */
  crm: postgres.Sql | SagaCrms;
  platform: postgres.Sql;
  bus: WorkerBus<BionicTopics>;
  /** Where refusals (`residency.refused`) are logged. */
  log?: Logger;
}

export interface OrdersService extends OrdersPort {
  /** Publishes REGISTER for saga-managed DRAFT orders older than `olderThanMs` that have no saga. */
  registerOrphans(olderThanMs: number): Promise<number>;
}

export function createOrdersService({ crm: crmDeps, platform, bus, log }: OrdersServiceDeps): OrdersService {
  // `crm_operator` and customers alike reach their own region's CRM only.
  const crms = asSagaCrms(crmDeps);
  // No region named: no CRM is asked (the CLI's `saga show` has none and reads the platform only).
  const regionOfActor = (actor?: OrderActor) => (actor?.region === undefined ? undefined : crms.sagaRegion(actor.region));
  const crmOf = (actor?: OrderActor) => crms.of(regionOfActor(actor));

  /** A customer id unknown in the caller's region: refused (and logged) when another region holds it. */
  async function refuseIfElsewhere(customerId: string, actor: OrderActor) {
    const here = regionOfActor(actor);
    if (!here) return;
    for (const { region, sql } of crms.all()) {
      if (!region || region === here) continue;
      if ((await sql`SELECT 1 FROM customers WHERE id = ${customerId}`).length) assertSameRegion(here, region, 'customer', log, actor.userId);
    }
  }
  const select = (sql: postgres.Sql | postgres.TransactionSql) => sql`
    SELECT o.id, o.customer_id, c.username AS customer_username, o.model_id, m.name AS model_name, o.status, o.price::text AS price,
           o.note, o.version, o.saga_id, o.created_at, o.updated_at
    FROM orders o JOIN customers c ON c.id = o.customer_id JOIN prosthesis_models m ON m.id = o.model_id`;
  const own = (sql: postgres.Sql | postgres.TransactionSql, actor: OrderActor) => (actor.ownOnly ? sql`AND c.username = ${actor.username}` : sql``);

  const sagaExists = async (id: string) => (await platform`SELECT 1 FROM saga_instances WHERE id = ${id}`).length > 0;
  const register = (rows: OrderRow[], region: string | undefined) => bus.publish('saga.events', rows.map((r) => outgoing(registerEvent(r, region))));

  return {
    async create(input: CreateOrderInput, actor: OrderActor) {
      const region = regionOfActor(actor);
      const crm = crmOf(actor);
      // One statement (atomic on its own): look up model and customer, insert the order unless its
      // key exists, audit it, and return it — a round trip instead of eight on the hot path.
      const [r] = await crm<(Partial<OrderRow> & { models: number; customers: number })[]>`
        WITH m AS (SELECT id, name, price FROM prosthesis_models WHERE id = ${input.modelId}),
             c AS (SELECT id, username FROM customers WHERE id = ${input.customerId}),
             n AS (SELECT nextval(pg_get_serial_sequence('orders', 'id')) AS id FROM m, c),
             ins AS (
               INSERT INTO orders (id, customer_id, model_id, price, idempotency_key, saga_id, note, status)
               SELECT n.id, c.id, m.id, m.price, ${input.idempotencyKey}, ${sagaPrefix(region)}::text || n.id, ${input.note ?? null}, 'DRAFT' FROM n, m, c
               ON CONFLICT (idempotency_key) DO NOTHING
               RETURNING id, customer_id, model_id, status, price, note, version, saga_id, created_at, updated_at),
             audit AS (
               INSERT INTO audit_log (actor, action, entity, entity_id, details)
               SELECT ${actor.username}, 'order.create', 'order', ins.id::text,
                      jsonb_build_object('customerId', ins.customer_id::text, 'modelId', ins.model_id, 'price', ins.price::text)
               FROM ins)
        SELECT (SELECT count(*) FROM m)::int AS models, (SELECT count(*) FROM c)::int AS customers,
               ins.id, ins.customer_id, c.username AS customer_username, ins.model_id, m.name AS model_name, ins.status,
               ins.price::text AS price, ins.note, ins.version, ins.saga_id, ins.created_at, ins.updated_at
        FROM (SELECT 1) AS one LEFT JOIN ins ON true LEFT JOIN c ON true LEFT JOIN m ON true`;
      if (!r!.models) throw new OrderError('BAD_REQUEST', `No prosthesis model ${input.modelId}`);
      if (!r!.customers) {
        await refuseIfElsewhere(input.customerId, actor);
        throw new OrderError('BAD_REQUEST', `No customer ${input.customerId}`);
      }
      const created = r!.id !== null;
      let row = r as OrderRow;
      if (!created) {
        const [existing] = await crm<OrderRow[]>`${select(crm)} WHERE o.idempotency_key = ${input.idempotencyKey}`;
        if (!existing || existing.customer_id !== input.customerId || existing.model_id !== input.modelId) {
          throw new OrderError('CONFLICT', 'This idempotency key was already used for a different order');
        }
        row = existing;
      }
      if (row.saga_id && (created || !(await sagaExists(row.saga_id)))) await register([row], region);
      return { order: view(row), created };
    },

    async get(id, actor) {
      const crm = crmOf(actor);
      const [row] = await crm<OrderRow[]>`${select(crm)} WHERE o.id = ${id} ${own(crm, actor)}`;
      return row ? view(row) : null;
    },

    async list(input: ListOrdersInput, actor) {
      const crm = crmOf(actor);
      const after = input.cursor ? decodeCursor(input.cursor) : null;
      const rows = await crm<OrderRow[]>`${select(crm)}
        WHERE true ${own(crm, actor)}
          ${after ? crm`AND o.id < ${after}` : crm``}
          ${input.status ? crm`AND o.status = ${input.status}` : crm``}
          ${input.customerId ? crm`AND o.customer_id = ${input.customerId}` : crm``}
        ORDER BY o.id DESC LIMIT ${input.limit + 1}`;
      const page = rows.slice(0, input.limit);
      return { items: page.map(view), nextCursor: rows.length > input.limit ? encodeCursor(page.at(-1)!.id) : null };
    },

    async update(input: UpdateOrderInput, actor) {
      return crmOf(actor).begin(async (tx) => {
        const changed = await tx`UPDATE orders SET note = ${input.note}, version = version + 1
          WHERE id = ${input.id} AND version = ${input.version} RETURNING id`;
        if (!changed.length) {
          const [current] = await tx<{ version: number }[]>`SELECT version FROM orders WHERE id = ${input.id}`;
          if (!current) throw new OrderError('NOT_FOUND', `No order ${input.id}`);
          throw new OrderError('CONFLICT', `Order ${input.id} was changed by someone else (version ${current.version}, you sent ${input.version}); reload it and try again`);
        }
        await tx`INSERT INTO audit_log (actor, action, entity, entity_id, details)
          VALUES (${actor.username}, 'order.update', 'order', ${input.id}, ${tx.json({ version: input.version + 1, note: input.note })})`;
        const [row] = await tx<OrderRow[]>`${select(tx)} WHERE o.id = ${input.id}`;
        return view(row!);
      });
    },

    async saga(orderId, actor) {
      const id = sagaIdOf(orderId, regionOfActor(actor));
      const [s] = await platform`SELECT * FROM saga_instances WHERE id = ${id}`;
      if (!s) return null;
      const history = await platform`SELECT * FROM saga_history WHERE saga_id = ${id} ORDER BY id`;
      return {
        id: s.id, kind: s.kind, state: s.state, version: s.version, context: s.context, awaiting: s.awaiting,
        deadlineAt: s.deadline_at, createdAt: s.created_at, updatedAt: s.updated_at, finishedAt: s.finished_at,
        history: history.map((h): SagaHistoryEntry => ({
          at: h.at, eventId: h.event_id, eventType: h.event_type, causationId: h.causation_id, fromState: h.from_state,
          toState: h.to_state, outcome: h.outcome, reason: h.reason, version: h.version, commands: h.commands,
        })),
      } satisfies SagaView;
    },

    async registerOrphans(olderThanMs) {
      let total = 0;
      for (const { region, sql: crm } of crms.all()) {
        const candidates = await crm<OrderRow[]>`${select(crm)}
          WHERE o.status = 'DRAFT' AND o.saga_id IS NOT NULL AND o.created_at < now() - make_interval(secs => ${olderThanMs / 1000})
          ORDER BY o.id LIMIT 500`;
        if (!candidates.length) continue;
        const known = new Set((await platform<{ id: string }[]>`
          SELECT id FROM saga_instances WHERE id = ANY(${candidates.map((c) => c.saga_id!)}::text[])`).map((r) => r.id));
        const orphans = candidates.filter((c) => !known.has(c.saga_id!));
        if (orphans.length) await register(orphans, region);
        total += orphans.length;
      }
      return total;
    },
  };
}
