/**
 * Data residency, orders: an order and every effect of its saga live in the customer's region's
 * CRM. Embedded PostgreSQL with the central `crm` and `platform` and the regions' `crm_ru`,
 * `crm_eu` (regions from environment variables only), the PostgreSQL bus, the real saga components
 * and the orders procedures called as a worker serves them, with operators' verified identities.
 *
 * A `ru` operator's order for a `ru` customer is approved with rows only in `crm_ru`; an `eu`
 * operator's order gets its own saga even though both databases number orders from 1; a `ru`
 * operator naming an `eu` customer is refused and logged, and nothing is written anywhere. No
 * message on the bus and no saga row carries a customer's name, e-mail or phone.
 *
 * Notifications: `ru` has a KV of its own (a second redis-server and gateway, by configuration),
 * `eu` none. A `ru` customer's order notification is stored in `crm_ru` only and pushed to the ru
 * KV only, and reaches the customer's live stream through the real edge app (a session in the ru
 * KV, as sign-in would leave it); an `eu` one is in `crm_eu` and, its region having no KV, the
 * central KV. The platform's `notifications` table stays empty.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { createS3ObjectStore } from '../../edge/adapters/object-store-s3.ts';
import { createEdgeApp } from '../../edge/app.ts';
import { createKeyRing, generateKeySpec } from '../../edge/auth/seal.ts';
import { createSessionStore } from '../../edge/auth/session-store.ts';
import { createEdgeRegions } from '../../edge/regions.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import type { RunningService } from '../../infra/dev/services/types.ts';
import { startUpstashGateway } from '../../infra/gateway/upstash-gateway.ts';
import type { Identity, RouterContext } from '../../router/context.ts';
import { workerRouter } from '../../router/root.ts';
import { createCallerFactory } from '../../router/trpc.ts';
import type { EdgeAuthConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/log.ts';
import { recentNotifications } from '../../shared/notifications/stream.ts';
import type { Kv } from '../../shared/ports/kv.ts';
import { regionsConfigOf, regionsEnv } from '../../shared/regions/index.ts';
import { createPostgresOltp } from '../../workers/adapters/oltp-postgres.ts';
import { createWorkerRegions, type WorkerRegions } from '../../workers/regions/stores.ts';
import { startSaga, type SagaRuntime } from '../../workers/saga/index.ts';
import { eventually, startSagaStack, TEST_SAGA_CONFIG, type SagaStack } from '../support/saga-stack.ts';

const OPERATORS = {
  ru: { userId: 'sub-op-ru', username: 'operator-ru', roles: ['crm_operator'], region: 'ru' },
  eu: { userId: 'sub-op-eu', username: 'operator-eu', roles: ['crm_operator'], region: 'eu' },
} satisfies Record<string, Identity>;
// Customer ids are unique across regions (a region's CRM holds its own customers, numbered apart).
const CUSTOMERS = {
  ru: { id: '101', username: 'ivan-petrov', fullName: 'Ivan Petrovsky', email: 'ivan.petrovsky@example.test', phone: '+7 900 555 0101' },
  eu: { id: '201', username: 'anna-meyer', fullName: 'Annabel Meyerhof', email: 'annabel.meyerhof@example.test', phone: '+49 30 555 0201' },
};

let stack: SagaStack;
let regions: WorkerRegions;
let runtime: SagaRuntime;
let ruKv: Kv;
let edge: ReturnType<typeof createEdgeApp>;
let sessions: ReturnType<typeof createSessionStore>;
const kvServices: RunningService[] = [];
let kvDir: string | undefined;
const lines: string[] = [];
const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
const caller = createCallerFactory(workerRouter);
const sqlOf = (id: 'ru' | 'eu') => regions.ports.get(id).crm.sql;

function orders(identity: Identity) {
  const ctx: RouterContext = {
    requestId: 'test', identity, log, host: 'worker', health: async () => ({ status: 'ok', dependencies: {} }),
    ports: { orders: runtime.orders, regions: regions.ports },
  };
  return caller(ctx);
}

beforeAll(async () => {
  stack = await startSagaStack('regions-saga', { poolMax: 4 });
  const env: Record<string, string> = { REGIONS: 'ru,eu' };
  for (const id of ['ru', 'eu']) {
    await stack.crm.unsafe(`CREATE DATABASE crm_${id}`);
    await stack.crm.unsafe(`CREATE DATABASE telemetry_${id}`);
    const url = (db: string) => { const u = new URL(stack.crmUrl); u.pathname = `/${db}`; return u.href; };
    env[`REGION_${id.toUpperCase()}_CRM_DATABASE_URL`] = url(`crm_${id}`);
    env[`REGION_${id.toUpperCase()}_TELEMETRY_DATABASE_URL`] = url(`telemetry_${id}`);
  }
  // ru's own KV, named to the worker and the edge by the same two variables; eu has none.
  kvDir = await mkdtemp(join(tmpdir(), 'bionic-regions-saga-kv-'));
  const redis = await startRedis({ dataDir: join(kvDir, 'redis-ru') });
  kvServices.push(redis);
  const gateway = await startUpstashGateway({ redisUrl: redis.url, token: stack.kvToken });
  kvServices.push(gateway);
  env.REGION_RU_UPSTASH_REDIS_REST_URL = gateway.url;
  env.REGION_RU_UPSTASH_REDIS_REST_TOKEN = stack.kvToken;
  ruKv = createUpstashKv({ url: gateway.url, token: stack.kvToken });
  const objectStore = { endpoint: 'http://127.0.0.1:9', region: 'us-east-1', accessKeyId: 'x', secretAccessKey: 'x', bucket: 'reports', forcePathStyle: true };
  const ids = regionsEnv.REGIONS.parse(env.REGIONS);
  const fallbacks = { reportsBucket: 'reports', s3Region: 'us-east-1' };
  regions = createWorkerRegions(
    { regions: regionsConfigOf(env, 'worker', ids, fallbacks), objectStore, oltp: { poolMax: 4 } },
    { oltp: { crm: createPostgresOltp(stack.crmUrl), telemetry: null! }, objectStore: null! },
  );
  const edgeRegions = createEdgeRegions({ regions: regionsConfigOf(env, 'edge', ids, fallbacks), objectStore }, createS3ObjectStore(objectStore));
  const auth: EdgeAuthConfig = {
    issuer: 'http://127.0.0.1:9', clientId: 'bionic-edge', clientSecret: 'x', audience: 'bionic-worker-api', mfaAcrValues: [],
    sessionKeys: [{ kid: 'k1', secret: generateKeySpec('k1').slice(3) }], idleSeconds: 1800, absoluteSeconds: 3600, cookieSecure: false,
  };
  edge = createEdgeApp({
    kv: stack.kv, objectStore: createS3ObjectStore(objectStore), regions: edgeRegions, log, workerUrl: 'http://127.0.0.1:9', auth,
    publicUrl: 'http://127.0.0.1:9', rateLimits: null, notifications: { pollIntervalMs: 50 },
  });
  // The edge's own session store over the same KVs: what a finished sign-in writes.
  sessions = createSessionStore({
    kv: stack.kv, regionalKv: (id) => edgeRegions.get(id).kv, keys: createKeyRing(auth.sessionKeys), idleSeconds: 1800, absoluteSeconds: 3600,
  });
  await regions.migrate();
  for (const id of ['ru', 'eu'] as const) {
    const c = CUSTOMERS[id];
    const sql = sqlOf(id);
    await sql`INSERT INTO prosthesis_models (id, name, kind, manufacturer, price) VALUES (${stack.model.id}, ${stack.model.name}, 'hand', 'BionicPRO', ${stack.model.price})`;
    await sql`INSERT INTO customers (id, username, full_name, email, phone, region) VALUES (${c.id}, ${c.username}, ${c.fullName}, ${c.email}, ${c.phone}, ${id})`;
    await sql`INSERT INTO customer_accounts (customer_id, balance) VALUES (${c.id}, 5000)`;
  }
  runtime = await startSaga({ crm: stack.crm, regions: regions.ports, platform: stack.platform, bus: stack.bus, kv: stack.kv, log, config: TEST_SAGA_CONFIG });
}, 180_000);

afterAll(async () => {
  await runtime?.stop();
  await regions?.close();
  for (const s of kvServices.reverse()) await s.stop().catch(() => {});
  if (kvDir) await rm(kvDir, { recursive: true, force: true });
  await stack?.stop();
}, 60_000);

const refusals = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'residency.refused');
const count = async (sql: postgres.Sql, table: string) => Number((await sql.unsafe(`SELECT count(*)::text AS n FROM ${table}`))[0]!.n);
const finished = (sagaId: string) =>
  eventually(async () => (await stack.platform`SELECT state FROM saga_instances WHERE id = ${sagaId}`)[0]?.state === 'FINISHED', `${sagaId} to finish`);

describe('orders stay in their customer\'s region', () => {
  it('a ru operator\'s order for a ru customer is approved with every row in crm_ru only', async () => {
    const { order, created } = await orders(OPERATORS.ru).orders.create({ customerId: CUSTOMERS.ru.id, modelId: stack.model.id, idempotencyKey: 'ru-order-0001' });
    expect(created).toBe(true);
    expect(order.sagaId).toBe(`order-ru-${order.id}`);
    await finished(order.sagaId!);
    const [row] = await sqlOf('ru')`SELECT status FROM orders WHERE id = ${order.id}`;
    expect(row!.status).toBe('APPROVED'); // the deals participant's write, in crm_ru
    expect(await count(sqlOf('ru'), 'order_reservations')).toBe(1);
    expect(await count(sqlOf('eu'), 'orders')).toBe(0);
    expect(await count(stack.crm, 'orders')).toBe(0);
    expect(await count(stack.crm, 'order_reservations')).toBe(0);
    const saga = await orders(OPERATORS.ru).saga.get({ orderId: order.id });
    expect(saga).toMatchObject({ state: 'FINISHED', context: { region: 'ru', outcome: 'APPROVED' } });
  });

  it('an eu operator\'s order gets a saga of its own, though both regions number orders alike', async () => {
    const { order } = await orders(OPERATORS.eu).orders.create({ customerId: CUSTOMERS.eu.id, modelId: stack.model.id, idempotencyKey: 'eu-order-0001' });
    expect(order.sagaId).toBe(`order-eu-${order.id}`);
    await finished(order.sagaId!);
    expect(await count(sqlOf('eu'), 'orders')).toBe(1);
    expect(await count(sqlOf('ru'), 'orders')).toBe(1);
    expect((await orders(OPERATORS.eu).orders.list({ limit: 10 })).items.map((o) => o.customerId)).toEqual([CUSTOMERS.eu.id]);
  });

  it('a ru operator naming an eu customer is refused and logged; nothing is written', async () => {
    const before = refusals().length;
    await expect(orders(OPERATORS.ru).orders.create({ customerId: CUSTOMERS.eu.id, modelId: stack.model.id, idempotencyKey: 'ru-cross-0001' }))
      .rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(refusals().slice(before)).toContainEqual(expect.objectContaining({
      reason: 'CROSS_REGION', actorRegion: 'ru', dataRegion: 'eu', what: 'customer', subject: OPERATORS.ru.userId,
    }));
    expect(await count(sqlOf('eu'), 'orders')).toBe(1);
    expect(await count(sqlOf('ru'), 'orders')).toBe(1);
    // An id no region knows is just a bad request.
    await expect(orders(OPERATORS.ru).orders.create({ customerId: '999', modelId: stack.model.id, idempotencyKey: 'ru-none-0001' }))
      .rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('no bus message, saga row or notification carries a customer\'s name, e-mail or phone', async () => {
    await stack.quiet();
    const central = (await stack.platform.unsafe(`
      SELECT (SELECT coalesce(string_agg(value, ' '), '') FROM bus_messages)
        || (SELECT coalesce(string_agg(context::text, ' '), '') FROM saga_instances)
        || (SELECT coalesce(string_agg(h::text, ' '), '') FROM saga_history h)
        || (SELECT coalesce(string_agg(n::text, ' '), '') FROM notifications n) AS text`))[0]!.text as string;
    expect(central).toContain(CUSTOMERS.ru.username); // the search does see the messages
    for (const c of Object.values(CUSTOMERS)) for (const needle of [c.fullName, c.email, c.phone]) expect(central).not.toContain(needle);
  });
});

/** Reads an SSE response until `done(text so far)` holds; then the connection is closed. */
async function readEvents(res: Response, done: (text: string) => boolean): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (!done(text)) {
      const { value, done: ended } = await reader.read();
      if (ended) throw new Error(`the stream ended early: ${text}`);
      text += decoder.decode(value, { stream: true });
    }
    return text;
  } finally {
    await reader.cancel();
  }
}

