/**
 * Data residency, identity part, end to end on real services: one slapd per region, the dev
 * identity provider federating them, the edge with sessions in KV (redis-server behind the
 * Upstash gateway), and per-region CRM/telemetry databases in embedded PostgreSQL.
 *
 * The regions come from environment variables only (`REGIONS=ru,eu,us` + `REGION_<ID>_…`): `us`
 * is a region no code or fixture knows — its directory, databases and demo user exist because the
 * configuration names it. Each region's user signs in through their own directory, gets their
 * region in the token and the session, and nothing personal (names, e-mail, phone) reaches a token,
 * or KV. Sessions of `ru` and `eu` people live in their region's own KV (a redis-server and gateway
 * each); `us` has none configured, so its people's sessions stay in the central KV. Each region's
 * CRM holds its own people only.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { generateCodeVerifier, generateState, KeyCloak } from 'arctic';
import { Redis } from 'ioredis';
import { decodeJwt } from 'jose';
import { Client } from 'ldapts';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { createEdgeApp } from '../../edge/app.ts';
import { createEdgeRegions } from '../../edge/regions.ts';
import { ROLES } from '../../edge/auth/claims.ts';
import { createKeyRing, generateKeySpec } from '../../edge/auth/seal.ts';
import { createSessionStore } from '../../edge/auth/session-store.ts';
import { freePort } from '../../infra/dev/free-port.ts';
import { linkDemoCustomers } from '../../infra/dev/link-demo.ts';
import { prepareRegionDatabases } from '../../infra/dev/prepare.ts';
import { DEMO_PASSWORD, demoCustomerRegion, demoUsersOf, LDAP_PEOPLE_DN } from '../../infra/dev/services/ldap-directory.ts';
import type { LdapService } from '../../infra/dev/services/ldap.ts';
import { startRegionalDirectories } from '../../infra/dev/services/ldap-regions.ts';
import { startPostgres, type PostgresService } from '../../infra/dev/services/postgres.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import type { RunningService } from '../../infra/dev/services/types.ts';
import { startUpstashGateway } from '../../infra/gateway/upstash-gateway.ts';
import { preEnrolledOf, startDevIdp, type DevIdp } from '../../infra/idp/server.ts';
import type { EdgeAuthConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/log.ts';
import type { ObjectStore } from '../../shared/ports/index.ts';
import { regionOf, regionsConfigOf, regionsEnv, type RegionsConfig } from '../../shared/regions/index.ts';
import { createJwtAuthenticator } from '../../workers/auth/verify-jwt.ts';
import { CookieClient } from '../support/cookie-client.ts';

const AUDIENCE = 'bionic-worker-api';
const log = createLogger({ level: 'silent' });
const objectStore = { ping: async () => {} } as unknown as ObjectStore;
/** Claims a token may carry: authentication attributes and protocol fields, nothing personal. */
const ALLOWED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'scope', 'client_id', 'azp', 'typ', 'amr', 'acr',
  'auth_time', 'sid', 'nonce', 'at_hash', 'c_hash', 's_hash', 'preferred_username', 'realm_access', 'region']);

let dir: string;
const started: RunningService[] = [];
const servers: Server[] = [];
let pg: PostgresService;
let redisUrl: string;
/** Each region's own KV (ru, eu): its redis URL and the KV client over its gateway. */
const regionalKv = new Map<string, { redisUrl: string; kv: ReturnType<typeof createUpstashKv> }>();
let ldaps: LdapService[];
let idp: DevIdp;
let regions: RegionsConfig;
let edgeUrl: string;
let authConfig: EdgeAuthConfig;
let kv: ReturnType<typeof createUpstashKv>;
let clientSecret: string;
const signedIn = new Map<string, { region: string; cookie: string }>();

