/**
 * Data residency, telemetry: a device's readings go to its owner's region. The edge's device routes
 * → the worker's ingest routes (in process) → each region's telemetry database in embedded
 * PostgreSQL, with the regions taken from environment variables only.
 *
 * A region-bound device's key is derived from its region: its batch lands in that region's
 * database only; the same body signed as a device of another region is not accepted on this
 * region's path; a device registered in another region, an unlisted region, or (with regions
 * configured) a device without a region is refused and logged.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { telemetryRoutes } from '../../edge/telemetry/routes.ts';
import { startPostgres, type PostgresService } from '../../infra/dev/services/postgres.ts';
import { createLogger } from '../../shared/log.ts';
import type { Kv } from '../../shared/ports/index.ts';
import { regionsConfigOf, regionsEnv } from '../../shared/regions/index.ts';
import type { TelemetryConfig } from '../../shared/telemetry/config.ts';
import { deriveDeviceKey, signBody } from '../../shared/telemetry/device-auth.ts';
import { createPostgresOltp, type PostgresOltp } from '../../workers/adapters/oltp-postgres.ts';
import { MIGRATION_DIRS, migratePostgres } from '../../workers/db/migrate.ts';
import { createWorkerRegions, type WorkerRegions } from '../../workers/regions/stores.ts';
import { ingestRoutes } from '../../workers/telemetry/routes.ts';

const config: TelemetryConfig = { masterKeys: [{ kid: 'k1', secret: new Uint8Array(32).fill(7) }], maxBatchBytes: 8192 };
const CHIPS = { ru: 'BP-RU-0001', eu: 'BP-EU-0001' } as const;
const lines: string[] = [];
const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
// Revocation is not under test: a registry that knows no revoked device.
const kv = { get: async () => null } as unknown as Kv;

let dir: string;
let pg: PostgresService;
let central: PostgresOltp;
let regions: WorkerRegions;
let edge: Hono;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bionic-regions-telemetry-'));
  pg = await startPostgres({ dataDir: join(dir, 'pg') });
  const env: Record<string, string> = { REGIONS: 'ru,eu' };
  for (const id of ['ru', 'eu']) {
    for (const db of [`crm_${id}`, `telemetry_${id}`]) await pg.ensureDatabase(db);
    env[`REGION_${id.toUpperCase()}_CRM_DATABASE_URL`] = pg.databaseUrl(`crm_${id}`);
    env[`REGION_${id.toUpperCase()}_TELEMETRY_DATABASE_URL`] = pg.databaseUrl(`telemetry_${id}`);
  }
  await pg.ensureDatabase('telemetry');
  central = createPostgresOltp(pg.databaseUrl('telemetry'), { max: 2 });
  await migratePostgres(central, MIGRATION_DIRS.telemetry);
  const objectStore = { endpoint: 'http://127.0.0.1:9', region: 'us-east-1', accessKeyId: 'x', secretAccessKey: 'x', bucket: 'reports', forcePathStyle: true };
  regions = createWorkerRegions(
    { regions: regionsConfigOf(env, 'worker', regionsEnv.REGIONS.parse(env.REGIONS), { reportsBucket: 'reports', s3Region: 'us-east-1' }), objectStore, oltp: { poolMax: 2 } },
    { oltp: { crm: null!, telemetry: central }, objectStore: null! },
  );
  await regions.migrate();
  for (const id of ['ru', 'eu'] as const) {
    const crm = regions.ports.get(id).crm;
    await crm.query(`INSERT INTO prosthesis_models (id, name, kind, manufacturer, price) VALUES (1, 'Grip One', 'hand', 'Acme', 1000)`);
    await crm.query(`INSERT INTO customers (id, username, full_name, email, region) VALUES (1, $1, 'Test Person', $2, $3)`, [`owner-${id}`, `owner-${id}@example.test`, id]);
    await crm.query(`INSERT INTO prostheses (chip_id, model_id, customer_id, serial) VALUES ($1, 1, 1, $2)`, [CHIPS[id], `S-${id}`]);
  }
  const worker = new Hono();
  worker.use(async (c, next) => { c.set('log' as never, log as never); await next(); });
  worker.route('/internal/telemetry', ingestRoutes({ config, telemetry: central, regions: regions.ports, kv }));
  edge = new Hono();
  edge.route('/telemetry', telemetryRoutes({ config, kv, workerUrl: 'http://worker.test', fetch: async (input, init) => worker.request(String(input), init) }));
}, 180_000);

afterAll(async () => {
  await regions?.close();
  await central?.close();
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

beforeEach(async () => {
  for (const db of [central, ...regions.ports.all().map((r) => r.telemetry)]) await db.query('TRUNCATE telemetry_events, telemetry_batches');
});

const batch = () => ({
  batchId: randomUUID(),
  readings: [0, 1].map((i) => ({ ts: new Date(Date.now() - 60_000 + i * 100).toISOString(), kind: 'action', action: 'grip', responseMs: 80 + i })),
});

/** Posts as device `chip` would: to `region`'s path (none: the plain path), signed with the key of `keyRegion` (null: an unbound key). */
async function post(chip: string, region: string | undefined, keyRegion: string | null | undefined = region) {
  const bytes = new TextEncoder().encode(JSON.stringify(batch()));
  const signature = await signBody(await deriveDeviceKey(config.masterKeys[0]!.secret, chip, keyRegion ?? undefined), bytes);
  const path = region ? `/telemetry/v1/regions/${region}/devices/${chip}/batches` : `/telemetry/v1/devices/${chip}/batches`;
  return edge.request(path, { method: 'POST', body: bytes, headers: { 'content-type': 'application/json', 'x-device-signature': signature } });
}

