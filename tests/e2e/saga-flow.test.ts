/**
 * The order saga through the public API, end to end with signed-in users: an operator registers
 * orders through the edge (forwarded to a worker that verifies the bearer token), the saga runs on
 * the PostgreSQL bus, and customers receive their notifications live over the edge's tRPC
 * subscription (SSE) — also with the edge running under Deno. Covers idempotency, validation and
 * roles, optimistic locking (CONFLICT), cursor pagination, the per-user connection limit, and
 * resuming a subscription after a reconnect.
 */
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { createTRPCClient, httpBatchStreamLink, httpSubscriptionLink, splitLink, TRPCClientError } from '@trpc/client';
import superjson from 'superjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/dev/free-port.ts';
import type { AppRouter } from '../../router/root.ts';
import { recentNotifications, type StreamEntry } from '../../shared/notifications/stream.ts';
import { createWorkerApp } from '../../workers/app.ts';
import { createJwtAuthenticator } from '../../workers/auth/verify-jwt.ts';
import type { SagaRuntime } from '../../workers/saga/index.ts';
import { AUDIENCE, startAuthStack, type AuthStack } from '../support/auth-stack.ts';
import { startDenoEdge, type DenoEdge } from '../support/deno-edge.ts';
import { CookieClient } from '../support/cookie-client.ts';
import { FetchEventSource } from '../support/fetch-event-source.ts';
import { eventually, startSagaStack, type SagaStack } from '../support/saga-stack.ts';

const LIMIT = 2;
let auth: AuthStack;
let saga: SagaStack;
let runtime: SagaRuntime;
let edgeUrl: string;
let denoUrl: string;
let deno: DenoEdge | undefined;
const servers: Server[] = [];
let customers: Record<string, string>;
const cookies: Record<string, string> = {};
let keys = 0;
const key = () => `flow-${process.pid}-${++keys}`;

function client(username: string, url = edgeUrl) {
  const cookie = cookies[username]!;
  return createTRPCClient<AppRouter>({
    links: [splitLink({
      condition: (op) => op.type === 'subscription',
      true: httpSubscriptionLink({ url: `${url}/trpc`, transformer: superjson, EventSource: FetchEventSource, eventSourceOptions: () => ({ headers: { cookie } }) }),
      // The edge's CSRF check: its public origin and the custom header, as createBionicClient sends.
      false: httpBatchStreamLink({ url: `${url}/trpc`, transformer: superjson, headers: () => ({ cookie, origin: auth.edgeUrl, 'x-bionic-csrf': '1' }) }),
    })],
  });
}