/** The only place regions are named: environment variables, as an operator would set them. */
function regionEnv(pgService: PostgresService): Record<string, string> {
  const env: Record<string, string> = { REGIONS: 'ru,eu,us' };
  for (const id of ['ru', 'eu', 'us']) {
    env[`REGION_${id.toUpperCase()}_CRM_DATABASE_URL`] = pgService.databaseUrl(`crm_${id}`);
    env[`REGION_${id.toUpperCase()}_TELEMETRY_DATABASE_URL`] = pgService.databaseUrl(`telemetry_${id}`);
  }
  return env;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bionic-regions-'));
  const [p, redis] = await Promise.all([
    startPostgres({ dataDir: join(dir, 'pg') }).then((s) => { started.push(s); return s; }),
    startRedis({ dataDir: join(dir, 'redis') }).then((s) => { started.push(s); return s; }),
  ]);
  pg = p;
  redisUrl = redis.url;
  const env = regionEnv(pg);
  regions = regionsConfigOf(env, 'worker', regionsEnv.REGIONS.parse(env.REGIONS), { reportsBucket: 'reports', s3Region: 'us-east-1' });
  const ids = regions.regions.map((r) => r.id);

  ldaps = await startRegionalDirectories({ dataDir: dir, regions: ids });
  started.push(...ldaps);
  const dbs = regions.regions.map((r) => ({ id: r.id, crm: r.crmDatabaseUrl!, telemetry: r.telemetryDatabaseUrl! }));
  for (const d of dbs) for (const url of [d.crm, d.telemetry]) await pg.ensureDatabase(new URL(url).pathname.slice(1));
  await prepareRegionDatabases(dbs, { seed: true, regionOf: (u) => demoCustomerRegion(u, ids) });
  for (const [i, l] of ldaps.entries()) await linkDemoCustomers(dbs[i]!.crm, l);

  const kvToken = randomBytes(24).toString('base64url');
  const gateway = await startUpstashGateway({ redisUrl: redis.url, token: kvToken });
  started.push(gateway);
  // ru and eu get a KV of their own for their people's sessions, by configuration only.
  for (const id of ['ru', 'eu']) {
    const r = await startRedis({ dataDir: join(dir, `redis-${id}`) });
    started.push(r);
    const g = await startUpstashGateway({ redisUrl: r.url, token: kvToken });
    started.push(g);
    env[`REGION_${id.toUpperCase()}_UPSTASH_REDIS_REST_URL`] = g.url;
    env[`REGION_${id.toUpperCase()}_UPSTASH_REDIS_REST_TOKEN`] = kvToken;
    regionalKv.set(id, { redisUrl: r.url, kv: createUpstashKv({ url: g.url, token: kvToken }) });
  }
  const edgeRegions = createEdgeRegions({
    regions: regionsConfigOf(env, 'edge', ids, { reportsBucket: 'reports', s3Region: 'us-east-1' }),
    objectStore: { endpoint: 'http://127.0.0.1:9', region: 'us-east-1', accessKeyId: 'x', secretAccessKey: 'x', bucket: 'reports', forcePathStyle: true },
  }, objectStore);
  const edgePort = await freePort();
  edgeUrl = `http://127.0.0.1:${edgePort}`;
  clientSecret = randomBytes(24).toString('base64url');
  idp = await startDevIdp({
    dataDir: join(dir, 'idp'), audience: AUDIENCE,
    directories: ldaps.map((l) => ({ region: l.region!, url: l.url, bindDn: l.bindDn, bindPassword: l.bindPassword })),
    preEnrol: preEnrolledOf(ids.flatMap((id) => demoUsersOf(id, ids))),
    clients: [{ clientId: 'bionic-edge', clientSecret, redirectUris: [`${edgeUrl}/auth/callback`], postLogoutRedirectUris: [`${edgeUrl}/auth/logged-out`] }],
  });
  started.push(idp);
  authConfig = {
    issuer: idp.issuer, clientId: 'bionic-edge', clientSecret, audience: AUDIENCE, mfaAcrValues: ['mfa'],
    sessionKeys: [{ kid: 'k1', secret: generateKeySpec('k1').slice(3) }], idleSeconds: 1800, absoluteSeconds: 3600, cookieSecure: true,
  };
  kv = createUpstashKv({ url: gateway.url, token: kvToken });
  const edge = createEdgeApp({ kv, objectStore, regions: edgeRegions, log, workerUrl: 'http://127.0.0.1:9', auth: authConfig, publicUrl: edgeUrl, rateLimits: null, clientIp: () => '127.0.0.1' });
  servers.push(serve({ fetch: edge.fetch, hostname: '127.0.0.1', port: edgePort }) as Server);
}, 180_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); })));
  for (const s of started.reverse()) await s.stop().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

