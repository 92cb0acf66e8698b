/**
 * The order saga on the real embedded stack (PostgreSQL crm + platform, the PostgreSQL bus, KV),
 * components running in this process: approval and rejection end to end, every command and event
 * delivered again (the four topics replayed) without changing anything, events that do not fit
 * recorded and ignored, and timeouts that reject a stalled saga and give reserved funds back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MESSAGE_ID_HEADER } from '../../shared/bus/dlq.ts';
import type { SagaCommand } from '../../shared/bus/topics.ts';
import { recentNotifications } from '../../shared/notifications/stream.ts';
import type { SagaRuntime } from '../../workers/saga/index.ts';
import { eventually, SAGA_TOPIC_NAMES, startSagaStack, type SagaStack } from '../support/saga-stack.ts';

let stack: SagaStack;
let ids: Record<string, string>;
let keySeq = 0;
const key = () => `test-key-${process.pid}-${++keySeq}`;

beforeAll(async () => {
  stack = await startSagaStack('saga-once');
  ids = await stack.customers([
    { username: 'rich', balance: '100000.00' }, { username: 'poor', balance: '1500.00' }, { username: 'broke', balance: '0.00' },
    { username: 'slow', balance: '5000.00' }, { username: 'late', balance: '5000.00' }, { username: 'odd', balance: '5000.00' },
    { username: 'orphan', balance: '5000.00' },
  ]);
}, 120_000);
afterAll(async () => { await stack?.stop(); }, 60_000);

/** Runs `fn` with saga components started here, stopping them afterwards whatever happens. */
async function withRuntime<T>(opts: Parameters<SagaStack['runtime']>[0], fn: (rt: SagaRuntime) => Promise<T>): Promise<T> {
  const rt = await stack.runtime(opts);
  try { return await fn(rt); } finally { await rt.stop(); }
}

const create = (rt: SagaRuntime, username: string) =>
  rt.orders.create({ customerId: ids[username]!, modelId: stack.model.id, idempotencyKey: key() }, { username: 'operator1' }).then((r) => r.order);

async function sagaOf(orderId: string) {
  const [s] = await stack.platform`SELECT state, version, context FROM saga_instances WHERE id = ${`order-${orderId}`}`;
  return s as { state: string; version: number; context: Record<string, unknown> } | undefined;
}
const untilState = (orderId: string, state: string, timeoutMs = 60_000) =>
  eventually(async () => (await sagaOf(orderId))?.state === state, `saga of order ${orderId} to reach ${state}`, timeoutMs);
const history = (orderId: string) => stack.platform<{ event_type: string; outcome: string; reason: string | null; to_state: string | null; causation_id: string | null }[]>`
  SELECT event_type, outcome, reason, to_state, causation_id FROM saga_history WHERE saga_id = ${`order-${orderId}`} ORDER BY id`;
const account = async (username: string) => (await stack.crm<{ balance: string; reserved: string }[]>`
  SELECT balance::text, reserved::text FROM customer_accounts WHERE customer_id = ${ids[username]!}`)[0]!;

/** Everything the saga can change, in a comparable form. */
async function snapshot() {
  const [orders, accounts, reservations, sagas, hist, notes, replies] = await Promise.all([
    stack.crm`SELECT id, status, version FROM orders ORDER BY id`,
    stack.crm`SELECT customer_id, balance::text, reserved::text, version FROM customer_accounts ORDER BY customer_id`,
    stack.crm`SELECT order_id, status, amount::text FROM order_reservations ORDER BY order_id`,
    stack.platform`SELECT id, state, version, context FROM saga_instances ORDER BY id`,
    stack.platform`SELECT count(*)::int AS n FROM saga_history`,
    stack.platform`SELECT id, recipient, kind, source_message_id FROM notifications ORDER BY id`,
    stack.crm`SELECT count(*)::int AS n FROM saga_replies`,
  ]);
  const streams = await Promise.all(Object.keys(ids).map(async (u) => [u, await recentNotifications(stack.kv, u, 100)] as const));
  return { orders, accounts, reservations, sagas, hist, notes, replies, streams };
}

