/**
 * What the telemetry and ETL suites run against, on loopback free ports in a temp directory: one
 * embedded PostgreSQL with `crm`, `telemetry` and `platform` migrated, a chDB directory with the
 * ClickHouse migrations applied, and (optionally) redis-server behind the Upstash-REST gateway.
 * Plus small helpers to create devices and readings by hand.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { startPostgres, type PostgresService } from '../../infra/dev/services/postgres.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import type { RunningService } from '../../infra/dev/services/types.ts';
import { startUpstashGateway } from '../../infra/gateway/upstash-gateway.ts';
import type { Kv, Olap } from '../../shared/ports/index.ts';
import { createClickHouseOlap } from '../../workers/adapters/olap-clickhouse.ts';
import { createPostgresOltp, type PostgresOltp } from '../../workers/adapters/oltp-postgres.ts';
import { migrateAll } from '../../workers/db/migrate.ts';

export interface EtlStack {
  dir: string;
  pg: PostgresService;
  urls: { crm: string; telemetry: string; platform: string };
  crm: PostgresOltp;
  telemetry: PostgresOltp;
  platform: PostgresOltp;
  /** Absent with `{ olap: false }`. */
  olap?: Olap;
  /** Absent with `{ kv: false }`. */
  kv?: Kv;
  kvEnv?: { UPSTASH_REDIS_REST_URL: string; UPSTASH_REDIS_REST_TOKEN: string };
  stop(): Promise<void>;
}

export async function startEtlStack(name: string, opts: { olap?: boolean; kv?: boolean } = {}): Promise<EtlStack> {
  const dir = await mkdtemp(join(tmpdir(), `bionic-${name}-`));
  const services: RunningService[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    for (const s of services.reverse()) await s.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const pg = await startPostgres({ dataDir: join(dir, 'pg') });
    services.push(pg);
    for (const db of ['crm', 'telemetry', 'platform']) await pg.ensureDatabase(db);
    const urls = { crm: pg.databaseUrl('crm'), telemetry: pg.databaseUrl('telemetry'), platform: pg.databaseUrl('platform') };
    const crm = createPostgresOltp(urls.crm, { max: 4 });
    const telemetry = createPostgresOltp(urls.telemetry, { max: 6 });
    const platform = createPostgresOltp(urls.platform, { max: 6 });
    closers.push(() => crm.close(), () => telemetry.close(), () => platform.close());
    let olap: Olap | undefined;
    if (opts.olap !== false) {
      olap = await createClickHouseOlap({ user: 'default', password: '', database: 'bionic', chdbPath: join(dir, 'chdb') });
      closers.push(() => olap!.close());
    }
    await migrateAll({ crm, telemetry, platform, olap });
    let kv: Kv | undefined;
    let kvEnv: EtlStack['kvEnv'];
    if (opts.kv !== false) {
      const redis = await startRedis({ dataDir: join(dir, 'redis') });
      services.push(redis);
      const token = randomBytes(24).toString('base64url');
      const gateway = await startUpstashGateway({ redisUrl: redis.url, token });
      services.push(gateway);
      kv = createUpstashKv({ url: gateway.url, token });
      kvEnv = { UPSTASH_REDIS_REST_URL: gateway.url, UPSTASH_REDIS_REST_TOKEN: token };
    }
    return { dir, pg, urls, crm, telemetry, platform, olap, kv, kvEnv, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A hand-made reading; `ts` is ISO. */
export interface TestReading {
  chip: string; ts: string; kind: 'action' | 'error' | 'status';
  action?: string; responseMs?: number | null; errorCode?: string; battery?: number | null; grip?: number | null;
}

/** Inserts readings straight into telemetry_events (no batch row: like the data generator's old data). */
export async function insertReadings(telemetry: PostgresOltp, readings: readonly TestReading[]): Promise<void> {
  if (readings.length === 0) return;
  await telemetry.sql`INSERT INTO telemetry_events ${telemetry.sql(readings.map((r) => ({
    chip_id: r.chip, ts: r.ts, kind: r.kind, action: r.kind === 'status' ? null : r.action ?? 'grip',
    response_ms: r.responseMs ?? null, error_code: r.errorCode ?? null, battery_pct: r.battery ?? null, grip_force_n: r.grip ?? null,
  })))}`;
}

/**
 * A customer (optionally linked to an identity-provider subject) owning the given chips. Rows are
 * dated `since` (default long ago) so the ETL does not take them for owners changed just now.
 */
export async function addCustomer(crm: PostgresOltp, c: { id: number; subject: string | null; chips: string[]; since?: string }): Promise<void> {
  const at = c.since ?? '2020-01-01T00:00:00Z';
  await crm.sql`INSERT INTO prosthesis_models (id, name, kind, manufacturer, price) VALUES (1, 'Test Hand', 'hand', 'Test', 1000) ON CONFLICT DO NOTHING`;
  await crm.sql`INSERT INTO customers (id, username, idp_subject, full_name, email, created_at, updated_at)
    VALUES (${c.id}, ${`user${c.id}`}, ${c.subject}, ${`User ${c.id}`}, ${`user${c.id}@example.test`}, ${at}, ${at})`;
  for (const chip of c.chips) {
    await crm.sql`INSERT INTO prostheses (chip_id, model_id, customer_id, serial, installed_at, created_at, updated_at)
      VALUES (${chip}, 1, ${c.id}, ${`SN-${chip}`}, ${at}, ${at}, ${at})`;
  }
}