/** A live subscription whose deliveries and failure a test can await. */
function listen(username: string, input?: { lastEventId?: string }, url = edgeUrl) {
  const got: { id: string; data: StreamEntry }[] = [];
  let fail: (err: unknown) => void = () => {};
  const failed = new Promise<unknown>((resolve) => (fail = resolve));
  let onStart!: () => void;
  const started = new Promise<void>((resolve) => (onStart = resolve));
  const waiters: (() => void)[] = [];
  const sub = client(username, url).notifications.onNotification.subscribe(input, {
    onStarted: () => onStart(),
    onData: (d) => { got.push(d); waiters.splice(0).forEach((w) => w()); },
    onError: (err) => fail(err),
  });
  return {
    got, started, failed, stop: () => sub.unsubscribe(),
    until: (n: number, timeoutMs = 30_000) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${username}: ${got.length} of ${n} notifications after ${timeoutMs} ms`)), timeoutMs);
      const check = () => (got.length >= n ? (clearTimeout(timer), resolve()) : waiters.push(check));
      check();
    }),
  };
}

const op = () => client('operator1');
const create = (customer: string, over: Record<string, unknown> = {}) =>
  op().orders.create.mutate({ customerId: customers[customer]!, modelId: saga.model.id, idempotencyKey: key(), ...over });
const finished = (orderId: string) =>
  eventually(async () => (await saga.platform`SELECT state FROM saga_instances WHERE id = ${`order-${orderId}`}`)[0]?.state === 'FINISHED', `saga of ${orderId} to finish`);
/** Waits until every notification stored for `username` has reached their KV stream (pushes follow the commit). */
const settled = (username: string) => eventually(async () => {
  const [{ n }] = await saga.platform<[{ n: number }]>`SELECT count(*)::int AS n FROM notifications WHERE recipient = ${username}`;
  return (await recentNotifications(saga.kv, username, 1)).head === n;
}, `${username}'s notifications to reach KV`);
const codeOf = (err: unknown) => (err instanceof TRPCClientError ? (err.data as { code?: string } | undefined)?.code : String(err));

beforeAll(async () => {
  const denoPort = await freePort();
  denoUrl = `http://127.0.0.1:${denoPort}`;
  auth = await startAuthStack({ extraEdgeUrls: [denoUrl] });
  saga = await startSagaStack('saga-flow', { kv: { url: auth.kvUrl, token: auth.kvToken } });
  customers = await saga.customers([{ username: 'user1', balance: '50000.00' }, { username: 'user2', balance: '500.00' }]);
  runtime = await saga.runtime();

  const worker = createWorkerApp({
    ports: { orders: runtime.orders }, log: saga.log, health: async () => ({ status: 'ok', dependencies: {} }),
    authenticate: createJwtAuthenticator({ issuer: auth.idp.issuer, audience: AUDIENCE, log: saga.log }),
  });
  const workerPort = await freePort();
  servers.push(serve({ fetch: worker.fetch, hostname: '127.0.0.1', port: workerPort }) as Server);
  const workerUrl = `http://127.0.0.1:${workerPort}`;
  const edge = auth.edgeInstance({ workerUrl, notifications: { maxConnectionsPerUser: LIMIT, pollIntervalMs: 50 } });
  const edgePort = await freePort();
  servers.push(serve({ fetch: edge.fetch, hostname: '127.0.0.1', port: edgePort }) as Server);
  edgeUrl = `http://127.0.0.1:${edgePort}`;

  for (const username of ['operator1', 'user1', 'user2']) {
    const c = new CookieClient();
    await auth.login(c, username);
    cookies[username] = `__Host-session=${c.get('__Host-session')!.value}`;
  }

  deno = await startDenoEdge({ auth, port: denoPort, publicUrl: denoUrl, workerUrl });
}, 240_000);

afterAll(async () => {
  await deno?.stop();
  await Promise.all(servers.map((s) => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); })));
  await runtime?.stop();
  await saga?.stop();
  await auth?.stop();
}, 60_000);

