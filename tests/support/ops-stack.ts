/**
 * What the operations tests (tests/e2e/ops-*.test.ts) run against: real PostgreSQL (crm,
 * telemetry, platform), redis-server behind the Upstash-REST gateway, s3rver — each restartable on
 * its port, so a test can take one away and bring it back — plus the environment a worker and an
 * edge need, and a spawner for running them as real child processes with their log lines kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../infra/dev/free-port.ts';
import { startPostgres, type PostgresService } from '../../infra/dev/services/postgres.ts';
import { startRedis } from '../../infra/dev/services/redis.ts';
import { startS3 } from '../../infra/dev/services/s3.ts';
import type { RunningService } from '../../infra/dev/services/types.ts';
import { startUpstashGateway } from '../../infra/gateway/upstash-gateway.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
type Restartable = 'postgres' | 'redis' | 's3';

export interface OpsStack {
  dir: string;
  pg: PostgresService;
  /** Variables both hosts share (KV, object store). */
  common: Record<string, string>;
  workerEnv(port: number, extra?: Record<string, string>): Record<string, string>;
  edgeEnv(port: number, workerUrl: string, extra?: Record<string, string>): Record<string, string>;
  /** Stops a service (the dependency is gone), resolving once its process exited; PostgreSQL stops immediately, as on a crash. */
  down(name: Restartable): Promise<void>;
  /** Starts it again on the same port and data directory. */
  up(name: Restartable): Promise<void>;
  stop(): Promise<void>;
}

export async function startOpsStack(name: string): Promise<OpsStack> {
  const dir = await mkdtemp(join(tmpdir(), `bionic-${name}-`));
  const gatewayToken = randomBytes(24).toString('base64url');
  const running = new Map<Restartable | 'gateway', RunningService>();
  const ports = { redis: await freePort(), s3: await freePort() };
  const starters: Record<Restartable, () => Promise<RunningService>> = {
    postgres: () => startPostgres({ dataDir: join(dir, 'pg'), port: pgPort }),
    redis: () => startRedis({ dataDir: join(dir, 'redis'), port: ports.redis }),
    s3: () => startS3({ dataDir: join(dir, 's3'), port: ports.s3, buckets: ['reports'] }),
  };
  let pgPort: number | undefined;
  const stop = async () => {
    for (const s of [...running.values()].reverse()) await s.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const pg = (await startPostgres({ dataDir: join(dir, 'pg') }));
    pgPort = pg.port;
    running.set('postgres', pg);
    const [redis, s3] = await Promise.all([starters.redis(), starters.s3()]);
    running.set('redis', redis);
    running.set('s3', s3);
    const gateway = await startUpstashGateway({ redisUrl: redis.url, token: gatewayToken });
    running.set('gateway', gateway);
    for (const d of ['crm', 'telemetry', 'platform']) await pg.ensureDatabase(d);
    const common = {
      BIONIC_ENV: 'development', LOG_LEVEL: 'info',
      UPSTASH_REDIS_REST_URL: gateway.url, UPSTASH_REDIS_REST_TOKEN: gatewayToken,
      S3_ENDPOINT: s3.url, S3_REGION: 'us-east-1', S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER',
      S3_BUCKET_REPORTS: 'reports', S3_FORCE_PATH_STYLE: 'true',
    };
    return {
      dir, pg, common,
      workerEnv: (port, extra = {}) => ({
        ...common, WORKER_HOST: '127.0.0.1', WORKER_PORT: String(port),
        CRM_DATABASE_URL: pg.databaseUrl('crm'), TELEMETRY_DATABASE_URL: pg.databaseUrl('telemetry'), PLATFORM_DATABASE_URL: pg.databaseUrl('platform'),
        CHDB_PATH: join(dir, `chdb-${port}`), ETL_ENABLED: 'false', ...extra,
      }),
      edgeEnv: (port, workerUrl, extra = {}) => ({ ...common, EDGE_HOST: '127.0.0.1', EDGE_PORT: String(port), WORKER_URL: workerUrl, ...extra }),
      async down(n) {
        const s = running.get(n);
        running.delete(n);
        if (n === 'postgres' && s?.pid) {
          // Immediate shutdown (as on a crash): a fast one waits minutes for CDC's logical walsender
          // to be confirmed past the shutdown checkpoint. The restart then runs crash recovery.
          process.kill(s.pid, 'SIGQUIT');
          await s.exited;
          return;
        }
        await s?.stop();
      },
      async up(n) {
        running.set(n, await starters[n]());
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface AppProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Every line it wrote (stdout and stderr). */
  lines: string[];
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** Resolves with the first line matching `re` (already written or still to come). */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
}

/** Spawns `node --import tsx <script>` and resolves once it logs `"<name> listening"`. */
export function spawnApp(name: 'worker' | 'edge', script: string, env: Record<string, string>, startTimeoutMs = 120_000): Promise<AppProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<{ re: RegExp; done: (l: string) => void }>();
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const onLine = (l: string) => {
    lines.push(l);
    for (const w of waiters) if (w.re.test(l)) { waiters.delete(w); w.done(l); }
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) onLine(buf.slice(0, i));
    });
  }
  const line = (re: RegExp, timeoutMs = 60_000) => new Promise<string>((res, rej) => {
    const found = lines.find((l) => re.test(l));
    if (found) return res(found);
    const timer = setTimeout(() => { waiters.delete(w); rej(new Error(`${name}: no line ${re} in ${timeoutMs} ms; last lines:\n${lines.slice(-15).join('\n')}`)); }, timeoutMs);
    const w = { re, done: (l: string) => { clearTimeout(timer); res(l); } };
    waiters.add(w);
    void exited.then(() => { if (waiters.delete(w)) { clearTimeout(timer); rej(new Error(`${name} exited before ${re}:\n${lines.slice(-15).join('\n')}`)); } });
  });
  return line(new RegExp(`"${name} listening"`), startTimeoutMs).then((l) => ({
    url: (JSON.parse(l) as { url: string }).url, pid: child.pid!, child, lines, exited, line,
  }), (err) => { child.kill('SIGKILL'); throw err; });
}
