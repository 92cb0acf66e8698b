/**
 * The CDC command line against real services: `start` in the foreground (a child process), `status`
 * while it runs (slot from PostgreSQL; chDB is held by `start`, which it says), `resync --wait`, a
 * clean stop on SIGTERM, `status` with table states, and `drop-slot`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffReplica, openOlap, startCdcDatabases, type CdcDatabases } from '../support/cdc-stack.ts';
import { seedCrm } from '../support/cdc-workload.ts';

const ROOT = join(import.meta.dirname, '../..');
let db: CdcDatabases;
let env: NodeJS.ProcessEnv;
const children = new Set<ChildProcess>();

function cli(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/cdc/cli.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (err += String(d)));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    child.once('exit', (code) => { children.delete(child); resolve({ code, out, err }); }));
  return { child, done };
}

beforeAll(async () => {
  db = await startCdcDatabases('cdc-cli');
  await seedCrm(db.crm, { customers: 30, orders: 40 });
  env = {
    ...process.env, CRM_DATABASE_URL: db.crmUrl, PLATFORM_DATABASE_URL: db.platformUrl, CHDB_PATH: db.chdbPath,
    CDC_HEARTBEAT_MS: '100', CDC_ACK_INTERVAL_MS: '50', CDC_TABLES: 'customers,orders,prosthesis_models', LOG_LEVEL: 'info',
  };
}, 180_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await db?.stop();
}, 60_000);

describe('cdc CLI', () => {
  it('starts, reports status, resyncs a table, stops cleanly and drops the slot', async () => {
    const help = await cli(['--help']).done;
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/start .*\n.*\n\s+status.*\n[\s\S]*resync <table>[\s\S]*drop-slot/);
    expect((await cli(['frobnicate']).done).code).toBe(2);

    const start = cli(['start']);
    // Wait for the three initial loads, read from the JSON log lines.
    const loaded = new Set<string>();
    await new Promise<void>((resolve, reject) => {
      void start.done.then((r) => reject(new Error(`start exited early (${r.code}):\n${r.err}\n${r.out}`)));
      createInterface({ input: start.child.stdout! }).on('line', (line) => {
        const rec = JSON.parse(line) as { msg: string; table?: string };
        if (rec.msg === 'cdc: snapshot loaded' && rec.table) loaded.add(rec.table);
        if (loaded.size === 3) resolve();
      });
    });

    const running = await cli(['status']).done;
    expect(running.code).toBe(0);
    expect(running.out).toMatch(/slot bionic_cdc: active \(pid \d+\)/);
    expect(running.out).toMatch(/publication bionic_cdc: customers, orders, prosthesis_models/);
    expect(running.out).toMatch(/chDB is open in the running worker/);

    await db.crm`UPDATE orders SET status = 'APPROVED' WHERE id <= 5`;
    const resync = await cli(['resync', 'orders', '--wait']).done;
    expect(resync.code).toBe(0);
    expect(resync.out).toMatch(/resync of orders requested at [0-9A-F]+\/[0-9A-F]+[\s\S]*taken/);
    expect((await cli(['resync', 'audit_log']).done).err).toMatch(/audit_log is not captured/);

    start.child.kill('SIGTERM');
    expect((await start.done).code).toBe(0);

    const stopped = await cli(['status', '--json']).done;
    const s = JSON.parse(stopped.out) as { slot: { active: boolean }; tables: { table: string; status: string }[] };
    expect(s.slot.active).toBe(false);
    expect(s.tables.map((t) => t.table).sort()).toEqual(['customers', 'orders', 'prosthesis_models']);
    const olap = await openOlap(db.chdbPath);
    try {
      expect((await diffReplica(db.crm, olap, 'orders')).counts).toEqual({ missing: 0, extra: 0, different: 0 });
    } finally {
      await olap.close();
    }

    const drop = await cli(['drop-slot']).done;
    expect(drop.out).toMatch(/dropped replication slot bionic_cdc[\s\S]*dropped publication bionic_cdc/);
    expect((await db.crm`SELECT count(*)::int AS n FROM pg_replication_slots`)[0]!.n).toBe(0);
  }, 240_000);
});
