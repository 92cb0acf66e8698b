/**
 * The README's first command, for real: the launcher brings up PostgreSQL, redis-server + the
 * Upstash-REST gateway, s3rver, the worker (chDB) and the edge with demo data; /health is 200;
 * a stopped dependency turns it 503 and is named; Ctrl-C stops every child; a second start on
 * the same data directory keeps the data — and serves the edge under Deno.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBionicClient } from '../../router/client.ts';
import { launchStack, type LaunchedStack } from '../support/launcher.ts';
import { eventually } from '../support/saga-stack.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'bionic-launcher-'));
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const ROOT = join(import.meta.dirname, '../..');

/** Each region's CRM database (customers live there; the central CRM holds only the catalogue of models). */
const regionalCrms = (stackFile: string) =>
  Object.values((JSON.parse(readFileSync(stackFile, 'utf8')) as { regions: Record<string, { crm: string }> }).regions).map((r) => r.crm);

async function onEachRegion<T>(stackFile: string, q: (sql: postgres.Sql) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  for (const url of regionalCrms(stackFile)) {
    const sql = postgres(url, { max: 1 });
    try { out.push(...await q(sql)); } finally { await sql.end(); }
  }
  return out;
}

async function countCustomers(stackFile: string) {
  const counts = await onEachRegion(stackFile, (sql) => sql<{ n: string }[]>`SELECT count(*)::text AS n FROM customers`);
  return counts.reduce((n, r) => n + Number(r.n), 0);
}

