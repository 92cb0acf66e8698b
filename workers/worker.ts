/**
 * The worker pool's composition root: builds adapters from configuration, owns the chDB data
 * directory, applies migrations, serves its procedures, and stops gracefully.
 */
import { serve } from '@hono/node-server';
import type { WorkerConfig } from '../shared/config.ts';
import { checkHealth } from '../shared/health.ts';
import { createLogger } from '../shared/log.ts';
import { createUpstashKv } from '../edge/adapters/kv-upstash.ts';
import { createS3ObjectStore } from '../edge/adapters/object-store-s3.ts';
import { createClickHouseOlap } from './adapters/olap-clickhouse.ts';
import { createPostgresOltp } from './adapters/oltp-postgres.ts';
import { migrateAll } from './db/migrate.ts';
import { createWorkerApp } from './app.ts';
import { createJwtAuthenticator } from './auth/verify-jwt.ts';
import { createBus, loadTopicSpecs } from './bus/index.ts';
import { startRegionalCdc } from './cdc/regions.ts';
import { bionicCodec } from '../shared/bus/topics.ts';
import { startSaga } from './saga/index.ts';
import { createReportBuilder, scheduleReportCleanup } from './reports/index.ts';
import { createEtl, etlRegionsOf } from './etl/index.ts';
import { createAnalyticsService } from './analytics/service.ts';
import { ingestRoutes } from './telemetry/routes.ts';
import { createLifecycle } from '../edge/middleware/lifecycle.ts';
import { opsEvents } from '../shared/metrics/events.ts';
import { addWorkerCollectors, trackConsumerGroups } from './metrics/collectors.ts';
import { etlRunEvent } from './metrics/etl-run.ts';
import { createWorkerMetrics } from './metrics/registry.ts';
import { drainHttpServer } from './shutdown.ts';
import { createWorkerRegions } from './regions/stores.ts';

/** A consumer group that never consumes: `/ready` asks the bus for its lag to see the bus answer. */
const READY_PROBE_GROUP = 'bionic-ready-probe';

/** Starts a worker from parsed configuration; resolves once it is listening. */
export async function startWorker(config: WorkerConfig) {
  const log = createLogger({ level: config.logLevel, base: { service: 'worker', pid: process.pid } });
  const metrics = createWorkerMetrics();
  const lifecycle = createLifecycle({ closeConnections: true });
  const oltp = {
    crm: createPostgresOltp(config.oltp.crm, { max: config.oltp.poolMax }),
    telemetry: createPostgresOltp(config.oltp.telemetry, { max: config.oltp.poolMax }),
    platform: createPostgresOltp(config.oltp.platform, { max: config.oltp.poolMax }),
  };
  const olap = await createClickHouseOlap(config.olap);
  const kv = createUpstashKv(config.kv);
  const objectStore = createS3ObjectStore(config.objectStore);
  const regions = createWorkerRegions(config, { oltp, objectStore, olap });
  if (config.migrateOnStart) {
    const applied = await migrateAll({ ...oltp, olap }, (msg, f) => log.info(msg, f));
    const regional = await regions.migrate((msg, f) => log.info(msg, f));
    log.info('migrations checked', { applied: applied.length + regional.length });
  }
  const topics = await loadTopicSpecs();
  const bus = trackConsumerGroups(await createBus(config.bus, {
    platformUrl: config.oltp.platform, codec: bionicCodec, log: log.child({ component: 'bus' }), topics,
  }));
  log.info('bus ready', { kind: bus.kind });
  // One CDC per region (its CRM into its ClickHouse database); without REGIONS, the central CRM's.
  const cdc = config.cdc.enabled
    ? await startRegionalCdc({ regions: regions.ports, bus, log: log.child({ component: 'cdc' }), options: config.cdc.options, registry: metrics.registry, topics })
    : undefined;
  const saga = await startSaga({ crm: oltp.crm.sql, regions: regions.ports, platform: oltp.platform.sql, bus, kv, log, config: config.saga });
  const health = () =>
    checkHealth({
      crm: () => oltp.crm.ping(),
      telemetry: () => oltp.telemetry.ping(),
      platform: () => oltp.platform.ping(),
      olap: () => olap.ping(),
      kv: () => kv.ping(),
      objectStore: () => objectStore.ping(),
      bus: () => bus.lag(READY_PROBE_GROUP, []),
      ...regions.health(),
    });
  if (!config.auth) log.warn('bearer verification is off: OIDC_ISSUER is not set, every caller is anonymous');
  const authenticate = config.auth ? createJwtAuthenticator({ ...config.auth, log }) : undefined;
  const reportBuilder = createReportBuilder({ olap, regions: regions.ports, kv, log: log.child({ component: 'reports' }) });
  const reportCleanup = config.reports.cleanupCron
    ? scheduleReportCleanup(config.reports.cleanupCron, { objectStore: regions.ports.all().map((r) => r.reports), kv, log: log.child({ component: 'reports-cleanup' }), olderThanSeconds: config.reports.oldVersionTtlSeconds })
    : null;
  // One ETL job per region (its telemetry and CRM into its ClickHouse database), pseudonymised day rows into the central one.
  const pseudonymKey = config.analytics.pseudonymKey;
  const etl = createEtl({
    regions: etlRegionsOf(regions.ports), platform: oltp.platform.sql,
    config: config.etl, kv, reports: reportBuilder, log: log.child({ component: 'etl' }),
    analytics: pseudonymKey ? { key: pseudonymKey, centralDatabase: config.olap.database } : undefined,
    onRun: (_req, out, region) => opsEvents.etlRun(etlRunEvent(out, region)),
  });
  const analytics = pseudonymKey ? createAnalyticsService({ olap, regions: etl.service.regions }) : undefined;
  const app = createWorkerApp({ ports: { etl: etl.service, analytics, kv, objectStore, olap, oltp, bus, reportBuilder, orders: saga.orders, cdc, regions: regions.ports }, log, health, authenticate,
    metrics, metricsToken: config.ops.metricsToken, lifecycle });
  addWorkerCollectors(metrics.registry, { cdc, bus, groups: bus.consumerGroups, platform: oltp.platform.sql, log });
  // Device uploads forwarded by the edge (edge/telemetry): verified again, stored in one transaction.
  app.route('/internal/telemetry', ingestRoutes({ config: config.telemetry, telemetry: oltp.telemetry, regions: regions.ports, kv }));
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, (info) => {
      log.notice('worker listening', { url: `http://${config.host}:${info.port}` });
      resolve(s);
    });
  });
  etl.start();
  /**
   * Drains, then closes: `/ready` turns 503 first; HTTP stops accepting while requests in flight
   * finish, and at the same time consumers finish and commit the batches in hand (the bus stays
   * open for publishes of those requests). Connections still open at the deadline are cut.
   */
  async function stop(graceMs = config.ops.shutdownGraceMs) {
    const deadline = Date.now() + graceMs;
    lifecycle.drain();
    const [http] = await Promise.all([drainHttpServer(server, deadline), etl.stop(), reportCleanup?.stop(), saga.stop(), cdc?.stop()]);
    if (http.forced) log.warn('requests still running at the end of the grace period were cut', { graceMs });
    await bus.close();
    await Promise.allSettled([olap.close(), oltp.crm.close(), oltp.telemetry.close(), oltp.platform.close(), regions.close()]);
  }
  return { stop, log, olap };
}

