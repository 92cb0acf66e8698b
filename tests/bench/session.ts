/**
 * The cost of a session: req/s and latency of an authenticated tRPC call (`me.get` with a session
 * cookie: session lookup in KV + rate limit per session) against an unauthenticated one
 * (`health.ping`: rate limit per address only) on the same edge server, measured side by side in
 * alternating rounds. The edge (Node) and the Upstash gateway run as their own processes; redis,
 * LDAP and the identity provider are only needed for the one sign-in beforehand.
 *
 *   npm run bench -- session [--seconds 5] [--rounds 3] [--concurrency 32]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateKeySpec } from '../../edge/auth/seal.ts';
import { freePort } from '../../infra/dev/free-port.ts';
import { DEMO_PASSWORD } from '../../infra/dev/services/ldap-directory.ts';
import { startLdap } from '../../infra/dev/services/ldap.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import { startDevIdp } from '../../infra/idp/server.ts';
import { CookieClient } from '../support/cookie-client.ts';
import { closedLoopLoad } from './util.ts';

const ROOT = join(import.meta.dirname, '../..');
const { values } = parseArgs({ options: { seconds: { type: 'string' }, rounds: { type: 'string' }, concurrency: { type: 'string' } } });
const SECONDS = Number(values.seconds ?? 5);
const ROUNDS = Number(values.rounds ?? 3);
const CONCURRENCY = Number(values.concurrency ?? 32);

function child(name: string, args: string[], env: Record<string, string>, ready: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n')) {
        if (line) tail.push(line);
        if (line.includes(ready)) resolve(p);
      }
    };
    p.stdout!.on('data', onData);
    p.stderr!.on('data', onData);
    p.once('exit', (code) => reject(new Error(`${name} exited (${code}):\n${tail.slice(-20).join('\n')}`)));
  });
}

/** Closed-loop load: CONCURRENCY callers, each sending the next request when the last answered. */
function load(url: string, headers: Record<string, string>, seconds: number) {
  return closedLoopLoad(url, { connections: CONCURRENCY, seconds, headers });
}

const dir = await mkdtemp(join(tmpdir(), 'bionic-bench-session-'));
const stops: (() => Promise<unknown>)[] = [];
try {
  const [redis, ldap] = await Promise.all([
    startRedis({ dataDir: join(dir, 'redis') }).then((s) => { stops.push(() => s.stop()); return s; }),
    startLdap({ dataDir: join(dir, 'ldap') }).then((s) => { stops.push(() => s.stop()); return s; }),
  ]);
  const token = randomBytes(24).toString('base64url');
  const gatewayPort = await freePort();
  const gateway = await child('gateway', ['infra/gateway/main.ts'], { REDIS_URL: redis.url, GATEWAY_TOKEN: token, GATEWAY_PORT: String(gatewayPort), LOG_LEVEL: 'warn' }, 'upstash gateway listening');
  stops.push(async () => { gateway.kill('SIGTERM'); });
  const edgePort = await freePort();
  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  const secret = randomBytes(24).toString('base64url');
  const idp = await startDevIdp({
    dataDir: join(dir, 'idp'), ldapUrl: ldap.url, ldapBindDn: ldap.bindDn, ldapBindPassword: ldap.bindPassword,
    clients: [{ clientId: 'bionic-edge', clientSecret: secret, redirectUris: [`${edgeUrl}/auth/callback`] }],
  });
  stops.push(() => idp.stop());
  const edge = await child('edge', ['edge/main.node.ts'], {
    BIONIC_ENV: 'test', LOG_LEVEL: 'warn', EDGE_HOST: '127.0.0.1', EDGE_PORT: String(edgePort), PUBLIC_URL: edgeUrl,
    WORKER_URL: 'http://127.0.0.1:9', UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${gatewayPort}`, UPSTASH_REDIS_REST_TOKEN: token,
    S3_ENDPOINT: 'http://127.0.0.1:9', S3_ACCESS_KEY_ID: 'unused', S3_SECRET_ACCESS_KEY: 'unused',
    OIDC_ISSUER: idp.issuer, OIDC_CLIENT_SECRET: secret, SESSION_KEYS: generateKeySpec('bench'),
    // The benchmark measures the session, not the limiter's refusals.
    RATE_LIMIT_API_PER_MINUTE: '1000000', RATE_LIMIT_LOGIN_PER_MINUTE: '1000',
  }, '"edge listening"');
  stops.unshift(async () => { edge.kill('SIGTERM'); });

  const client = new CookieClient();
  const start = await client.follow(`${edgeUrl}/auth/login`);
  const pwd = await client.submit(start.final, '/password', { username: 'user1', password: DEMO_PASSWORD });
  await client.submit(pwd.final, '/otp', { code: idp.totpCode('user1').code });
  const cookie = client.get('__Host-session');
  if (!cookie) throw new Error('sign-in failed');
  const authed = { cookie: `__Host-session=${cookie.value}` };
  const check = await fetch(`${edgeUrl}/trpc/me.get`, { headers: authed });
  if (check.status !== 200) throw new Error(`me.get answered ${check.status}: ${await check.text()}`);

  await load(`${edgeUrl}/trpc/health.ping`, {}, 1); // warm-up: JIT, connection pools, script cache
  await load(`${edgeUrl}/trpc/me.get`, authed, 1);
  const pub: Awaited<ReturnType<typeof load>>[] = [];
  const auth: Awaited<ReturnType<typeof load>>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    pub.push(await load(`${edgeUrl}/trpc/health.ping`, {}, SECONDS));
    auth.push(await load(`${edgeUrl}/trpc/me.get`, authed, SECONDS));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const row = (name: string, rs: typeof pub) => console.log(
    `${name.padEnd(34)} ${median(rs.map((r) => r.rps)).toFixed(0).padStart(8)} ${median(rs.map((r) => r.p50)).toFixed(2).padStart(8)} ${median(rs.map((r) => r.p99)).toFixed(2).padStart(8)} ${rs.reduce((n, r) => n + r.errors, 0).toString().padStart(7)}`);
  console.log(`edge on Node, ${CONCURRENCY} concurrent callers, ${ROUNDS} × ${SECONDS} s rounds (medians)`);
  console.log(`${'call'.padEnd(34)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'errors'.padStart(7)}`);
  row('baseline: health.ping (no session)', pub);
  row('me.get with a session cookie', auth);
  const authedRps = median(auth.map((r) => r.rps));
  const publicRps = median(pub.map((r) => r.rps));
  if (auth.some((r) => r.errors) || pub.some((r) => r.errors)) throw new Error('some requests failed: the numbers are not valid');
  console.log(`RESULT session authed_rps=${authedRps.toFixed(0)} public_rps=${publicRps.toFixed(0)} ratio=${(authedRps / publicRps).toFixed(2)} authed_p99_ms=${median(auth.map((r) => r.p99)).toFixed(2)}`);
} finally {
  for (const stop of stops) await stop().catch(() => {});
  await rm(dir, { recursive: true, force: true });
}