/** A session store reading the same KVs the edge writes (central, and ru's and eu's own). */
const sessionStore = () => createSessionStore({
  kv, regionalKv: (id) => regionalKv.get(id)?.kv, keys: createKeyRing(authConfig.sessionKeys), idleSeconds: 1800, absoluteSeconds: 3600,
});

async function login(username: string): Promise<CookieClient> {
  const client = new CookieClient();
  const start = await client.follow(`${edgeUrl}/auth/login?returnTo=/auth/me`);
  const afterPassword = await client.submit(start.final, '/password', { username, password: DEMO_PASSWORD });
  expect(afterPassword.final.body, username).toContain('name="code"');
  const { code, validFromMs } = idp.totpCode(username);
  if (validFromMs > Date.now()) await new Promise((r) => setTimeout(r, validFromMs - Date.now() + 50));
  const done = await client.submit(afterPassword.final, '/otp', { code });
  expect(done.final.status, done.final.body.slice(0, 200)).toBe(200);
  return client;
}

/** The ID token the provider issues to the edge's client for `username` (scopes openid, profile, email, as the edge asks). */
async function idTokenFor(username: string): Promise<string> {
  const kc = new KeyCloak(idp.issuer, 'bionic-edge', clientSecret, `${edgeUrl}/auth/callback`);
  const verifier = generateCodeVerifier();
  const isCallback = (u: URL) => u.href.startsWith(`${edgeUrl}/auth/callback`);
  const client = new CookieClient();
  const start = await client.follow(kc.createAuthorizationURL(generateState(), verifier, ['openid', 'profile', 'email']));
  const pwd = await client.submit(start.final, '/password', { username, password: DEMO_PASSWORD });
  const { code: totp, validFromMs } = idp.totpCode(username);
  if (validFromMs > Date.now()) await new Promise((r) => setTimeout(r, validFromMs - Date.now() + 50));
  const done = await client.submit(pwd.final, '/otp', { code: totp }, { stopAt: isCallback });
  const code = done.stoppedAt?.searchParams.get('code');
  if (!code) throw new Error(`no code for ${username}: ${done.final.status} ${done.final.body.slice(0, 200)}`);
  return (await kc.validateAuthorizationCode(code, verifier)).idToken();
}

/** The people of a region's directory, read with its reader account. */
async function directoryEntries(l: LdapService): Promise<{ uid: string; entryUUID: string; personal: string[] }[]> {
  const c = new Client({ url: l.url });
  try {
    await c.bind(l.bindDn, l.bindPassword);
    const { searchEntries } = await c.search(LDAP_PEOPLE_DN, { scope: 'one', filter: '(uid=*)', attributes: ['uid', 'entryUUID', 'givenName', 'sn', 'cn', 'mail'] });
    return searchEntries.map((e) => ({ uid: String(e.uid), entryUUID: String(e.entryUUID), personal: [e.givenName, e.sn, e.cn, e.mail].map(String) }));
  } finally {
    await c.unbind();
  }
}

async function crmRows(region: string) {
  const sql = postgres(regions.regions.find((r) => r.id === region)!.crmDatabaseUrl!, { max: 1, onnotice: () => {} });
  try {
    return await sql<{ username: string; full_name: string; email: string; phone: string; region: string; idp_subject: string | null }[]>`
      SELECT username, full_name, email, phone, region, idp_subject FROM customers ORDER BY id`;
  } finally {
    await sql.end();
  }
}

