/**
 * Everything a reports test needs, real and on loopback: the sign-in stack (redis + gateway, LDAP,
 * the identity provider), s3rver behind a switchable proxy, chDB with `user_prosthesis_stats`, a
 * worker serving `reportsBuilder.build` (verifying bearer tokens, counting builds), and two edge
 * instances sharing KV: `edgeUrl` served over HTTP (registered at the provider, so browsers can
 * sign in on it) and `edgeB` in process — two instances, as behind a load balancer.
 */
import type { Server } from 'node:http';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { EdgeEnv } from '../../edge/app.ts';
import { createS3ObjectStore } from '../../edge/adapters/object-store-s3.ts';
import { freePort } from '../../infra/dev/free-port.ts';
import { startS3, type S3Service } from '../../infra/dev/services/s3.ts';
import { createLogger } from '../../shared/log.ts';
import type { ObjectStore, Olap } from '../../shared/ports/index.ts';
import { DEFAULT_REPORTS_EDGE_CONFIG, type ReportsEdgeConfig } from '../../shared/reports/config.ts';
import type { ReportPeriod } from '../../shared/reports/period.ts';
import type { ReportBuilder } from '../../shared/reports/ports.ts';
import { createWorkerApp } from '../../workers/app.ts';
import { createJwtAuthenticator } from '../../workers/auth/verify-jwt.ts';
import { createReportBuilder } from '../../workers/reports/builder.ts';
import { AUDIENCE, startAuthStack, type AuthStack } from './auth-stack.ts';
import { CookieClient } from './cookie-client.ts';
import { startFlakyProxy, type FlakyProxy } from './flaky-proxy.ts';
import { openStatsOlap } from './reports-data.ts';

export interface SignedIn { client: CookieClient; userId: string; username: string; cookie: string }

export interface ReportsStack {
  auth: AuthStack;
  /** The served edge instance (sign-in works on it). */
  edgeUrl: string;
  /** A second edge instance sharing KV and the object store, called in process. */
  edgeB: Hono<EdgeEnv>;
  workerUrl: string;
  olap: Olap;
  s3: S3Service;
  /** Between edge/worker and s3rver: switch to `down` or `cut-writes` to break the store. */
  proxy: FlakyProxy;
  /** Straight to s3rver, for looking at what is really stored. */
  store: ObjectStore;
  builds: { owner: string; period: string }[];
  /** JSON log lines of both edge instances. */
  edgeLogs: string[];
  /** One more in-process edge instance with other report settings. */
  edgeWith(reports: Partial<ReportsEdgeConfig>): Hono<EdgeEnv>;
  signIn(username: string): Promise<SignedIn>;
  stop(): Promise<void>;
}

export async function startReportsStack(opts: { reports?: Partial<ReportsEdgeConfig> } = {}): Promise<ReportsStack> {
  const edgePort = await freePort();
  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  const auth = await startAuthStack({ extraEdgeUrls: [edgeUrl] });
  const servers: Server[] = [];
  const stops: (() => Promise<unknown>)[] = [() => auth.stop()];
  try {
    const s3 = await startS3({ dataDir: join(auth.dir, 's3') });
    stops.unshift(() => s3.stop());
    const proxy = await startFlakyProxy(s3.endpoint);
    stops.unshift(() => proxy.stop());
    const storeAt = (endpoint: string) => createS3ObjectStore({ endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, bucket: 'reports', forcePathStyle: true });
    const viaProxy = storeAt(proxy.url);
    const olap = await openStatsOlap(join(auth.dir, 'chdb'));
    stops.unshift(() => olap.close());

    const quiet = createLogger({ level: 'silent' });
    const inner = createReportBuilder({ olap, objectStore: viaProxy, kv: auth.kv, log: quiet });
    const builds: ReportsStack['builds'] = [];
    const reportBuilder: ReportBuilder = {
      build: (owner: string, period: ReportPeriod) => { builds.push({ owner, period: period.id }); return inner.build(owner, period); },
    };
    const worker = createWorkerApp({
      ports: { kv: auth.kv, objectStore: viaProxy, olap, reportBuilder }, log: quiet, health: async () => ({ status: 'ok', dependencies: {} }),
      authenticate: createJwtAuthenticator({ issuer: auth.idp.issuer, audience: AUDIENCE, log: quiet }),
    });
    const workerPort = await freePort();
    servers.push(serve({ fetch: worker.fetch, hostname: '127.0.0.1', port: workerPort }) as Server);
    const workerUrl = `http://127.0.0.1:${workerPort}`;

    const edgeLogs: string[] = [];
    const log = createLogger({ level: 'warn', write: (l) => edgeLogs.push(l) });
    const reports = { ...DEFAULT_REPORTS_EDGE_CONFIG, ...opts.reports };
    const edge = auth.edgeInstance({ objectStore: viaProxy, workerUrl, publicUrl: edgeUrl, log, reports });
    servers.push(serve({ fetch: edge.fetch, hostname: '127.0.0.1', port: edgePort }) as Server);
    const edgeB = auth.edgeInstance({ objectStore: viaProxy, workerUrl, publicUrl: edgeUrl, log, reports });
    const edgeWith = (over: Partial<ReportsEdgeConfig>) => auth.edgeInstance({ objectStore: viaProxy, workerUrl, publicUrl: edgeUrl, log, reports: { ...reports, ...over } });

    return {
      auth, edgeUrl, edgeB, edgeWith, workerUrl, olap, s3, proxy, store: storeAt(s3.endpoint), builds, edgeLogs,
      async signIn(username) {
        const client = new CookieClient();
        const start = await client.follow(`${edgeUrl}/auth/login?returnTo=/auth/me`);
        const pwd = await client.submit(start.final, '/password', { username, password: 'bionic-demo' });
        const done = await client.submit(pwd.final, '/otp', { code: await auth.totp(username) });
        if (done.final.status !== 200) throw new Error(`sign-in of ${username} ended with ${done.final.status}: ${done.final.body.slice(0, 300)}`);
        const me = JSON.parse(done.final.body) as { userId: string; username: string };
        return { client, userId: me.userId, username: me.username, cookie: `__Host-session=${client.get('__Host-session')!.value}` };
      },
      async stop() {
        await Promise.all(servers.map((s) => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); })));
        for (const stop of stops) await stop().catch(() => {});
      },
    };
  } catch (err) {
    for (const s of servers) s.close();
    for (const stop of stops) await stop().catch(() => {});
    throw err;
  }
}