describe('order saga through the API', () => {
  it('approves or declines orders end to end and notifies each customer live, only about their own', async () => {
    const s1 = listen('user1');
    const s2 = listen('user2');
    await Promise.all([s1.started, s2.started]);

    const { order, created } = await create('user1');
    expect(created).toBe(true);
    expect(order).toMatchObject({ customerUsername: 'user1', status: 'DRAFT', price: '1000.00', version: 1, sagaId: `order-${order.id}` });
    await s1.until(1);
    expect(s1.got[0]!.data).toMatchObject({ kind: 'order.approved', title: `Order #${order.id} approved`, data: { orderId: order.id, outcome: 'APPROVED' } });
    await finished(order.id);
    const view = await op().saga.get.query({ orderId: order.id });
    expect(view).toMatchObject({ state: 'FINISHED', version: 4, context: { outcome: 'APPROVED', recipient: 'user1', price: '1000.00' } });
    expect(view.history.map((h) => `${h.eventType}:${h.fromState ?? '-'}→${h.toState}`)).toEqual([
      'REGISTER:-→DRAFT', 'ORDER_APPROVED:DRAFT→APPROVED', 'DEAL_UPDATED:APPROVED→NOTIFICATION', 'NOTIFIED:NOTIFICATION→FINISHED',
    ]);
    expect(view.history[0]!.commands).toEqual([{ messageId: `order-${order.id}/v1/APPROVE_ORDER`, type: 'APPROVE_ORDER', topic: 'profile.commands' }]);
    expect(await op().orders.get.query({ id: order.id })).toMatchObject({ status: 'APPROVED', version: 2 });

    const declined = (await create('user2')).order;
    await s2.until(1);
    expect(s2.got[0]!.data).toMatchObject({ kind: 'order.rejected', body: expect.stringContaining('insufficient funds: 500.00 available, 1000.00 needed') });
    await finished(declined.id);
    expect(await op().orders.get.query({ id: declined.id })).toMatchObject({ status: 'REJECTED' });

    const accounts = await saga.crm`SELECT c.username, a.balance::text, a.reserved::text FROM customer_accounts a JOIN customers c ON c.id = a.customer_id ORDER BY c.username`;
    expect(accounts).toEqual([{ username: 'user1', balance: '50000.00', reserved: '1000.00' }, { username: 'user2', balance: '500.00', reserved: '0.00' }]);
    // Each customer heard only about their own order; and sees only their own orders.
    expect(s1.got).toHaveLength(1);
    expect(s2.got).toHaveLength(1);
    expect((await client('user1').orders.list.query({})).items.map((o) => o.customerUsername)).toEqual(['user1']);
    expect(codeOf(await client('user1').orders.get.query({ id: declined.id }).catch((e) => e))).toBe('NOT_FOUND');
    expect((await client('user2').notifications.recent.query({})).map((n) => n.kind)).toEqual(['order.rejected']);
    s1.stop();
    s2.stop();
  });

  it('registers an order once per idempotency key, validates input, and lets only operators register', async () => {
    const k = key();
    const first = await create('user1', { idempotencyKey: k });
    const again = await create('user1', { idempotencyKey: k });
    expect(again).toMatchObject({ created: false, order: { id: first.order.id } });
    expect(codeOf(await create('user2', { idempotencyKey: k }).catch((e) => e))).toBe('CONFLICT');
    expect(codeOf(await client('user1').orders.create.mutate({ customerId: customers.user1!, modelId: saga.model.id, idempotencyKey: key() }).catch((e) => e))).toBe('FORBIDDEN');
    const invalid = await op().orders.create.mutate({ customerId: 'abc', modelId: -1, idempotencyKey: 'x' }).catch((e) => e);
    expect(codeOf(invalid)).toBe('BAD_REQUEST');
    expect(Object.keys((invalid as TRPCClientError<AppRouter>).data?.zodError?.fieldErrors ?? {}).sort()).toEqual(['customerId', 'idempotencyKey', 'modelId']);
    const unknownModel = await create('user1', { modelId: 999_999 }).catch((e) => e);
    expect(codeOf(unknownModel)).toBe('BAD_REQUEST');
    expect((unknownModel as Error).message).toBe('No prosthesis model 999999');
    await finished(first.order.id);
    expect(await saga.platform`SELECT count(*)::int AS n FROM saga_instances WHERE id = ${`order-${first.order.id}`}`).toEqual([{ n: 1 }]);
  });

  it('updates an order with optimistic locking: a stale version gets CONFLICT', async () => {
    const { order } = await create('user1');
    await finished(order.id);
    const current = await op().orders.get.query({ id: order.id });
    const updated = await op().orders.update.mutate({ id: order.id, version: current.version, note: 'customer asked for a fitting on Monday' });
    expect(updated).toMatchObject({ version: current.version + 1, note: 'customer asked for a fitting on Monday' });
    const stale = await op().orders.update.mutate({ id: order.id, version: current.version, note: 'overwrite' }).catch((e) => e);
    expect(codeOf(stale)).toBe('CONFLICT');
    expect((stale as Error).message).toContain(`version ${current.version + 1}, you sent ${current.version}`);
    expect((await op().orders.get.query({ id: order.id })).note).toBe('customer asked for a fitting on Monday');
    expect(codeOf(await op().orders.update.mutate({ id: '999999', version: 1, note: null }).catch((e) => e))).toBe('NOT_FOUND');
  });

  it('lists orders newest first with a cursor', async () => {
    const made = [];
    for (let i = 0; i < 5; i++) made.push((await create('user1')).order.id);
    const seen: string[] = [];
    let cursor: string | null | undefined;
    let pages = 0;
    do {
      const page = await op().orders.list.query({ limit: 2, cursor, customerId: customers.user1! });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((o) => o.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(seen).toEqual([...seen].sort((a, b) => Number(b) - Number(a)));
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of made) expect(seen).toContain(id);
    expect(pages).toBe(Math.ceil(seen.length / 2));
    expect(codeOf(await op().orders.list.query({ cursor: 'not-a-cursor' }).catch((e) => e))).toBe('BAD_REQUEST');
    await Promise.all(made.map(finished));
  });

  it(`refuses more than ${LIMIT} live connections per user with a clear error, and frees a slot on disconnect`, async () => {
    const open = [listen('user1'), listen('user1')];
    await Promise.all(open.map((s) => s.started));
    const extra = listen('user1');
    const err = await extra.failed;
    expect(codeOf(err)).toBe('TOO_MANY_REQUESTS');
    expect((err as Error).message).toBe(`Too many live notification connections: at most ${LIMIT} per user. Close another tab or window and retry.`);
    const raw = await fetch(`${edgeUrl}/notifications/stream`, { headers: { cookie: cookies.user1! } });
    expect(raw.status).toBe(429);
    expect(await raw.json()).toEqual({ error: { code: 'TOO_MANY_REQUESTS', message: expect.stringContaining(`at most ${LIMIT} per user`) } });
    // Another user is not affected.
    const other = listen('user2');
    await other.started;
    other.stop();

    open[0]!.stop();
    // The slot frees once the edge sees the disconnect (the lease is removed), not after the lease TTL.
    let again: ReturnType<typeof listen> | undefined;
    await eventually(async () => {
      again?.stop();
      again = listen('user1');
      return Promise.race([again.started.then(() => true), again.failed.then(() => false)]);
    }, 'a slot to free up', 10_000, 50);
    again!.stop();
    open[1]!.stop();
  });

  it('resumes after a reconnect from the last event id, without gaps or repeats', async () => {
    await settled('user1');
    const before = (await recentNotifications(saga.kv, 'user1', 1)).head;
    const s = listen('user1');
    await s.started;
    await create('user1');
    await s.until(1);
    const last = s.got[0]!;
    expect(Number(last.id)).toBe(before + 1);
    s.stop();

    // While disconnected, two more notifications arrive.
    await create('user1');
    await create('user1');
    await eventually(async () => (await recentNotifications(saga.kv, 'user1', 1)).head === before + 3, 'two more notifications');
    const resumed = listen('user1', { lastEventId: last.id });
    await resumed.until(2);
    expect(resumed.got.map((g) => Number(g.id))).toEqual([before + 2, before + 3]);

    // A dropped connection: the client reconnects by itself with Last-Event-ID and misses nothing.
    expect(FetchEventSource.dropAll()).toBeGreaterThanOrEqual(1);
    await create('user1');
    await resumed.until(3);
    const { order } = await create('user1');
    await resumed.until(4);
    expect(resumed.got.map((g) => Number(g.id))).toEqual([before + 2, before + 3, before + 4, before + 5]);
    expect(resumed.got[3]!.data.data).toMatchObject({ orderId: order.id });
    resumed.stop();
  });

  it('delivers live notifications through the edge running under Deno, and serves the notifications page', async () => {
    await settled('user2');
    const s = listen('user2', undefined, denoUrl);
    await s.started;
    const { order } = await create('user2');
    await s.until(1);
    expect(s.got[0]!.data).toMatchObject({ kind: 'order.rejected', data: { orderId: order.id } });
    s.stop();

    const page = await fetch(`${denoUrl}/notifications`, { headers: { cookie: cookies.user2! } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`Order #${order.id} declined`);
    expect(html).toContain('<script src="/notifications/live.js"');
    const script = await fetch(`${edgeUrl}/notifications/live.js`);
    expect(script.headers.get('content-type')).toContain('javascript');
    expect(await script.text()).toContain("new EventSource(");
    expect((await fetch(`${edgeUrl}/notifications`, { redirect: 'manual' })).status).toBe(302);
  });
});