/** Every value stored in a KV (the central one by default), as text (raw, as an operator with Redis access would see it). */
async function kvDump(url = redisUrl): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  try {
    const out: string[] = [];
    for (const key of await redis.keys('*')) {
      const type = await redis.type(key);
      const value = type === 'string' ? await redis.get(key)
        : type === 'hash' ? JSON.stringify(await redis.hgetall(key))
          : type === 'zset' ? JSON.stringify(await redis.zrange(key, 0, -1))
            : type === 'list' ? JSON.stringify(await redis.lrange(key, 0, -1))
              : type === 'set' ? JSON.stringify(await redis.smembers(key))
                : type === 'stream' ? JSON.stringify(await redis.xrange(key, '-', '+')) : '';
      out.push(`${key} ${value}`);
    }
    return out.join('\n');
  } finally {
    redis.disconnect();
  }
}

describe('regions as configuration: identity', () => {
  it('the configuration names three regions, the third unknown to any code or fixture', () => {
    expect(regions.implicit).toBe(false);
    expect(regions.regions.map((r) => r.id)).toEqual(['ru', 'eu', 'us']);
    expect(ldaps.map((l) => l.name)).toEqual(['ldap-ru', 'ldap-eu', 'ldap-us']);
  });

  it('each directory holds only its own region\'s people', async () => {
    const seen = new Map<string, string>();
    for (const l of ldaps) {
      const people = await directoryEntries(l);
      expect(people.map((p) => p.uid).sort()).toEqual(demoUsersOf(l.region!, ['ru', 'eu', 'us']).map((u) => u.uid).sort());
      for (const p of people) {
        expect(seen.has(p.uid), p.uid).toBe(false);
        seen.set(p.uid, l.region!);
      }
    }
    expect([seen.get('user1'), seen.get('user2'), seen.get('operator1')]).toEqual(['eu', 'ru', 'ru']);
    expect(seen.get('user6')).toBe('us');
  });

  it.each([['ru', 'user2'], ['eu', 'user1'], ['us', 'user6']])('a %s user (%s) signs in through their own directory and gets their region', async (region, username) => {
    const client = await login(username);
    const me = JSON.parse((await client.request(`${edgeUrl}/auth/me`)).body);
    expect(me).toMatchObject({ username, region });
    const own = (await directoryEntries(ldaps.find((l) => l.region === region)!)).find((p) => p.uid === username)!;
    expect(me.userId).toBe(own.entryUUID);
    for (const other of ldaps.filter((l) => l.region !== region)) {
      expect((await directoryEntries(other)).some((p) => p.uid === username || p.entryUUID === me.userId)).toBe(false);
    }
    signedIn.set(username, { region, cookie: client.get('__Host-session')!.value });
  }, 120_000);

  it('the session and the worker-verified access token carry the region; regionOf routes by it', async () => {
    const store = sessionStore();
    const authenticate = createJwtAuthenticator({ issuer: idp.issuer, audience: AUDIENCE });
    expect(signedIn.size).toBe(3);
    for (const [username, { region, cookie }] of signedIn) {
      const session = await store.peek((await store.keyFor(cookie))!);
      expect(session!.identity, username).toMatchObject({ username, region });
      const tokens = await store.tokens(session!);
      const identity = await authenticate(new Request('http://worker.test/trpc/x', { headers: { authorization: `Bearer ${tokens!.accessToken}` } }));
      expect(identity, username).toMatchObject({ username, region });
      expect(regionOf(identity!, regions)).toBe(region);
    }
  });

  it('ID and access tokens and KV hold authentication attributes only: no name, e-mail or phone of anyone', { timeout: 120_000 }, async () => {
    const store = sessionStore();
    const personal: string[] = [];
    for (const l of ldaps) for (const p of await directoryEntries(l)) personal.push(...p.personal);
    for (const r of regions.regions) for (const c of await crmRows(r.id)) personal.push(c.full_name, c.email, c.phone);
    // Short values and role-like words ("Admin") would match protocol text by chance; full names, e-mails and phones remain.
    const needles = personal.map((v) => v.toLowerCase()).filter((v) => v.length >= 5 && !ROLES.some((r) => r.includes(v)));
    expect(needles.length).toBeGreaterThan(40);
    const leaks = (text: string) => needles.filter((v) => text.toLowerCase().includes(v));

    const kvText = [await kvDump(), ...await Promise.all([...regionalKv.values()].map((r) => kvDump(r.redisUrl)))].join('\n');
    expect(kvText).toContain('session:');
    expect(leaks(kvText)).toEqual([]);
    for (const [username, { cookie }] of signedIn) {
      const session = await store.peek((await store.keyFor(cookie))!);
      const tokens = (await store.tokens(session!))!;
      const claims = decodeJwt(tokens.accessToken);
      expect(Object.keys(claims).filter((k) => !ALLOWED_CLAIMS.has(k)), username).toEqual([]);
      const idClaims = decodeJwt(await idTokenFor(username));
      expect(idClaims, username).toMatchObject({ preferred_username: username, region: claims.region });
      expect(Object.keys(idClaims).filter((k) => !ALLOWED_CLAIMS.has(k)), username).toEqual([]);
      expect(leaks(JSON.stringify({ session, claims, idClaims })), username).toEqual([]);
    }
  });

  it('a region\'s people\'s sessions live in its own KV when it has one; the cookie names the region and cannot be moved to another', async () => {
    const store = sessionStore();
    const keysIn = async (url: string) => {
      const redis = new Redis(url, { lazyConnect: true });
      await redis.connect();
      try { return await redis.keys('session:*'); } finally { redis.disconnect(); }
    };
    const where = { central: await keysIn(redisUrl), ru: await keysIn(regionalKv.get('ru')!.redisUrl), eu: await keysIn(regionalKv.get('eu')!.redisUrl) };
    for (const [username, { region, cookie }] of signedIn) {
      const key = (await store.keyFor(cookie))!;
      const home = region === 'us' ? 'central' : region;
      expect(cookie.startsWith(`${region}.`), username).toBe(region !== 'us');
      for (const [kvName, keys] of Object.entries(where)) expect(keys.includes(key), `${username} in ${kvName}`).toBe(kvName === home);
      // The same random id under another region's name is another (absent) session: signed out.
      if (region !== 'us') {
        const moved = cookie.replace(/^[a-z0-9]+\./, region === 'ru' ? 'eu.' : 'ru.');
        const res = await fetch(`${edgeUrl}/auth/me`, { headers: { cookie: `__Host-session=${moved}` } });
        expect(res.status, username).toBe(401);
      }
    }
    expect(where.central.some((k) => /^session:(ru|eu):/.test(k))).toBe(false);
    // The edge checks the regional KVs' health too.
    const ready = await (await fetch(`${edgeUrl}/ready`)).json() as { dependencies: Record<string, unknown> };
    expect(Object.keys(ready.dependencies)).toEqual(expect.arrayContaining(['kv', 'kv_ru', 'kv_eu']));
  });

  it('each region\'s CRM holds its own customers only, linked to their own directory\'s subjects', async () => {
    const byRegion = new Map<string, Awaited<ReturnType<typeof crmRows>>>();
    for (const r of regions.regions) byRegion.set(r.id, await crmRows(r.id));
    for (const [region, rows] of byRegion) {
      expect(rows.length, region).toBeGreaterThan(0);
      expect(rows.every((c) => c.region === region), region).toBe(true);
      const subjects = new Set((await directoryEntries(ldaps.find((l) => l.region === region)!)).map((p) => p.entryUUID));
      const linked = rows.filter((c) => c.idp_subject);
      expect(linked.length, region).toBeGreaterThan(0);
      expect(linked.every((c) => subjects.has(c.idp_subject!)), region).toBe(true);
    }
    const usernames = [...byRegion.values()].flat().map((c) => c.username);
    expect(new Set(usernames).size).toBe(usernames.length);
    for (const [username, { region }] of signedIn) {
      expect(byRegion.get(region)!.some((c) => c.username === username), username).toBe(true);
    }
  });
});