describe('notifications stay in their customer\'s region', () => {
  const notificationsOf = (sql: postgres.Sql, recipient: string) =>
    sql<{ recipient: string; data: { sagaId: string; outcome: string } }[]>`SELECT recipient, data FROM notifications WHERE recipient = ${recipient} ORDER BY id`;
  const ruCustomer: Identity = { userId: 'sub-ivan', username: CUSTOMERS.ru.username, roles: ['prosthesis_user'], region: 'ru' };

  it('a ru customer\'s notification is stored in crm_ru, pushed to the ru KV and read live through the edge', async () => {
    const { id } = await sessions.create(ruCustomer, { accessToken: 'unused', refreshToken: null }, 3600, Math.floor(Date.now() / 1000));
    expect(id.startsWith('ru.')).toBe(true); // the session lives in ru's KV, as sign-in would leave it
    const ac = new AbortController();
    // The subscription starts from the stream's head at this moment: the order comes after it.
    const res = await edge.request('/notifications/stream', { headers: { cookie: `bionic-session=${id}` }, signal: ac.signal });
    expect(res.status).toBe(200);
    const { order } = await orders(OPERATORS.ru).orders.create({ customerId: CUSTOMERS.ru.id, modelId: stack.model.id, idempotencyKey: 'ru-notify-0001' });
    const text = await readEvents(res, (t) => /event: notification\ndata: .*\n/.test(t));
    ac.abort();
    const delivered = JSON.parse(/event: notification\ndata: (.*)\n/.exec(text)![1]!) as { title: string; data: { sagaId: string } };
    expect(delivered).toMatchObject({ title: `Order #${order.id} approved`, data: { sagaId: order.sagaId } });

    await finished(order.sagaId!);
    expect((await notificationsOf(sqlOf('ru'), CUSTOMERS.ru.username)).map((n) => n.data.sagaId)).toContain(order.sagaId);
    expect(await notificationsOf(sqlOf('eu'), CUSTOMERS.ru.username)).toEqual([]);
    expect(await count(stack.platform, 'notifications')).toBe(0);
    const inRuKv = await recentNotifications(ruKv, CUSTOMERS.ru.username, 10);
    expect(inRuKv.items.map((n) => n.data.sagaId)).toContain(order.sagaId);
    expect((await recentNotifications(stack.kv, CUSTOMERS.ru.username, 10)).head).toBe(0);
    // The same through the tRPC procedure's feed: the newest first.
    const page = await edge.request('/notifications', { headers: { cookie: `bionic-session=${id}` } });
    expect(await page.text()).toContain(`Order #${order.id} approved`);
  });

  it('an eu customer\'s notification is in crm_eu and, eu having no KV of its own, in the central KV', async () => {
    await stack.quiet();
    expect((await notificationsOf(sqlOf('eu'), CUSTOMERS.eu.username)).map((n) => n.data.outcome)).toEqual(['APPROVED']);
    expect(await notificationsOf(sqlOf('ru'), CUSTOMERS.eu.username)).toEqual([]);
    expect((await recentNotifications(stack.kv, CUSTOMERS.eu.username, 10)).items).toHaveLength(1);
    expect((await recentNotifications(ruKv, CUSTOMERS.eu.username, 10)).head).toBe(0);
  });

  it('a signed-in user without a region gets no stream (403, logged)', async () => {
    const { id } = await sessions.create({ ...ruCustomer, region: undefined }, { accessToken: 'unused', refreshToken: null }, 3600, Math.floor(Date.now() / 1000));
    const before = refusals().length;
    const res = await edge.request('/notifications/stream', { headers: { cookie: `bionic-session=${id}` } });
    expect(res.status).toBe(403);
    expect(refusals().slice(before)).toContainEqual(expect.objectContaining({ reason: 'NO_REGION' }));
  });
});
