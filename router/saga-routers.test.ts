import { describe, expect, it } from 'vitest';
import { TRPCError } from '@trpc/server';
import { createLogger } from '../shared/log.ts';
import { ConnectionLimitError, type NotificationFeed } from '../shared/notifications/feed.ts';
import type { StreamEntry } from '../shared/notifications/stream.ts';
import { OrderError, type OrdersPort, type OrderView } from '../shared/saga/api.ts';
import type { Identity, Ports, RouterContext } from './context.ts';
import { appRouter } from './root.ts';
import { createCallerFactory } from './trpc.ts';

const caller = createCallerFactory(appRouter);
const operator: Identity = { userId: 'o1', username: 'operator1', roles: ['crm_operator'] };
const customer: Identity = { userId: 'u1', username: 'user1', roles: ['prosthesis_user'] };
const ctx = (identity: Identity | null, ports: Ports): RouterContext => ({
  requestId: 'test', identity, log: createLogger({ level: 'silent' }), ports, host: 'worker',
  health: async () => ({ status: 'ok', dependencies: {} }),
});
const order: OrderView = {
  id: '7', customerId: '3', customerUsername: 'user1', modelId: 1, modelName: 'Hand', status: 'DRAFT', price: '10.00',
  note: null, version: 1, sagaId: 'order-7', createdAt: new Date(0), updatedAt: new Date(0),
};
const fail = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as TRPCError);

function fakeOrders(over: Partial<OrdersPort> = {}): OrdersPort & { actors: unknown[] } {
  const actors: unknown[] = [];
  return {
    actors,
    create: async (_i, actor) => { actors.push(actor); return { order, created: true }; },
    get: async (_id, actor) => { actors.push(actor); return null; },
    list: async (_i, actor) => { actors.push(actor); return { items: [order], nextCursor: null }; },
    update: async () => { throw new OrderError('CONFLICT', 'stale'); },
    saga: async () => null,
    ...over,
  };
}

describe('orders and saga routers', () => {
  it('let operators register orders and refuse everyone else', async () => {
    const orders = fakeOrders();
    const input = { customerId: 3, modelId: 1, idempotencyKey: 'key-00000001' };
    await expect(caller(ctx(operator, { orders })).orders.create(input)).resolves.toEqual({ order, created: true });
    expect(orders.actors).toEqual([{ userId: 'o1', username: 'operator1', ownOnly: false }]);
    expect((await fail(caller(ctx(customer, { orders })).orders.create(input))).code).toBe('FORBIDDEN');
    expect((await fail(caller(ctx(null, { orders })).orders.create(input))).code).toBe('UNAUTHORIZED');
    expect((await fail(caller(ctx(operator, { orders })).orders.create({ ...input, idempotencyKey: 'short' }))).code).toBe('BAD_REQUEST');
  });

  it('scope customers to their own orders and turn port refusals into tRPC codes', async () => {
    const orders = fakeOrders();
    await caller(ctx(customer, { orders })).orders.list({});
    expect(orders.actors).toEqual([{ userId: 'u1', username: 'user1', ownOnly: true }]);
    expect((await fail(caller(ctx(customer, { orders })).orders.get({ id: '7' }))).code).toBe('NOT_FOUND');
    const conflict = await fail(caller(ctx(operator, { orders })).orders.update({ id: '7', version: 1, note: null }));
    expect([conflict.code, conflict.message]).toEqual(['CONFLICT', 'stale']);
    expect((await fail(caller(ctx(customer, { orders })).saga.get({ orderId: '7' }))).code).toBe('FORBIDDEN');
    expect((await fail(caller(ctx(operator, { orders })).saga.get({ orderId: '7' }))).code).toBe('NOT_FOUND');
    expect((await fail(caller(ctx(operator, {})).orders.list({}))).code).toBe('SERVICE_UNAVAILABLE');
  });
});

describe('notifications router', () => {
  const entry = (seq: number): StreamEntry => ({ seq, id: String(seq), kind: 'order.approved', title: 't', body: 'b', data: {}, createdAt: '2026-01-01T00:00:00.000Z' });
  const feed = (open: NotificationFeed['open']): NotificationFeed => ({ maxConnectionsPerUser: 2, open, recent: async () => [entry(2), entry(1)] });

  it('yields each notification tracked by its stream position, for the caller only', async () => {
    const asked: unknown[] = [];
    const notifications = feed(async (user, opts) => {
      // The caller's identity: the feed finds their stream by username in their region's KV.
      asked.push({ user: user.username, region: user.region, lastEventId: opts.lastEventId });
      return (async function* () { yield entry(4); yield entry(5); })();
    });
    const stream = await caller(ctx(customer, { notifications })).notifications.onNotification({ lastEventId: '3' });
    const got: unknown[] = [];
    // On the server a tracked event is [id, data, marker] (clients see { id, data }): the id is the SSE event id.
    for await (const e of stream) got.push((e as unknown as unknown[]).slice(0, 2));
    expect(got).toEqual([['4', entry(4)], ['5', entry(5)]]);
    expect(asked).toEqual([{ user: 'user1', region: customer.region, lastEventId: '3' }]);
    await expect(caller(ctx(customer, { notifications })).notifications.recent({ limit: 2 })).resolves.toHaveLength(2);
  });

  it('refuses a connection over the limit with TOO_MANY_REQUESTS and a message saying what to do', async () => {
    const notifications = feed(async () => { throw new ConnectionLimitError(2); });
    const stream = await caller(ctx(customer, { notifications })).notifications.onNotification({});
    const err = await fail((async () => { for await (const _ of stream) { /* none */ } })());
    expect(err).toBeInstanceOf(TRPCError);
    expect([err.code, err.message]).toEqual(['TOO_MANY_REQUESTS', 'Too many live notification connections: at most 2 per user. Close another tab or window and retry.']);
  });
});
