/**
 * Cached report delivery: req/s and p99 of an authenticated `GET /reports/<period>.json` (session,
 * rate limit and version from the edge's short-lived caches, report from its LRU; KV is asked only
 * when those lapse) at 50 and 200 connections,
 * next to a bare Hono "hello" route served by the same runtime (Node, @hono/node-server), in
 * alternating rounds of the same run; and the cold (miss) latency: a period not built yet → build in
 * the workers (chDB) → object store → served. The edge, the hello server and the Upstash gateway run
 * as their own processes; the worker (with chDB) runs in this one, idle during the warm rounds.
 * Load comes from `wrk` when installed (apt-get install wrk), else a closed-loop Node client.
 *
 *   npm run bench -- reports [--seconds 5] [--rounds 2] [--cold 15] [--profile DIR]
 *
 * `--profile DIR` writes the edge's CPU profile (node --cpu-prof) into DIR, for a look at where
 * a request's time goes (open it in Chrome DevTools).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { createS3ObjectStore } from '../../edge/adapters/object-store-s3.ts';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { generateKeySpec } from '../../edge/auth/seal.ts';
import { freePort } from '../../infra/dev/free-port.ts';
import { DEMO_PASSWORD } from '../../infra/dev/services/ldap-directory.ts';
import { startLdap } from '../../infra/dev/services/ldap.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import { startS3 } from '../../infra/dev/services/s3.ts';
import { startDevIdp } from '../../infra/idp/server.ts';
import { createLogger } from '../../shared/log.ts';
import { createWorkerApp } from '../../workers/app.ts';
import { createJwtAuthenticator } from '../../workers/auth/verify-jwt.ts';
import { createReportBuilder } from '../../workers/reports/builder.ts';
import { CookieClient } from '../support/cookie-client.ts';
import { openStatsOlap, statRow } from '../support/reports-data.ts';
import { closedLoopLoad, type LoadResult } from './util.ts';

const ROOT = join(import.meta.dirname, '../..');
const { values } = parseArgs({ options: { seconds: { type: 'string' }, rounds: { type: 'string' }, cold: { type: 'string' }, profile: { type: 'string' } } });
const SECONDS = Number(values.seconds ?? 5);
const ROUNDS = Number(values.rounds ?? 2);
const COLD = Number(values.cold ?? 15);
const CONNECTIONS = [50, 200];
const PERIOD = '2025-01';
const WRK = spawnSync('wrk', ['--version']).error ? null : 'wrk';

function child(name: string, args: string[], env: Record<string, string>, ready: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n')) {
        if (line) { tail.push(line); if (tail.length > 50) tail.shift(); }
        if (line.includes(ready)) resolve(p);
      }
    };
    p.stdout!.on('data', onData);
    p.stderr!.on('data', onData);
    p.once('exit', (code) => reject(new Error(`${name} exited (${code}):\n${tail.join('\n')}`)));
  });
}

type Load = LoadResult;

/** wrk's latency figures carry their unit: 850.00us, 1.23ms, 1.01s. */
const toMs = (s: string) => { const m = /^([\d.]+)(us|ms|s)$/.exec(s)!; return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[m[2]!]!; };

