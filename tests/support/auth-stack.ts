/**
 * The real services sign-in tests run against, all on loopback free ports in a temp directory:
 * redis-server behind the Upstash-REST gateway (KV), slapd (LDAP users), the development identity
 * provider, a worker app verifying bearer tokens, and the edge app served over HTTP with a clock
 * tests can move. `login()` drives the provider's real pages like a browser would.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Hono } from 'hono';
import { createEdgeApp, type EdgeDeps, type EdgeEnv } from '../../edge/app.ts';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { createKeyRing, generateKeySpec } from '../../edge/auth/seal.ts';
import { createSessionStore, type Session, type SessionTokens } from '../../edge/auth/session-store.ts';
import { freePort } from '../../infra/dev/free-port.ts';
import { DEMO_PASSWORD } from '../../infra/dev/services/ldap-directory.ts';
import { startLdap, type LdapService } from '../../infra/dev/services/ldap.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import type { RunningService } from '../../infra/dev/services/types.ts';
import { startUpstashGateway } from '../../infra/gateway/upstash-gateway.ts';
import { startDevIdp, type DevIdp } from '../../infra/idp/server.ts';
import type { EdgeAuthConfig } from '../../shared/config.ts';
import { createLogger, type Logger } from '../../shared/log.ts';
import type { ObjectStore } from '../../shared/ports/index.ts';
import { createWorkerApp } from '../../workers/app.ts';
import { createJwtAuthenticator } from '../../workers/auth/verify-jwt.ts';
import { CookieClient, type Seen } from './cookie-client.ts';
import { signIn, totpSource } from './sign-in.ts';

export const CLIENT_ID = 'bionic-edge';
export const AUDIENCE = 'bionic-worker-api';
const quietLog = createLogger({ level: process.env.TEST_LOG_LEVEL as 'debug' | undefined ?? 'silent' });
// Sign-in tests never touch reports; the edge only pings its object store for /health.
const objectStore = { ping: async () => {} } as unknown as ObjectStore;

export interface AuthStack {
  dir: string;
  idp: DevIdp;
  ldap: LdapService;
  kvUrl: string;
  kvToken: string;
  kv: ReturnType<typeof createUpstashKv>;
  workerUrl: string;
  edgeUrl: string;
  edge: Hono<EdgeEnv>;
  authConfig: EdgeAuthConfig;
  clientSecret: string;
  /** Moves the edge's clock (session timeouts, token refresh timing). */
  advance(seconds: number): void;
  now(): number;
  /** Another edge app sharing KV and the clock (for multi-instance tests); served in process only. */
  edgeInstance(over?: Partial<EdgeDeps>): Hono<EdgeEnv>;
  /** Runs the sign-in through the provider's pages; `final` is the page after the last redirect. */
  login(client: CookieClient, username: string, opts?: { password?: string; returnTo?: string }): Promise<{ final: Seen; hops: Seen[] }>;
  /** The KV session behind a cookie value and its unsealed tokens (the test holds the key ring, as an operator would). */
  sessionOf(cookieValue: string): Promise<(Session & { tokens: SessionTokens | null }) | null>;
  /** A fresh TOTP code for a pre-enrolled user (waits for the next time step when needed). */
  totp(username: string): Promise<string>;
  stop(): Promise<void>;
}

export interface AuthStackOptions {
  rateLimits?: EdgeDeps['rateLimits'];
  maxPasswordFailures?: number;
  accessTokenTtlSeconds?: number;
  cookieSecure?: boolean;
  /** Further edge origins to register at the provider (an edge run as its own process). */
  extraEdgeUrls?: string[];
  /** The edge's and worker's logger (default: silent unless TEST_LOG_LEVEL); the redaction test captures it. */
  log?: Logger;
  /** Receives the identity provider's log lines. */
  idpLog?: (msg: string, fields?: Record<string, unknown>) => void;
}