async function counts() {
  const n = async (db: PostgresOltp) => Number((await db.query<{ n: string }>('SELECT count(*)::text AS n FROM telemetry_events'))[0]!.n);
  return { central: await n(central), ru: await n(regions.ports.get('ru').telemetry), eu: await n(regions.ports.get('eu').telemetry) };
}
const refusals = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'residency.refused');

describe('telemetry follows the device\'s owner\'s region', () => {
  it('a region-bound device\'s batch lands in its region\'s database only', async () => {
    expect((await post(CHIPS.ru, 'ru')).status).toBe(200);
    expect(await counts()).toEqual({ central: 0, ru: 2, eu: 0 });
    expect((await post(CHIPS.eu, 'eu')).status).toBe(200);
    expect(await counts()).toEqual({ central: 0, ru: 2, eu: 2 });
  });

  it('the same body signed with another region\'s key is not accepted on this region\'s path', async () => {
    const res = await post(CHIPS.ru, 'ru', 'eu');
    expect(res.status).toBe(401);
    expect((await post(CHIPS.ru, 'ru', null)).status).toBe(401);
    expect(await counts()).toEqual({ central: 0, ru: 0, eu: 0 });
  });

  it('a device registered in another region is refused and logged, even with a valid key for this path', async () => {
    const before = refusals().length;
    const res = await post(CHIPS.eu, 'ru');
    expect(res.status).toBe(403);
    expect(refusals().slice(before)).toContainEqual(expect.objectContaining({
      reason: 'CROSS_REGION', actorRegion: 'ru', dataRegion: 'eu', what: 'telemetry batch', subject: CHIPS.eu,
    }));
    expect(await counts()).toEqual({ central: 0, ru: 0, eu: 0 });
  });

  it('an unlisted region, an unknown device and a device without a region are refused', async () => {
    const before = refusals().length;
    expect((await post(CHIPS.ru, 'us')).status).toBe(403);
    expect((await post('BP-NOBODY-01', 'ru')).status).toBe(404);
    expect((await post(CHIPS.ru, undefined)).status).toBe(403);
    const reasons = refusals().slice(before).map((l) => l.reason);
    expect(reasons).toEqual(expect.arrayContaining(['UNKNOWN_REGION', 'NO_REGION']));
    expect(await counts()).toEqual({ central: 0, ru: 0, eu: 0 });
  });
});
