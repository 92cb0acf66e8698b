/**
 * A demo run on a launched regional stack (`ru`, `eu`), the way people would use it: users of both
 * regions sign in through their own directories and open a report, the ru operator places an order
 * for an ru customer (the saga runs to FINISHED), a device of each region uploads a batch, an
 * admin runs the ETL of each region, and CDC catches up in both. The residency audit then searches
 * the central stores for what this left behind.
 */
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { createBionicClient, type BionicClient } from '../../router/client.ts';
import { deriveDeviceKey, signBody } from '../../shared/telemetry/device-auth.ts';
import { telemetryEnvSchema, telemetryConfigOf } from '../../shared/telemetry/config.ts';
import { CookieClient } from './cookie-client.ts';
import { eventually } from './saga-stack.ts';
import { launchedTotp, signIn } from './sign-in.ts';

export interface DemoStack {
  edge: string;
  idpDataDir: string;
  platform: string;
  TELEMETRY_DEVICE_KEYS: string;
  regions: Record<string, { crm: string; telemetry: string }>;
}

export interface DemoRun {
  /** Signed-in clients by username. */
  clients: Record<string, CookieClient>;
  /** The tRPC client of a signed-in user (cookie and CSRF headers set, as the frontend sends them). */
  trpc(username: string): BionicClient;
  /** The ru order: its id and saga id. */
  order: { id: string; sagaId: string };
  /** The chips that uploaded a batch, by region. */
  chips: Record<string, string>;
  /** The ETL run of each region the demo triggered (after the batches). */
  etlRuns: Record<string, { id: number; rowsRead: number | null }>;
}

const one = async <T>(url: string, q: (sql: postgres.Sql) => Promise<T>) => {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try { return await q(sql); } finally { await sql.end(); }
};

export async function demoRun(stack: DemoStack, users: { ru: string; eu: string; operator: string; admin: string }): Promise<DemoRun> {
  const totp = launchedTotp(stack.idpDataDir);
  const clients: Record<string, CookieClient> = {};
  for (const u of [users.ru, users.eu, users.operator, users.admin]) {
    const client = new CookieClient();
    const done = await signIn(client, stack.edge, u, totp, { returnTo: '/auth/me' });
    if (done.final.status !== 200 || (JSON.parse(done.final.body) as { username?: string }).username !== u) {
      throw new Error(`sign-in of ${u} failed: ${done.final.status} ${done.final.url} ${done.final.body.slice(0, 200)}`);
    }
    clients[u] = client;
  }
  const trpc = (username: string) => createBionicClient({
    url: `${stack.edge}/trpc`,
    headers: () => ({ cookie: clients[username]!.cookieHeader(new URL(stack.edge)), origin: stack.edge }),
  });

  for (const u of [users.ru, users.eu]) {
    const res = await clients[u]!.request(`${stack.edge}/reports/week.json`);
    if (res.status !== 200) throw new Error(`${u}'s weekly report: ${res.status} ${res.body.slice(0, 200)}`);
  }

  // The order: the operator's own region's customer, a model of that region's catalogue.
  const { customerId, modelId } = await one(stack.regions.ru!.crm, async (sql) => {
    const [c] = await sql<{ id: string }[]>`SELECT id::text FROM customers WHERE username = ${users.ru}`;
    const [m] = await sql<{ id: number }[]>`SELECT id FROM prosthesis_models ORDER BY price LIMIT 1`;
    return { customerId: Number(c!.id), modelId: m!.id };
  });
  const created = await trpc(users.operator).orders.create.mutate({ customerId, modelId, idempotencyKey: `residency-${randomUUID()}` });
  const sagaId = `order-ru-${created.order.id}`;
  await one(stack.platform, (sql) => eventually(async () =>
    (await sql<{ state: string }[]>`SELECT state FROM saga_instances WHERE id = ${sagaId}`)[0]?.state === 'FINISHED', `saga ${sagaId} FINISHED`, 120_000, 100));

  // One batch from a device of each region, signed with its region-bound key.
  const master = telemetryConfigOf(telemetryEnvSchema.parse({ TELEMETRY_DEVICE_KEYS: stack.TELEMETRY_DEVICE_KEYS })).masterKeys[0]!.secret;
  const chips: Record<string, string> = {};
  for (const [region, username] of [['ru', users.ru], ['eu', users.eu]] as const) {
    const chip = await one(stack.regions[region]!.crm, async (sql) =>
      (await sql<{ chip_id: string }[]>`SELECT p.chip_id FROM prostheses p JOIN customers c ON c.id = p.customer_id WHERE c.username = ${username} LIMIT 1`)[0]!.chip_id);
    const body = new TextEncoder().encode(JSON.stringify({
      batchId: randomUUID(),
      readings: [0, 1, 2].map((i) => ({ ts: new Date(Date.now() - 30_000 + i * 1000).toISOString(), kind: 'action', action: 'grip', responseMs: 90 + i })),
    }));
    const signature = await signBody(await deriveDeviceKey(master, chip, region), body);
    const res = await fetch(`${stack.edge}/telemetry/v1/regions/${region}/devices/${chip}/batches`, {
      method: 'POST', body, headers: { 'content-type': 'application/json', 'x-device-signature': signature },
    });
    if (res.status !== 200) throw new Error(`batch of ${chip} (${region}): ${res.status} ${await res.text()}`);
    chips[region] = chip;
  }
  // The ETL of each region, now (the batches are newer than the start-up run); a run still in
  // progress (the start-up one) answers `skipped`: the next attempt waits for it to end.
  const admin = trpc(users.admin);
  const etlRuns: DemoRun['etlRuns'] = {};
  for (const region of Object.keys(chips)) {
    await eventually(async () => {
      const out = await admin.etl.run.mutate({ region });
      if (!('status' in out) || out.status === 'skipped') return false;
      if (out.status !== 'succeeded') throw new Error(`ETL of ${region}: ${out.status} ${'error' in out ? out.error : ''}`);
      etlRuns[region] = { id: out.run.id, rowsRead: out.run.rowsRead };
      return true;
    }, `an ETL run of ${region}`, 120_000, 250);
  }
  // CDC has every change of both regions (the order included) in ClickHouse.
  for (const region of Object.keys(chips)) {
    await eventually(async () => {
      const s = await admin.cdc.status.query({ region });
      if ('regions' in s) throw new Error('cdc.status with a region answered every region');
      return s.state === 'streaming' && s.lagSeconds === 0 && s.sink.pendingMessages === 0 && s.tables.every((t) => t.status === 'streaming');
    }, `CDC of ${region} in step`, 120_000, 250);
  }
  return { clients, trpc, order: { id: String(created.order.id), sagaId }, chips, etlRuns };
}