describe('order saga: exactly once in effect', () => {
  it('approves and rejects end to end, then changes nothing when every topic is replayed', async () => {
    const orders = await withRuntime({}, async (rt) => {
      const made = { rich: [] as string[], poor: [] as string[], broke: [] as string[] };
      for (let i = 0; i < 3; i++) made.rich.push((await create(rt, 'rich')).id);
      made.poor.push((await create(rt, 'poor')).id, (await create(rt, 'poor')).id);
      made.broke.push((await create(rt, 'broke')).id);
      for (const id of Object.values(made).flat()) await untilState(id, 'FINISHED');
      return made;
    });

    const status = async (id: string) => (await stack.crm<{ status: string; version: number }[]>`SELECT status, version FROM orders WHERE id = ${id}`)[0]!;
    for (const id of orders.rich) expect(await status(id)).toEqual({ status: 'APPROVED', version: 2 });
    // The poor customer can afford exactly one order; the saga decides which, one at a time.
    const poorStatuses = await Promise.all(orders.poor.map(status));
    expect(poorStatuses.map((s) => s.status).sort()).toEqual(['APPROVED', 'REJECTED']);
    expect(await status(orders.broke[0]!)).toEqual({ status: 'REJECTED', version: 2 });
    expect(await account('rich')).toEqual({ balance: '100000.00', reserved: '3000.00' });
    expect(await account('poor')).toEqual({ balance: '1500.00', reserved: '1000.00' });
    expect(await account('broke')).toEqual({ balance: '0.00', reserved: '0.00' });

    const rejected = orders.poor[poorStatuses.findIndex((s) => s.status === 'REJECTED')]!;
    expect((await sagaOf(rejected))!.context).toMatchObject({ outcome: 'REJECTED', reason: 'insufficient funds: 500.00 available, 1000.00 needed' });
    expect((await history(rejected)).map((h) => `${h.event_type}→${h.to_state}`)).toEqual([
      'REGISTER→DRAFT', 'ORDER_REJECTED→REJECTED', 'DEAL_UPDATED→NOTIFICATION', 'NOTIFIED→FINISHED',
    ]);
    for (const id of orders.rich) {
      expect(await sagaOf(id)).toMatchObject({ state: 'FINISHED', version: 4 });
      expect((await history(id)).map((h) => `${h.event_type}→${h.to_state}`)).toEqual([
        'REGISTER→DRAFT', 'ORDER_APPROVED→APPROVED', 'DEAL_UPDATED→NOTIFICATION', 'NOTIFIED→FINISHED',
      ]);
    }
    const notes = await stack.platform<{ recipient: string; kind: string; title: string; body: string }[]>`SELECT recipient, kind, title, body FROM notifications ORDER BY id`;
    expect(notes.filter((n) => n.recipient === 'rich').map((n) => n.kind)).toEqual(['order.approved', 'order.approved', 'order.approved']);
    expect(notes.find((n) => n.recipient === 'broke')).toMatchObject({ kind: 'order.rejected', body: expect.stringContaining('insufficient funds: 0.00 available') });
    const richStream = await recentNotifications(stack.kv, 'rich', 10);
    expect(richStream.items.map((e) => e.seq)).toEqual([3, 2, 1]);

    const before = await snapshot();
    // Replay: every message on the four saga topics, published again twice with its id.
    const messages = await stack.platform<{ topic: string; key: string; value: string; headers: Record<string, string> | null }[]>`
      SELECT t.name AS topic, m.key, m.value, m.headers FROM bus_messages m JOIN bus_topics t ON t.id = m.topic_id
      WHERE t.name = ANY(${[...SAGA_TOPIC_NAMES]}::text[]) ORDER BY t.name, m.partition, m.msg_offset`;
    // Per saga: four events (REGISTER and three replies) and three commands — seven, none of them twice.
    expect(messages.length).toBe(6 * 7);
    for (const topic of SAGA_TOPIC_NAMES) {
      const ofTopic = messages.filter((m) => m.topic === topic).map((m) => ({
        key: m.key, value: JSON.parse(m.value) as SagaCommand, headers: { [MESSAGE_ID_HEADER]: m.headers?.[MESSAGE_ID_HEADER] ?? '' },
      }));
      for (const m of ofTopic) expect(m.headers[MESSAGE_ID_HEADER]).toBe(m.value.messageId);
      await stack.bus.publish(topic, [...ofTopic, ...ofTopic]);
    }
    const dedupedBefore = Number((await stack.platform`SELECT count(*) FROM bus_processed`)[0]!.count);
    await withRuntime({}, () => stack.quiet());
    expect(await snapshot()).toEqual(before);
    // The replayed messages really were consumed: by the lag, and as duplicates nobody recorded anew.
    expect(Number((await stack.platform`SELECT count(*) FROM bus_processed`)[0]!.count)).toBe(dedupedBefore);
  }, 180_000);

  it('records and ignores events that do not fit, and carries on', async () => {
    const order = await withRuntime({ components: ['orchestrator'] }, async (rt) => {
      const o = await create(rt, 'odd');
      await untilState(o.id, 'DRAFT');
      const sagaId = `order-${o.id}`;
      const awaiting = `${sagaId}/v1/APPROVE_ORDER`;
      const event = (type: string, payload: Record<string, unknown>, over: Partial<SagaCommand> = {}): SagaCommand =>
        ({ messageId: `stray-${type}-${o.id}`, sagaId, type, payload, ts: Date.now(), causationId: awaiting, ...over });
      await stack.bus.publish('saga.events', [
        // Right command, wrong moment: there is no DEAL_UPDATED transition out of DRAFT.
        { key: sagaId, value: event('DEAL_UPDATED', { orderStatus: 'APPROVED', orderVersion: 2 }) },
        // Right moment, wrong command: it answers something the saga never sent.
        { key: sagaId, value: event('ORDER_APPROVED', { reserved: '1000.00' }, { causationId: `${sagaId}/v7/APPROVE_ORDER` }) },
        { key: 'order-999999', value: event('NOTIFIED', { notificationId: '1' }, { sagaId: 'order-999999', messageId: 'stray-unknown' }) },
      ]);
      await stack.quiet(['saga-orchestrator']);
      return o;
    });
    expect(await sagaOf(order.id)).toMatchObject({ state: 'DRAFT', version: 1 });
    expect((await history(order.id)).map((h) => [h.event_type, h.outcome, h.reason])).toEqual([
      ['REGISTER', 'applied', null],
      ['DEAL_UPDATED', 'ignored', 'DEAL_UPDATED does not fit state DRAFT'],
      ['ORDER_APPROVED', 'ignored', `ORDER_APPROVED answers order-${order.id}/v7/APPROVE_ORDER, but the saga awaits order-${order.id}/v1/APPROVE_ORDER`],
    ]);
    const unknown = await stack.platform`SELECT outcome, reason FROM saga_history WHERE saga_id = 'order-999999'`;
    expect(unknown).toEqual([{ outcome: 'ignored', reason: 'no saga order-999999' }]);
    expect(await stack.platform`SELECT 1 FROM saga_instances WHERE id = 'order-999999'`).toHaveLength(0);

    // The strays changed nothing: the real reply still moves the saga on.
    await withRuntime({}, () => untilState(order.id, 'FINISHED'));
    expect(await account('odd')).toEqual({ balance: '5000.00', reserved: '1000.00' });
  }, 120_000);

  it('rejects a saga stuck in APPROVED after its timeout and releases the reservation', async () => {
    const config = { stepTimeoutMs: 1500, sweepIntervalMs: 100 };
    const order = await withRuntime({ config, components: ['orchestrator', 'profile', 'notification', 'sweeper'] }, async (rt) => {
      const o = await create(rt, 'slow');
      await eventually(async () => (await history(o.id)).some((h) => h.event_type === 'TIMEOUT'), 'the timeout', 30_000);
      await eventually(async () => (await account('slow')).reserved === '0.00', 'the reservation to be released', 30_000);
      return o;
    });
    expect(await sagaOf(order.id)).toMatchObject({ state: 'REJECTED' });
    // Deals comes back: it approves (the old command), then rejects (the compensation).
    await withRuntime({ config }, () => untilState(order.id, 'FINISHED'));
    const h = await history(order.id);
    expect(h.map((e) => [e.event_type, e.outcome, e.to_state])).toEqual([
      ['REGISTER', 'applied', 'DRAFT'],
      ['ORDER_APPROVED', 'applied', 'APPROVED'],
      ['TIMEOUT', 'applied', 'REJECTED'],
      ['DEAL_UPDATED', 'ignored', null],
      ['DEAL_UPDATED', 'applied', 'NOTIFICATION'],
      ['NOTIFIED', 'applied', 'FINISHED'],
    ]);
    expect(h[3]!.causation_id).toBe(`order-${order.id}/v2/APPROVE_DEAL`);
    expect((await sagaOf(order.id))!.context).toMatchObject({ outcome: 'REJECTED', reason: 'no answer within 1500 ms in state APPROVED' });
    expect((await stack.crm`SELECT status, version FROM orders WHERE id = ${order.id}`)[0]).toEqual({ status: 'REJECTED', version: 3 });
    expect((await stack.crm`SELECT status, amount::text FROM order_reservations WHERE order_id = ${order.id}`)[0]).toEqual({ status: 'released', amount: '1000.00' });
    expect(await account('slow')).toEqual({ balance: '5000.00', reserved: '0.00' });
    const [note] = await stack.platform`SELECT kind, body FROM notifications WHERE data->>'orderId' = ${order.id}`;
    expect(note).toMatchObject({ kind: 'order.rejected', body: expect.stringContaining('no answer within 1500 ms') });
  }, 120_000);

  it('gives funds back when profile reserves after the saga already timed out in DRAFT', async () => {
    const config = { stepTimeoutMs: 1000, sweepIntervalMs: 100 };
    const order = await withRuntime({ config, components: ['orchestrator', 'deals', 'notification', 'sweeper'] }, async (rt) => {
      const o = await create(rt, 'late');
      await untilState(o.id, 'FINISHED', 30_000);
      return o;
    });
    expect((await stack.crm`SELECT status FROM orders WHERE id = ${order.id}`)[0]).toEqual({ status: 'REJECTED' });
    expect(await account('late')).toEqual({ balance: '5000.00', reserved: '0.00' });
    // Profile was down: its queue holds APPROVE_ORDER, then RELEASE_FUNDS. It reserves, then releases.
    await withRuntime({ config, components: ['profile', 'orchestrator'] }, () => stack.quiet());
    expect((await stack.crm`SELECT status, amount::text FROM order_reservations WHERE order_id = ${order.id}`)[0]).toEqual({ status: 'released', amount: '1000.00' });
    expect(await account('late')).toEqual({ balance: '5000.00', reserved: '0.00' });
    const h = await history(order.id);
    expect(h.at(-1)).toMatchObject({ event_type: 'ORDER_APPROVED', outcome: 'ignored', reason: expect.stringContaining('does not fit state FINISHED') });
    expect(await sagaOf(order.id)).toMatchObject({ state: 'FINISHED', version: 4 });
  }, 120_000);

  it('registers an order whose REGISTER never reached the bus (the API died after the CRM commit)', async () => {
    const [{ id }] = await stack.crm<[{ id: string }]>`
      INSERT INTO orders (id, customer_id, model_id, price, saga_id, status, created_at)
      SELECT n, ${ids.orphan!}, ${stack.model.id}, 1000.00, 'order-' || n, 'DRAFT', now() - interval '1 hour'
      FROM nextval(pg_get_serial_sequence('orders', 'id')) AS n RETURNING id::text`;
    await withRuntime({ config: { stepTimeoutMs: 2000, sweepIntervalMs: 50 } }, () => untilState(id, 'FINISHED', 60_000));
    expect((await history(id)).filter((h) => h.event_type === 'REGISTER')).toHaveLength(1);
    expect((await stack.crm`SELECT status FROM orders WHERE id = ${id}`)[0]!.status).toMatch(/^(APPROVED|REJECTED)$/);
  }, 120_000);
});
