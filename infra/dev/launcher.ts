/**
 * The embedded stack: one command brings up PostgreSQL, redis-server behind the Upstash-REST
 * gateway, s3rver, the worker (which owns chDB) and the edge — with demo data — and prints the URLs.
 * Ctrl-C stops every child. A child that dies is reported loudly; the rest keep running so
 * /ready shows what is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from './free-port.ts';
import { startPostgres } from './services/postgres.ts';
import { startRedis } from './services/redis.ts';
import { startS3 } from './services/s3.ts';
import { startRegionalDirectories } from './services/ldap-regions.ts';
import { DEMO_PASSWORD, demoCustomerRegion, demoUsersOf } from './services/ldap-directory.ts';
import { preEnrolledOf, startDevIdp } from '../idp/server.ts';
import { regionsEnv, regionVariable } from '../../shared/regions/config.ts';
import type { RunningService } from './services/types.ts';
import { startUpstashGateway } from '../gateway/upstash-gateway.ts';
import { prepareDatabases, prepareRegionDatabases } from './prepare.ts';
import { linkDemoCustomers } from './link-demo.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DATABASES = ['crm', 'telemetry', 'platform'] as const;
/** Regions of the embedded stack unless `REGIONS` says otherwise (shared/regions). */
const DEV_REGIONS = 'ru,eu';

const HELP = `Usage: npm start -- [options]      (or: node --import tsx infra/dev/launcher.ts [options])

Starts the whole BionicPRO platform on embedded defaults and prints its URLs.

Options:
  --data-dir DIR        where everything persists (default: ./data, env BIONIC_DATA_DIR)
  --edge-port N         edge HTTP port (default 8080; 0 = any free port)
  --worker-port N       worker HTTP port (default 8081; 0 = any free port)
  --edge-runtime RT     node (default) or deno
  --no-seed             do not seed demo data into an empty CRM
  --reset               wipe the data directory and exit (refused while the stack runs)
  -h, --help            show this help

Environment: REGIONS (default ${DEV_REGIONS}) — one LDAP directory, CRM and telemetry database
and report bucket per region (see README → Data residency).

Ctrl-C stops everything.`;

const color = process.stdout.isTTY ? (code: number, s: string) => `\x1b[${code}m${s}\x1b[0m` : (_: number, s: string) => s;
const say = (s: string) => process.stdout.write(s + '\n');
const loud = (s: string) => process.stderr.write(color(31, `\n✖ ${s}\n\n`));

