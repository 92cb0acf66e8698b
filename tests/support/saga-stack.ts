/**
 * What the order saga's tests and benchmark run against: one embedded PostgreSQL with the `crm` and
 * `platform` databases migrated, KV (redis-server behind the Upstash-REST gateway, unless the
 * caller brings its own), the PostgreSQL bus with the production topics, and helpers to seed
 * customers, run saga components in this process, and wait for the system to go quiet.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { startPostgres } from '../../infra/dev/services/postgres.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import type { RunningService } from '../../infra/dev/services/types.ts';
import { startUpstashGateway } from '../../infra/gateway/upstash-gateway.ts';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { bionicCodec, type BionicTopics } from '../../shared/bus/topics.ts';
import { createLogger, type Logger } from '../../shared/log.ts';
import type { Kv } from '../../shared/ports/kv.ts';
import type { SagaConfig } from '../../shared/saga/config.ts';
import { createBus, loadTopicSpecs, type WorkerBus } from '../../workers/bus/index.ts';
import { migratePostgres, MIGRATION_DIRS } from '../../workers/db/migrate.ts';
import { startSaga, type SagaDeps, type SagaRuntime } from '../../workers/saga/index.ts';

export const SAGA_GROUPS = ['saga-orchestrator', 'saga-profile', 'saga-deals', 'saga-notification'] as const;
export const SAGA_TOPIC_NAMES = ['saga.events', 'profile.commands', 'deals.commands', 'notification.commands'] as const;

export interface SagaStack {
  crmUrl: string;
  platformUrl: string;
  kvUrl: string;
  kvToken: string;
  crm: postgres.Sql;
  platform: postgres.Sql;
  kv: Kv;
  /** OS pid of redis-server, when the stack started its own KV. */
  redisPid?: number;
  bus: WorkerBus<BionicTopics>;
  log: Logger;
  /** A prosthesis model every test order can use, and its price. */
  model: { id: number; name: string; price: string };
  /** Creates customers with accounts; returns their ids by username. */
  customers(list: { username: string; balance: string }[]): Promise<Record<string, string>>;
  /** Starts saga components in this process on the stack's bus. */
  runtime(opts?: { config?: Partial<SagaConfig>; components?: SagaDeps['components']; onFinished?: SagaDeps['onFinished'] }): Promise<SagaRuntime>;
  /** Resolves once the saga groups (default: all) have consumed everything on their topics, twice in a row so replies count. */
  quiet(groups?: readonly (typeof SAGA_GROUPS)[number][], timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export const TEST_SAGA_CONFIG: SagaConfig = { stepTimeoutMs: 60_000, sweepIntervalMs: 200 };

/** Polls `probe` until it holds (for state no event announces, such as rows in another process's database). */
export async function eventually(probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function startSagaStack(name: string, opts: { kv?: { url: string; token: string }; poolMax?: number; partitions?: number } = {}): Promise<SagaStack> {
  const dir = await mkdtemp(join(tmpdir(), `bionic-${name}-`));
  const services: RunningService[] = [];
  const pools: postgres.Sql[] = [];
  let bus: WorkerBus<BionicTopics> | undefined;
  const log = createLogger({ level: (process.env.TEST_LOG_LEVEL as 'debug' | undefined) ?? 'silent' });
  const cleanup = async () => {
    await bus?.close().catch(() => {});
    await Promise.allSettled(pools.map((p) => p.end({ timeout: 5 })));
    for (const s of services.reverse()) await s.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const pg = await startPostgres({ dataDir: join(dir, 'pg') });
    services.push(pg);
    await Promise.all([pg.ensureDatabase('crm'), pg.ensureDatabase('platform')]);
    const crmUrl = pg.databaseUrl('crm');
    const platformUrl = pg.databaseUrl('platform');
    const crm = postgres(crmUrl, { max: opts.poolMax ?? 8, onnotice: () => {} });
    const platform = postgres(platformUrl, { max: opts.poolMax ?? 8, onnotice: () => {} });
    pools.push(crm, platform);
    await migratePostgres(crm, MIGRATION_DIRS.crm);
    await migratePostgres(platform, MIGRATION_DIRS.platform);

    let kvConf = opts.kv;
    let redisPid: number | undefined;
    if (!kvConf) {
      const redis = await startRedis({ dataDir: join(dir, 'redis') });
      services.push(redis);
      redisPid = redis.pid;
      const token = randomBytes(24).toString('base64url');
      const gateway = await startUpstashGateway({ redisUrl: redis.url, token });
      services.push(gateway);
      kvConf = { url: gateway.url, token };
    }
    const kv = createUpstashKv(kvConf);
    bus = await createBus({ defaultPartitions: 8, retentionMinAgeMs: 3_600_000 }, {
      platformUrl, codec: bionicCodec, log,
      // The production topics (infra/kafka/topics.json), or the saga's with another partition count (experiments).
      topics: (await loadTopicSpecs()).map((t) => (opts.partitions && /^(saga\.events|[a-z]+\.commands)/.test(t.name) ? { ...t, partitions: opts.partitions } : t)),
    });
    const [model] = await crm<{ id: number; name: string; price: string }[]>`
      INSERT INTO prosthesis_models (name, kind, manufacturer, price) VALUES ('BionicHand Test', 'hand', 'BionicPRO', 1000.00)
      RETURNING id, name, price::text AS price`;
    const theBus = bus;

    return {
      crmUrl, platformUrl, kvUrl: kvConf.url, kvToken: kvConf.token, crm, platform, kv, redisPid, bus: theBus, log, model: model!,
      async customers(list) {
        const rows = await crm<{ id: string; username: string }[]>`
          INSERT INTO customers (username, full_name, email)
          SELECT u, 'Test ' || u, u || '@example.test' FROM unnest(${list.map((c) => c.username)}::text[]) AS u
          RETURNING id, username`;
        const ids = Object.fromEntries(rows.map((r) => [r.username, r.id]));
        await crm`INSERT INTO customer_accounts (customer_id, balance)
          SELECT id, b FROM unnest(${list.map((c) => ids[c.username]!)}::bigint[], ${list.map((c) => c.balance)}::numeric[]) AS x(id, b)`;
        return ids;
      },
      runtime: (o = {}) => startSaga({
        crm, platform, bus: theBus, kv, log, config: { ...TEST_SAGA_CONFIG, ...o.config }, components: o.components, onFinished: o.onFinished,
      }),
      async quiet(groups = SAGA_GROUPS, timeoutMs = 60_000) {
        let calm = 0;
        await eventually(async () => {
          const lags = await Promise.all(groups.map((g) => theBus.lag(g, [SAGA_TOPIC_NAMES[SAGA_GROUPS.indexOf(g)]!])));
          calm = lags.flat().every((p) => p.lag === 0) ? calm + 1 : 0;
          return calm >= 2;
        }, 'the saga topics to be consumed', timeoutMs, 50);
      },
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