export async function startAuthStack(opts: AuthStackOptions = {}): Promise<AuthStack> {
  const dir = await mkdtemp(join(tmpdir(), 'bionic-auth-'));
  const log = opts.log ?? quietLog;
  const started: RunningService[] = [];
  const servers: Server[] = [];
  try {
    const kvToken = randomBytes(24).toString('base64url');
    // Each service is recorded as soon as it runs, so a failure of the other one still stops it.
    const [redis, ldap] = await Promise.all([
      startRedis({ dataDir: join(dir, 'redis') }).then((s) => { started.push(s); return s; }),
      startLdap({ dataDir: join(dir, 'ldap') }).then((s) => { started.push(s); return s; }),
    ]);
    const gateway = await startUpstashGateway({ redisUrl: redis.url, token: kvToken });
    started.push(gateway);
    const edgePort = await freePort();
    const edgeUrl = `http://127.0.0.1:${edgePort}`;
    const clientSecret = randomBytes(24).toString('base64url');
    const idp = await startDevIdp({
      dataDir: join(dir, 'idp'), ldapUrl: ldap.url, ldapBindDn: ldap.bindDn, ldapBindPassword: ldap.bindPassword,
      clients: [{
        clientId: CLIENT_ID, clientSecret,
        redirectUris: [edgeUrl, ...(opts.extraEdgeUrls ?? [])].map((u) => `${u}/auth/callback`),
        postLogoutRedirectUris: [edgeUrl, ...(opts.extraEdgeUrls ?? [])].map((u) => `${u}/auth/logged-out`),
      }],
      audience: AUDIENCE, maxPasswordFailures: opts.maxPasswordFailures, accessTokenTtlSeconds: opts.accessTokenTtlSeconds, log: opts.idpLog,
    });
    started.push(idp);

    const worker = createWorkerApp({
      ports: {}, log, health: async () => ({ status: 'ok', dependencies: {} }),
      authenticate: createJwtAuthenticator({ issuer: idp.issuer, audience: AUDIENCE, log }),
    });
    const workerPort = await freePort();
    servers.push(serve({ fetch: worker.fetch, hostname: '127.0.0.1', port: workerPort }) as Server);
    const workerUrl = `http://127.0.0.1:${workerPort}`;

    let offset = 0;
    const now = () => Math.floor(Date.now() / 1000) + offset;
    const authConfig: EdgeAuthConfig = {
      issuer: idp.issuer, clientId: CLIENT_ID, clientSecret, audience: AUDIENCE, mfaAcrValues: ['mfa'],
      sessionKeys: [{ kid: 'k1', secret: generateKeySpec('k1').slice(3) }],
      idleSeconds: 1800, absoluteSeconds: 12 * 3600, cookieSecure: opts.cookieSecure ?? true,
    };
    const kv = createUpstashKv({ url: gateway.url, token: kvToken });
    const edgeInstance = (over: Partial<EdgeDeps> = {}) => createEdgeApp({
      kv, objectStore, log, workerUrl, auth: authConfig, publicUrl: edgeUrl, now,
      rateLimits: opts.rateLimits === undefined ? { login: { limit: 1000, windowSeconds: 60 }, api: { limit: 10_000, windowSeconds: 60 } } : opts.rateLimits,
      // Served instances see the socket; in-process ones (app.request) have none.
      clientIp: (c) => ((c.env as { incoming?: unknown } | undefined)?.incoming ? getConnInfo(c).remote.address : 'in-process'), ...over,
    });
    const edge = edgeInstance();
    servers.push(serve({ fetch: edge.fetch, hostname: '127.0.0.1', port: edgePort }) as Server);

    const totp = totpSource((u) => idp.totpCode(u));

    return {
      dir, idp, ldap, kvUrl: gateway.url, kvToken, kv, workerUrl, edgeUrl, edge, authConfig, clientSecret,
      advance: (s) => { offset += s; },
      now,
      edgeInstance,
      totp,
      async sessionOf(cookieValue) {
        const store = createSessionStore({ kv, keys: createKeyRing(authConfig.sessionKeys), idleSeconds: authConfig.idleSeconds, absoluteSeconds: authConfig.absoluteSeconds });
        const key = await store.keyFor(cookieValue);
        const s = key ? await store.peek(key) : null;
        return s ? { ...s, tokens: await store.tokens(s) } : null;
      },
      login: (client, username, o = {}) => signIn(client, edgeUrl, username, totp, o),
      async stop() {
        await Promise.all(servers.map((s) => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); })));
        for (const s of started.reverse()) await s.stop().catch(() => {});
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const s of servers) s.close();
    for (const s of started.reverse()) await s.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export { DEMO_PASSWORD };