interface Options { dataDir: string; edgePort: number; workerPort: number; edgeRuntime: 'node' | 'deno'; seed: boolean; reset: boolean; regions: string[] }

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string' }, 'edge-port': { type: 'string' }, 'worker-port': { type: 'string' },
      'edge-runtime': { type: 'string' }, 'no-seed': { type: 'boolean' }, reset: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { say(HELP); process.exit(0); }
  const port = (name: string, v: string | undefined, dflt: number) => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${name} must be a port number 0-65535, got "${v}"`);
    return n;
  };
  const runtime = values['edge-runtime'] ?? 'node';
  const regions = regionsEnv.REGIONS.safeParse(process.env.REGIONS || DEV_REGIONS);
  if (!regions.success || !regions.data) throw new UsageError(`REGIONS: ${regions.error?.issues[0]?.message ?? 'invalid'}`);
  if (runtime !== 'node' && runtime !== 'deno') throw new UsageError(`--edge-runtime must be node or deno, got "${runtime}"`);
  return {
    dataDir: resolve(values['data-dir'] ?? process.env.BIONIC_DATA_DIR ?? join(ROOT, 'data')),
    edgePort: port('edge-port', values['edge-port'], 8080),
    workerPort: port('worker-port', values['worker-port'], 8081),
    edgeRuntime: runtime,
    seed: !values['no-seed'],
    reset: Boolean(values.reset),
    regions: regions.data,
  };
}

class UsageError extends Error {}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

function lockOrRefuse(dataDir: string) {
  const file = join(dataDir, 'launcher.pid');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8'));
    if (pid && pid !== process.pid && alive(pid)) throw new UsageError(`the stack is already running from ${dataDir} (pid ${pid}); stop it first`);
  }
  writeFileSync(file, String(process.pid));
  return () => rmSync(file, { force: true });
}

interface DevSecrets { gatewayToken: string; oidcClientSecret: string; sessionKeys: string; telemetryDeviceKeys: string; analyticsPseudonymKey: string }

/** Per-data-dir secrets, generated once, never in the repo; ones added later are filled in. */
function devSecrets(dataDir: string): DevSecrets {
  const file = join(dataDir, 'secrets.json');
  const existing: Partial<DevSecrets> = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const secrets: DevSecrets = {
    gatewayToken: randomBytes(24).toString('base64url'),
    oidcClientSecret: randomBytes(24).toString('base64url'),
    sessionKeys: `dev1:${randomBytes(32).toString('base64url')}`,
    telemetryDeviceKeys: `dev1:${randomBytes(32).toString('base64url')}`,
    analyticsPseudonymKey: randomBytes(32).toString('base64url'),
    ...existing,
  };
  if (Object.keys(existing).length !== Object.keys(secrets).length) writeFileSync(file, JSON.stringify(secrets), { mode: 0o600 });
  return secrets;
}

/** Spawns a Node/Deno child and resolves when it logs `<name> listening`. */
function spawnApp(name: string, cmd: string, args: string[], env: Record<string, string>): Promise<RunningService> {
  const child: ChildProcess = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const exited = new Promise<{ code: number | null; signal: string | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  return new Promise((resolveStart, reject) => {
    let ready = false;
    const onLine = (line: string, stream: NodeJS.WriteStream) => {
      tail.push(line); if (tail.length > 40) tail.shift();
      stream.write(color(90, `${name.padEnd(6)}│ `) + line + '\n');
      if (!ready && line.includes(`"${name} listening"`)) {
        ready = true;
        const url = (JSON.parse(line) as { url: string }).url;
        resolveStart({ name, url, pid: child.pid, exited, stop: () => stopChild(child, exited) });
      }
    };
    lines(child.stdout!, (l) => onLine(l, process.stdout));
    lines(child.stderr!, (l) => onLine(l, process.stderr));
    void exited.then(({ code, signal }) => {
      if (!ready) reject(new Error(`${name} exited during start-up (code ${code}, signal ${signal}):\n${tail.join('\n')}`));
    });
  });
}

function lines(stream: NodeJS.ReadableStream, onLine: (l: string) => void) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { onLine(buf.slice(0, i)); buf = buf.slice(i + 1); }
  });
  stream.on('end', () => { if (buf) onLine(buf); });
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

async function step<T>(label: string, fn: () => Promise<T>, detail: (v: T) => string = () => ''): Promise<T> {
  const t0 = performance.now();
  const v = await fn();
  say(`${color(32, '✔')} ${label.padEnd(22)} ${detail(v)} ${color(90, `(${((performance.now() - t0) / 1000).toFixed(1)} s)`)}`);
  return v;
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.reset) {
    if (existsSync(opts.dataDir)) lockOrRefuse(opts.dataDir)();
    rmSync(opts.dataDir, { recursive: true, force: true });
    say(`Wiped ${opts.dataDir}`);
    return;
  }
  mkdirSync(join(opts.dataDir, 'logs'), { recursive: true });
  const unlock = lockOrRefuse(opts.dataDir);
  const secrets = devSecrets(opts.dataDir);
  const started: RunningService[] = [];
  let stopping = false;
  const watch = <T extends RunningService>(s: T): T => {
    started.push(s);
    void s.exited.then(({ code, signal }) => {
      if (!stopping) loud(`${s.name} stopped unexpectedly (code ${code}, signal ${signal}). The platform is degraded: see /ready. Restart with Ctrl-C and npm start.`);
    });
    return s;
  };
  const stopAll = async () => {
    stopping = true;
    for (const s of [...started].reverse()) await s.stop().catch((e) => loud(`stopping ${s.name}: ${e}`));
    unlock();
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(0)));
  process.once('SIGTERM', () => void stopAll().then(() => process.exit(0)));

  try {
    say(color(1, `BionicPRO embedded stack — data in ${opts.dataDir}`));
    const pgLog = join(opts.dataDir, 'logs', 'postgres.log');
    const bucketOf = (region: string) => `reports-${region}`;
    const [pg, redis, s3, ldaps] = await Promise.all([
      step('postgres', async () => watch(await startPostgres({ dataDir: join(opts.dataDir, 'postgres'), onLog: (m) => appendLog(pgLog, m) })), (s) => s.url.replace(/:[^:@/]+@/, ':***@')),
      step('redis-server', async () => watch(await startRedis({ dataDir: join(opts.dataDir, 'redis') })), (s) => s.url),
      step('s3rver', async () => watch(await startS3({ dataDir: join(opts.dataDir, 's3'), buckets: ['reports', ...opts.regions.map(bucketOf)] })), (s) => s.url),
      step(`ldap ×${opts.regions.length} (slapd)`, async () => (await startRegionalDirectories({ dataDir: opts.dataDir, regions: opts.regions })).map(watch),
        (ls) => ls.map((l) => `${l.region} ${l.url}`).join(', ')),
    ]);
    // The provider registers the edge's redirect URI, so the edge's port is settled first.
    const [workerPort, edgePort] = [opts.workerPort || (await freePort()), opts.edgePort || (await freePort())];
    const publicUrl = `http://127.0.0.1:${edgePort}`;
    const idp = await step('identity provider', async () => watch(await startDevIdp({
      dataDir: join(opts.dataDir, 'idp'),
      directories: ldaps.map((l) => ({ region: l.region!, url: l.url, bindDn: l.bindDn, bindPassword: l.bindPassword })),
      preEnrol: preEnrolledOf(opts.regions.flatMap((r) => demoUsersOf(r, opts.regions))),
      clients: [{ clientId: 'bionic-edge', clientSecret: secrets.oidcClientSecret, redirectUris: [`${publicUrl}/auth/callback`], postLogoutRedirectUris: [`${publicUrl}/auth/logged-out`] }],
      log: (msg, fields) => process.stderr.write(`${msg} ${JSON.stringify(fields ?? {})}\n`),
    })), (s) => s.issuer);
    const gateway = await step('upstash gateway', async () => watch(await startUpstashGateway({ redisUrl: redis.url, token: secrets.gatewayToken })), (s) => s.url);
    // Data residency: each region's people's sessions and notifications live in a KV of that region (a redis-server and gateway each).
    const sessionKvs = await step(`regional KV ×${opts.regions.length} (redis-server per region)`, () => Promise.all(opts.regions.map(async (id) => {
      // Named per region, so the READY line's pids and the failure messages tell them apart.
      const r = watch({ ...(await startRedis({ dataDir: join(opts.dataDir, `redis-${id}`) })), name: `redis-${id}` });
      return { id, gateway: watch({ ...(await startUpstashGateway({ redisUrl: r.url, token: secrets.gatewayToken })), name: `upstash gateway ${id}` }) };
    })), (ks) => ks.map((k) => `${k.id} ${k.gateway.url}`).join(', '));
    const dbUrls = Object.fromEntries(DATABASES.map((d) => [d, pg.databaseUrl(d)])) as Record<(typeof DATABASES)[number], string>;
    const regionOf = (username: string) => demoCustomerRegion(username, opts.regions);
    const regionDbs = opts.regions.map((id) => ({ id, crm: pg.databaseUrl(`crm_${id}`), telemetry: pg.databaseUrl(`telemetry_${id}`) }));
    await step('databases + demo data', async () => {
      for (const d of DATABASES) await pg.ensureDatabase(d);
      return prepareDatabases(dbUrls, { seed: opts.seed });
    }, (r) => r);
    await step('regional databases', async () => {
      for (const r of regionDbs) { await pg.ensureDatabase(`crm_${r.id}`); await pg.ensureDatabase(`telemetry_${r.id}`); }
      const prepared = await prepareRegionDatabases(regionDbs, { seed: opts.seed, regionOf, onProgress: (m) => say(color(90, `  ${m}`)) });
      let linked = 0;
      for (const [i, l] of ldaps.entries()) linked += await linkDemoCustomers(regionDbs[i]!.crm, l);
      return linked ? `${prepared}; ${linked} customers linked to sign-in accounts` : prepared;
    }, (r) => r);
    // Data residency (shared/regions): the edge and the worker learn each region's bucket and KV (the
    // edge keeps sessions there, the worker pushes notifications the edge reads), the worker also its databases.
    const regionEnv: Record<string, string> = { REGIONS: opts.regions.join(',') };
    const regionDbEnv: Record<string, string> = {};
    for (const k of sessionKvs) {
      regionEnv[regionVariable(k.id, 'UPSTASH_REDIS_REST_URL')] = k.gateway.url;
      regionEnv[regionVariable(k.id, 'UPSTASH_REDIS_REST_TOKEN')] = secrets.gatewayToken;
    }
    for (const r of regionDbs) {
      regionEnv[regionVariable(r.id, 'REPORTS_BUCKET')] = bucketOf(r.id);
      regionDbEnv[regionVariable(r.id, 'CRM_DATABASE_URL')] = r.crm;
      regionDbEnv[regionVariable(r.id, 'TELEMETRY_DATABASE_URL')] = r.telemetry;
    }

    const common = {
      BIONIC_ENV: 'development', LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      UPSTASH_REDIS_REST_URL: gateway.url, UPSTASH_REDIS_REST_TOKEN: secrets.gatewayToken,
      S3_ENDPOINT: s3.url, S3_REGION: 'us-east-1', S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER',
      S3_BUCKET_REPORTS: 'reports', S3_FORCE_PATH_STYLE: 'true',
      OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: 'bionic-worker-api',
      TELEMETRY_DEVICE_KEYS: secrets.telemetryDeviceKeys,
      ...regionEnv,
    };
    // Worker and edge start side by side: the edge only needs the worker's URL, known up front.
    const edgeEnv = {
      ...common, EDGE_HOST: '127.0.0.1', EDGE_PORT: String(edgePort), WORKER_URL: `http://127.0.0.1:${workerPort}`, PUBLIC_URL: publicUrl,
      OIDC_CLIENT_ID: 'bionic-edge', OIDC_CLIENT_SECRET: secrets.oidcClientSecret, SESSION_KEYS: secrets.sessionKeys,
    };
    const [worker, edge] = await Promise.all([
      step('worker', async () => watch(await spawnApp('worker', process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
        ...common, WORKER_HOST: '127.0.0.1', WORKER_PORT: String(workerPort),
        CRM_DATABASE_URL: dbUrls.crm, TELEMETRY_DATABASE_URL: dbUrls.telemetry, PLATFORM_DATABASE_URL: dbUrls.platform, ...regionDbEnv,
        CHDB_PATH: join(opts.dataDir, 'chdb'), ETL_RUN_ON_START: 'true', ANALYTICS_PSEUDONYM_KEY: secrets.analyticsPseudonymKey,
      })), (s) => s.url),
      step(`edge (${opts.edgeRuntime})`, async () => watch(opts.edgeRuntime === 'deno'
        ? await spawnApp('edge', join(ROOT, 'node_modules/.bin/deno'), ['run', '--allow-net', '--allow-env', '--allow-read', '--allow-sys', 'edge/main.deno.ts'], edgeEnv)
        : await spawnApp('edge', process.execPath, ['--import', 'tsx', 'edge/main.node.ts'], edgeEnv)), (s) => s.url),
    ]);

    say('');
    say(color(1, 'BionicPRO is up:'));
    say(`  edge      ${edge.url}          (ready: ${edge.url}/ready, metrics: ${edge.url}/metrics, tRPC: ${edge.url}/trpc)`);
    say(`  worker    ${worker.url}          (ready: ${worker.url}/ready, metrics: ${worker.url}/metrics)`);
    say(`  kv        ${gateway.url}   (Upstash REST; token in ${join(opts.dataDir, 'secrets.json')})`);
    say(`  s3        ${s3.url}   (buckets: reports, per region ${opts.regions.map(bucketOf).join(', ')})`);
    say(`  sign-in   ${edge.url}/auth/login   (identity provider ${idp.issuer})`);
    for (const l of ldaps) say(`            region ${l.region}: LDAP ${l.url}, users ${demoUsersOf(l.region!, opts.regions).filter((u) => !u.otpExempt).map((u) => u.uid).join(' ')}`);
    say(`            password ${DEMO_PASSWORD}`);
    say(`            one-time code: node --import tsx infra/idp/totp-cli.ts user1 --data-dir ${join(opts.dataDir, 'idp')}`);
    say(`  postgres  ${pg.url.replace(/:[^:@/]+@/, ':***@').replace(/\/postgres$/, '')}/{crm,telemetry,platform}, per region {crm,telemetry}_{${opts.regions.join(',')}}`);
    say('Press Ctrl-C to stop.');
    // Connection details for tools and tests (with secrets: owner-only file, never printed).
    const stackFile = join(opts.dataDir, 'stack.json');
    const regions = Object.fromEntries(regionDbs.map((r, i) => [r.id, { crm: r.crm, telemetry: r.telemetry, reportsBucket: bucketOf(r.id), ldap: ldaps[i]!.url }]));
    // The CLI (`bionic etl run`) must pseudonymise with the worker's key.
    writeFileSync(stackFile, JSON.stringify({ ...common, ...regionDbEnv, ANALYTICS_PSEUDONYM_KEY: secrets.analyticsPseudonymKey, ...dbUrls, regions, edge: edge.url, worker: worker.url, idpDataDir: join(opts.dataDir, 'idp') }, null, 2), { mode: 0o600 });
    // One machine-readable line for scripts and tests.
    say('READY ' + JSON.stringify({
      edge: edge.url, worker: worker.url, gateway: gateway.url, s3: s3.url, idp: idp.issuer,
      ldap: Object.fromEntries(ldaps.map((l) => [l.region!, l.url])), regions: opts.regions, stackFile,
      pids: Object.fromEntries(started.map((s) => [s.name, s.pid ?? null])),
    }));
  } catch (err) {
    loud(err instanceof Error ? err.message : String(err));
    await stopAll();
    process.exit(1);
  }
}

function appendLog(file: string, msg: string) {
  try { writeFileSync(file, msg.endsWith('\n') ? msg : msg + '\n', { flag: 'a' }); } catch { /* log dir gone during reset */ }
}

main().catch((err) => {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}\n`);
    process.exit(2);
  }
  loud(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exit(1);
});