async function loadWrk(url: string, headers: Record<string, string>, connections: number): Promise<Load> {
  // A generous timeout: on a loaded machine slow answers must count as answers, not vanish.
  const args = ['-t', '2', '-c', String(connections), '-d', `${SECONDS}s`, '--timeout', '10s', '--latency', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (d: Buffer) => { text += d.toString('utf8'); });
    p.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}:\n${text}`))));
  });
  const line = (re: RegExp) => re.exec(out)?.[1];
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = Number(line(/Non-2xx or 3xx responses: (\d+)/) ?? 0) + (socket ? socket.slice(1).reduce((n, v) => n + Number(v), 0) : 0);
  return { rps: Number(line(/Requests\/sec:\s+([\d.]+)/)), p50: toMs(line(/\s50%\s+(\S+)/)!), p99: toMs(line(/\s99%\s+(\S+)/)!), errors };
}

/** Closed loop: `connections` callers, each sending the next request when the last answered. */
function loadNode(url: string, headers: Record<string, string>, connections: number): Promise<Load> {
  return closedLoopLoad(url, { connections, seconds: SECONDS, headers });
}

/** CPU seconds (user + system) a process has used so far; NaN where /proc is not available. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch { return NaN; }
}

type Measured = Load & { cpuUs: number };

/** One load run, with the server's CPU time per answered request (robust to other work on the machine). */
async function load(url: string, headers: Record<string, string>, connections: number, server?: ChildProcess): Promise<Measured> {
  const before = cpuSeconds(server?.pid);
  const r = await (WRK ? loadWrk : loadNode)(url, headers, connections);
  return { ...r, cpuUs: ((cpuSeconds(server?.pid) - before) * 1e6) / (r.rps * SECONDS) };
}

const dir = await mkdtemp(join(tmpdir(), 'bionic-bench-reports-'));
const stops: (() => Promise<unknown>)[] = [];
const quiet = createLogger({ level: 'silent' });
try {
  const [redis, ldap, s3] = await Promise.all([
    startRedis({ dataDir: join(dir, 'redis') }).then((s) => { stops.push(() => s.stop()); return s; }),
    startLdap({ dataDir: join(dir, 'ldap') }).then((s) => { stops.push(() => s.stop()); return s; }),
    startS3({ dataDir: join(dir, 's3') }).then((s) => { stops.push(() => s.stop()); return s; }),
  ]);
  const token = randomBytes(24).toString('base64url');
  const gatewayPort = await freePort();
  const gateway = await child('gateway', ['--import', 'tsx', 'infra/gateway/main.ts'], { REDIS_URL: redis.url, GATEWAY_TOKEN: token, GATEWAY_PORT: String(gatewayPort) }, 'upstash gateway listening');
  stops.push(async () => { gateway.kill('SIGTERM'); });
  const kvUrl = `http://127.0.0.1:${gatewayPort}`;
  const kv = createUpstashKv({ url: kvUrl, token });

  const edgePort = await freePort();
  const edgeUrl = `http://127.0.0.1:${edgePort}`;
  const secret = randomBytes(24).toString('base64url');
  const idp = await startDevIdp({
    dataDir: join(dir, 'idp'), ldapUrl: ldap.url, ldapBindDn: ldap.bindDn, ldapBindPassword: ldap.bindPassword,
    clients: [{ clientId: 'bionic-edge', clientSecret: secret, redirectUris: [`${edgeUrl}/auth/callback`] }],
  });
  stops.push(() => idp.stop());

  // The worker, in this process: chDB with a month of statistics, the builder, bearer verification.
  const olap = await openStatsOlap(join(dir, 'chdb'));
  stops.unshift(() => olap.close());
  const s3Env = { S3_ENDPOINT: s3.endpoint, S3_ACCESS_KEY_ID: s3.accessKeyId, S3_SECRET_ACCESS_KEY: s3.secretAccessKey, S3_FORCE_PATH_STYLE: 'true', S3_REGION: s3.region };
  const store = createS3ObjectStore({ endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, bucket: 'reports', forcePathStyle: true });
  const builder = createReportBuilder({ olap, objectStore: store, kv, log: quiet });
  const worker = createWorkerApp({
    ports: { kv, objectStore: store, olap, reportBuilder: builder }, log: quiet, health: async () => ({ status: 'ok', dependencies: {} }),
    authenticate: createJwtAuthenticator({ issuer: idp.issuer, audience: 'bionic-worker-api' }),
  });
  const workerPort = await freePort();
  const workerServer = serve({ fetch: worker.fetch, hostname: '127.0.0.1', port: workerPort }) as Server;
  stops.unshift(async () => { workerServer.close(); workerServer.closeAllConnections(); });

  const profile = values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile] : [];
  const edge = await child('edge', [...profile, '--import', 'tsx', 'edge/main.node.ts'], {
    BIONIC_ENV: 'test', LOG_LEVEL: 'warn', EDGE_HOST: '127.0.0.1', EDGE_PORT: String(edgePort), PUBLIC_URL: edgeUrl,
    WORKER_URL: `http://127.0.0.1:${workerPort}`, UPSTASH_REDIS_REST_URL: kvUrl, UPSTASH_REDIS_REST_TOKEN: token, ...s3Env,
    OIDC_ISSUER: idp.issuer, OIDC_CLIENT_SECRET: secret, SESSION_KEYS: generateKeySpec('bench'),
    // The benchmark measures delivery, not the limiter's refusals.
    RATE_LIMIT_API_PER_MINUTE: '1000000', RATE_LIMIT_LOGIN_PER_MINUTE: '1000',
  }, '"edge listening"');
  // The profile is written as the edge exits: wait for that.
  stops.unshift(async () => { const exited = new Promise((r) => edge.once('exit', r)); edge.kill('SIGTERM'); if (values.profile) await exited; });
  const helloPort = await freePort();
  const hello = await child('hello', ['--input-type=module', '-e', `
    import { serve } from '@hono/node-server'; import { Hono } from 'hono';
    const app = new Hono(); app.get('/', (c) => c.text('hello'));
    serve({ fetch: app.fetch, hostname: '127.0.0.1', port: ${helloPort} }, () => console.log('hello listening'));`], {}, 'hello listening');
  stops.unshift(async () => { hello.kill('SIGTERM'); });

  const client = new CookieClient();
  const start = await client.follow(`${edgeUrl}/auth/login?returnTo=/auth/me`);
  const pwd = await client.submit(start.final, '/password', { username: 'user1', password: DEMO_PASSWORD });
  const done = await client.submit(pwd.final, '/otp', { code: idp.totpCode('user1').code });
  const { userId } = JSON.parse(done.final.body) as { userId: string };
  const cookie = { cookie: `__Host-session=${client.get('__Host-session')!.value}` };
  await olap.insert('user_prosthesis_stats', Array.from({ length: 31 }, (_, i) => statRow({
    user_id: userId, chip_id: 'chip-bench', day: `2025-01-${String(i + 1).padStart(2, '0')}`, active_minutes: 100 + i, actions: 500 + i, errors: i % 7,
  })));
  const reportUrl = `${edgeUrl}/reports/${PERIOD}.json`;

  // Cold: each read names a range not built yet, so it misses and is built. (A version bump would not
  // do: the edge reuses the version it read for REPORTS_VERSION_CACHE_SECONDS.)
  const cold: number[] = [];
  for (let i = 0; i < COLD; i++) {
    const from = new Date(Date.UTC(2024, 11, 1 + i)).toISOString().slice(0, 10);
    const t0 = performance.now();
    const res = await fetch(`${edgeUrl}/reports/${from}_2025-01-31.json`, { headers: cookie });
    const body = await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`cold read answered ${res.status}: ${new TextDecoder().decode(body)}`);
    cold.push(performance.now() - t0);
  }
  const check = await fetch(reportUrl, { headers: cookie });
  const bytes = (await check.arrayBuffer()).byteLength;
  if (check.status !== 200) throw new Error(`warm read answered ${check.status}`);

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  await load(`http://127.0.0.1:${helloPort}/`, {}, 50); // warm-up: JIT, connection pools
  await load(reportUrl, cookie, 50);
  const results: Record<string, { hello: Measured[]; session: Measured[]; reports: Measured[] }> = {};
  for (const c of CONNECTIONS) {
    results[c] = { hello: [], session: [], reports: [] };
    for (let r = 0; r < ROUNDS; r++) {
      results[c]!.hello.push(await load(`http://127.0.0.1:${helloPort}/`, {}, c, hello));
      // What the session alone costs (lookup + rate limit, no report): where the time goes.
      results[c]!.session.push(await load(`${edgeUrl}/auth/me`, cookie, c, edge));
      results[c]!.reports.push(await load(reportUrl, cookie, c, edge));
    }
  }

  console.log(`Node ${process.version}, load by ${WRK ? 'wrk (2 threads)' : 'a Node closed-loop client'}, ${ROUNDS} × ${SECONDS} s rounds (medians); report ${bytes} bytes`);
  // "server CPU": CPU time of the serving process per request, the figure least disturbed by other work.
  console.log(`${'route'.padEnd(44)} ${'conns'.padStart(5)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'errors'.padStart(7)} ${'server CPU µs/req'.padStart(18)}`);
  const row = (name: string, c: number, rs: Measured[]) => console.log(
    `${name.padEnd(44)} ${String(c).padStart(5)} ${median(rs.map((r) => r.rps)).toFixed(0).padStart(8)} ${median(rs.map((r) => r.p50)).toFixed(2).padStart(8)} ${median(rs.map((r) => r.p99)).toFixed(2).padStart(8)} ${rs.reduce((n, r) => n + r.errors, 0).toString().padStart(7)} ${median(rs.map((r) => r.cpuUs)).toFixed(0).padStart(18)}`);
  for (const c of CONNECTIONS) {
    row('baseline: bare Hono "hello"', c, results[c]!.hello);
    row('GET /auth/me (session only, for reference)', c, results[c]!.session);
    row('GET /reports/2025-01.json (session, cached)', c, results[c]!.reports);
    console.log(`${''.padEnd(44)} ${''.padStart(5)} ratio ${(median(results[c]!.reports.map((r) => r.rps)) / median(results[c]!.hello.map((r) => r.rps))).toFixed(2)}`);
  }
  cold.sort((a, b) => a - b);
  console.log(`cold read (a range not built yet: build → store → serve), ${COLD} reads: p50 ${median(cold).toFixed(1)} ms, max ${cold.at(-1)!.toFixed(1)} ms`);
  if (Object.values(results).some((r) => [...r.hello, ...r.session, ...r.reports].some((l) => l.errors))) throw new Error('some requests failed: the numbers are not valid');
  const at = results[200]!;
  const rps = median(at.reports.map((r) => r.rps));
  const helloRps = median(at.hello.map((r) => r.rps));
  console.log(`RESULT reports rps=${rps.toFixed(0)} hello_rps=${helloRps.toFixed(0)} ratio=${(rps / helloRps).toFixed(2)} p99_ms=${median(at.reports.map((r) => r.p99)).toFixed(2)} cold_ms=${median(cold).toFixed(1)}`);
} finally {
  for (const stop of stops) await stop().catch(() => {});
  await rm(dir, { recursive: true, force: true });
}