/** Resolves when the launcher prints a line matching `re` (an event, not a sleep). */
function waitForLine(stack: LaunchedStack, re: RegExp, timeoutMs = 30_000): Promise<string> {
  const seen = stack.output.find((l) => re.test(l));
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no line matching ${re}:\n${stack.output.slice(-20).join('\n')}`)), timeoutMs);
    const check = (chunk: Buffer) => {
      const line = chunk.toString('utf8').split('\n').find((l) => re.test(l));
      if (line) { clearTimeout(timer); stack.child.stderr!.off('data', check); stack.child.stdout!.off('data', check); resolve(line); }
    };
    stack.child.stderr!.on('data', check);
    stack.child.stdout!.on('data', check);
  });
}

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('embedded stack on Node', () => {
  let stack: LaunchedStack;
  let customers = 0;
  beforeAll(async () => {
    stack = await launchStack(['--data-dir', dataDir, '--edge-port', '0', '--worker-port', '0']);
  });
  afterAll(async () => { await stack?.stop(); });

  it('edge /ready is 200 with every dependency ok; /health is liveness', async () => {
    expect((await fetch(`${stack.edge}/health`)).status).toBe(200);
    const res = await fetch(`${stack.edge}/ready`);
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(Object.keys(body.dependencies).sort()).toEqual(['kv', 'kv_eu', 'kv_ru', 'objectStore', 'worker']);
  });

  it('worker /ready checks the three databases, chDB, KV, the object store, the bus and each region\'s stores', async () => {
    const res = await fetch(`${stack.worker}/ready`);
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    const regional = ['ru', 'eu'].flatMap((id) => [`crm_${id}`, `kv_${id}`, `objectStore_${id}`, `telemetry_${id}`]);
    expect(Object.keys(body.dependencies).sort()).toEqual(['bus', 'crm', 'kv', 'objectStore', 'olap', 'platform', 'telemetry', ...regional].sort());
  });

  it('serves the typed router, forwarding worker procedures', async () => {
    const client = createBionicClient({ url: `${stack.edge}/trpc` });
    const [edge, worker] = await Promise.all([client.health.check.query(), client.worker.health.query()]);
    expect(edge).toMatchObject({ host: 'edge', status: 'ok' });
    expect(worker).toMatchObject({ host: 'worker', status: 'ok' });
    await expect(client.me.get.query()).rejects.toMatchObject({ data: { code: 'UNAUTHORIZED' } });
  });

  it('seeded the demo data on first start, linked to the demo sign-in accounts', async () => {
    customers = await countCustomers(stack.stackFile);
    expect(customers).toBeGreaterThan(0);
    const linked = await onEachRegion(stack.stackFile, (sql) =>
      sql<{ username: string; idp_subject: string }[]>`SELECT username, idp_subject FROM customers WHERE idp_subject IS NOT NULL ORDER BY username`);
    expect(linked.map((r) => r.username)).toEqual(expect.arrayContaining(['user1', 'user2', 'user3']));
    expect(new Set(linked.map((r) => r.idp_subject)).size).toBe(linked.length);
    // The central CRM has the shared catalogue only.
    const { crm } = JSON.parse(readFileSync(stack.stackFile, 'utf8')) as { crm: string };
    const sql = postgres(crm, { max: 1 });
    try {
      expect((await sql`SELECT 1 FROM customers`).length).toBe(0);
      expect((await sql`SELECT 1 FROM prosthesis_models`).length).toBeGreaterThan(0);
    } finally {
      await sql.end();
    }
  });

  it('computes the demo statistics at once instead of waiting for the first ETL tick', { timeout: 120_000 }, async () => {
    const { platform } = JSON.parse(readFileSync(stack.stackFile, 'utf8')) as { platform: string };
    const sql = postgres(platform, { max: 1 });
    try {
      // The runs happen in the worker, one job per region; their history rows are the observable outcome.
      const regions = Object.keys((JSON.parse(readFileSync(stack.stackFile, 'utf8')) as { regions: Record<string, unknown> }).regions);
      const ended = () => sql<{ job: string; triggered_by: string; status: string; rows_written: number }[]>`
        SELECT DISTINCT ON (job) job, triggered_by, status, rows_written FROM etl_runs WHERE status <> 'running' ORDER BY job, id`;
      await eventually(async () => (await ended()).length >= regions.length, 'the first ETL run of every region to end', 110_000, 200);
      const runs = await ended();
      expect(runs.map((r) => r.job).sort()).toEqual(regions.map((id) => `user_prosthesis_stats:${id}`).sort());
      for (const r of runs) {
        expect(r, r.job).toMatchObject({ triggered_by: 'start', status: 'succeeded' });
        expect(Number(r.rows_written), r.job).toBeGreaterThan(0);
      }
    } finally {
      await sql.end();
    }
  });

  it('refuses a reset while the stack runs', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'infra/dev/launcher.ts', '--reset', '--data-dir', dataDir], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/already running/);
  });

  it('reports a dead dependency loudly and /ready turns 503 naming it', async () => {
    const redisPid = stack.pids['redis'];
    expect(redisPid).toBeTypeOf('number');
    process.kill(redisPid!, 'SIGKILL');
    await waitForLine(stack, /redis stopped unexpectedly/);
    const res = await fetch(`${stack.edge}/ready`);
    const body = await res.json();
    expect(res.status).toBe(503);
    expect(body.dependencies.kv.ok).toBe(false);
    expect(body.dependencies.objectStore.ok).toBe(true);
  });

  it('Ctrl-C stops every child process', async () => {
    const pids = Object.values(stack.pids).filter((p): p is number => typeof p === 'number');
    expect(pids.length).toBeGreaterThanOrEqual(4);
    expect(await stack.stop()).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
  });

  describe('second start on the same data directory, edge on Deno', () => {
    let deno: LaunchedStack;
    beforeAll(async () => {
      deno = await launchStack(['--data-dir', dataDir, '--edge-port', '0', '--worker-port', '0', '--edge-runtime', 'deno']);
    });
    afterAll(async () => { await deno?.stop(); });

    it('the edge runs under Deno and /ready is 200', async () => {
      expect(deno.output.some((l) => l.includes('"edge listening"') && l.includes('"runtime":"deno"'))).toBe(true);
      const res = await fetch(`${deno.edge}/ready`);
      expect(res.status).toBe(200);
      const worker = await createBionicClient({ url: `${deno.edge}/trpc` }).worker.health.query();
      expect(worker.host).toBe('worker');
    });

    it('kept the data and did not seed again', async () => {
      expect(await countCustomers(deno.stackFile)).toBe(customers);
    });
  });
});

describe('launcher command line', () => {
  it('--help explains the options', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'infra/dev/launcher.ts', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--data-dir');
  });

  it('a bad option exits 2 with a message', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'infra/dev/launcher.ts', '--edge-port', 'abc'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--edge-port must be a port number');
  });
});
