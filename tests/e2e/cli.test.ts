/**
 * The `bionic` command as a user runs it (`node bin/bionic.mjs`, no build step): help on every
 * command, usage errors (exit 2), `migrate` against a real embedded PostgreSQL (idempotent, also
 * when two run at once), `saga ls|show` on sagas the real orchestrator ran, and one clear line
 * with exit 1 when the database cannot be reached.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/dev/free-port.ts';
import { MIGRATION_DIRS, readMigrations } from '../../workers/db/migrate.ts';
import { eventually, startSagaStack, type SagaStack } from '../support/saga-stack.ts';

const ROOT = join(import.meta.dirname, '../..');
let emptyDataDir: string;

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs the CLI with only the variables given (plus PATH): nothing leaks in from the test's own environment. */
function bionic(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin/bionic.mjs'), ...args], {
      cwd: ROOT, timeout: 120_000,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NO_COLOR: '1', BIONIC_DATA_DIR: emptyDataDir, ...env },
    }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
  });
}

const STACK_TRACE = /^\s+at /m;

beforeAll(async () => {
  emptyDataDir = await mkdtemp(join(tmpdir(), 'bionic-cli-data-'));
});
afterAll(async () => {
  if (emptyDataDir) await rm(emptyDataDir, { recursive: true, force: true });
});

describe.concurrent('help and usage', () => {
  const commands = [
    [], ['start'], ['reset'], ['migrate'], ['seed'], ['etl'], ['etl', 'backfill'], ['cdc'], ['cdc', 'status'],
    ['saga'], ['saga', 'ls'], ['saga', 'show'],
  ];
  it.each(commands)('bionic %s --help exits 0 and prints usage', async (...cmd) => {
    const r = await bionic([...cmd, '--help']);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage:/);
  }, 60_000);

  it('bionic help saga is bionic saga --help; --version prints the package version', async () => {
    const [help, version] = await Promise.all([bionic(['help', 'saga']), bionic(['--version'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: bionic saga');
    expect(help.stdout).toMatch(/ls .*list sagas/);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe((await import('../../package.json', { with: { type: 'json' } })).default.version);
  }, 60_000);

  it('the root help lists every command and documents the exit codes', async () => {
    const r = await bionic(['--help']);
    for (const c of ['start', 'reset', 'migrate', 'seed', 'etl', 'cdc', 'saga']) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    expect(r.stdout).toMatch(/Exit codes[\s\S]*0 +done[\s\S]*1 +failed[\s\S]*2 +usage error/);
  }, 60_000);

  it('without a command it prints usage and exits 2', async () => {
    const r = await bionic([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('Usage: bionic');
  }, 60_000);

  const mistakes: [string[], RegExp][] = [
    [['bogus'], /unknown command 'bogus'/],
    [['saga', 'bogus'], /unknown command 'bogus'/],
    [['saga', 'ls', '--bogus'], /unknown option '--bogus'/],
    [['saga', 'ls', 'extra'], /unexpected argument "extra"/],
    [['saga', 'ls', '--state', 'LOST'], /--state must be one of DRAFT, APPROVED/],
    [['saga', 'ls', '--limit', '0'], /--limit must be an integer from 1 to 1000/],
    [['saga', 'show'], /missing required argument 'id'/],
    [['migrate', '--bogus'], /unknown option '--bogus'/],
    [['migrate', 'nope'], /unknown migration target "nope"/],
    [['reset', '--bogus'], /unknown option '--bogus'/],
    [['etl', 'bogus'], /unknown command "bogus"/],
    [['etl', 'runs', '--bogus'], /Unknown option '--bogus'/],
    [['cdc', 'status', '--bogus'], /Unknown option '--bogus'/],
    [['seed', '--bogus'], /Unknown option '--bogus'/],
    [['start', '--bogus'], /Unknown option '--bogus'/],
  ];
  it.each(mistakes)('bionic %j exits 2 with a clear message', async (args, message) => {
    const r = await bionic(args);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    expect(r.code).toBe(2);
  }, 60_000);

  it('a missing variable is a usage error naming it', async () => {
    const r = await bionic(['migrate', 'platform']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('PLATFORM_DATABASE_URL: is required but not set');
  }, 60_000);
});

describe('against PostgreSQL', () => {
  let stack: SagaStack;
  const finishedOrders: string[] = [];
  let draftOrder: string;
  const dbUrl = (db: string) => { const u = new URL(stack.crmUrl); u.pathname = `/${db}`; return u.toString(); };
  const urls = (prefix: string) => ({
    CRM_DATABASE_URL: dbUrl(`${prefix}_crm`), TELEMETRY_DATABASE_URL: dbUrl(`${prefix}_telemetry`), PLATFORM_DATABASE_URL: dbUrl(`${prefix}_platform`),
  });

  beforeAll(async () => {
    stack = await startSagaStack('cli');
    for (const db of ['a_crm', 'a_telemetry', 'a_platform', 'b_crm', 'b_telemetry', 'b_platform', 'c_crm', 'c_telemetry', 'c_platform', 'c_crm_ru', 'c_telemetry_ru']) {
      await stack.crm.unsafe(`CREATE DATABASE ${db}`);
    }
    const ids = await stack.customers([{ username: 'alice', balance: '5000.00' }]);
    const order = { customerId: ids.alice!, modelId: stack.model.id };
    // One saga the whole way to FINISHED ...
    let finished!: () => void;
    const done = new Promise<void>((r) => { finished = r; });
    const rt = await stack.runtime({ onFinished: (n) => { if (n > 0) finished(); } });
    try {
      finishedOrders.push((await rt.orders.create({ ...order, idempotencyKey: 'cli-1' }, { username: 'operator1' })).order.id);
      await done;
    } finally {
      await rt.stop();
    }
    // ... and one left in DRAFT: nobody answers its APPROVE_ORDER.
    const orchestrator = await stack.runtime({ components: ['orchestrator'] });
    try {
      draftOrder = (await orchestrator.orders.create({ ...order, idempotencyKey: 'cli-2' }, { username: 'operator1' })).order.id;
      await eventually(async () => (await stack.platform`SELECT 1 FROM saga_instances WHERE id = ${`order-${draftOrder}`}`).length > 0, 'the DRAFT saga');
    } finally {
      await orchestrator.stop();
    }
  }, 180_000);
  afterAll(async () => { await stack?.stop(); }, 60_000);

  async function appliedNames(url: string): Promise<string[]> {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      return (await sql<{ name: string }[]>`SELECT name FROM schema_migrations ORDER BY name`).map((r) => r.name);
    } finally {
      await sql.end();
    }
  }
  const files = async (dir: string) => (await readMigrations(dir)).map((f) => f.name);

  it('migrate applies every migration once; a second run is a no-op', async () => {
    const env = urls('a');
    const first = await bionic(['migrate'], env);
    expect(first.stderr).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    for (const t of ['crm', 'telemetry', 'platform'] as const) {
      const names = await files(MIGRATION_DIRS[t]);
      expect(first.stdout).toMatch(new RegExp(`✔ ${t} +${names.length} applied: ${names[0]}`));
      expect(await appliedNames(env[`${t.toUpperCase() as 'CRM'}_DATABASE_URL`])).toEqual(names);
    }
    expect(first.stderr).toContain('applying infra/migrations/crm/001_init.sql');

    const again = await bionic(['migrate', '--json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ applied: [] });
    const text = await bionic(['migrate', 'platform'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/✔ platform +up to date\n0 migrations applied/);
    expect(await appliedNames(env.PLATFORM_DATABASE_URL)).toEqual(await files(MIGRATION_DIRS.platform));
  }, 120_000);

  it('with REGIONS, migrate also covers every region\'s CRM and telemetry databases', async () => {
    const env = { ...urls('c'), REGIONS: 'ru', REGION_RU_CRM_DATABASE_URL: dbUrl('c_crm_ru'), REGION_RU_TELEMETRY_DATABASE_URL: dbUrl('c_telemetry_ru') };
    const r = await bionic(['migrate'], env);
    expect(r.code, r.stderr).toBe(0);
    for (const [t, db] of [['crm', 'c_crm_ru'], ['telemetry', 'c_telemetry_ru']] as const) {
      const names = await files(MIGRATION_DIRS[t]);
      expect(r.stdout).toMatch(new RegExp(`✔ ${t}_ru +${names.length} applied: ${names[0]}`));
      expect(await appliedNames(dbUrl(db))).toEqual(names);
    }
    expect(r.stdout).not.toMatch(/platform_ru/);
    const bad = await bionic(['migrate'], { ...urls('c'), REGIONS: 'ru,eu', REGION_RU_CRM_DATABASE_URL: dbUrl('c_crm_ru'), REGION_RU_TELEMETRY_DATABASE_URL: dbUrl('c_telemetry_ru') });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/REGION_EU_CRM_DATABASE_URL/);
  }, 120_000);

  it('two migrate runs at once take turns: each migration is applied by exactly one', async () => {
    const env = urls('b');
    const runs = await Promise.all([bionic(['migrate', '--json'], env), bionic(['migrate', '--json'], env)]);
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const applied = runs.flatMap((r) => (JSON.parse(r.stdout) as { applied: { target: string; name: string }[] }).applied.map((a) => `${a.target}/${a.name}`));
    const expected = (await Promise.all((['crm', 'telemetry', 'platform'] as const).map(async (t) => (await files(MIGRATION_DIRS[t])).map((n) => `${t}/${n}`)))).flat();
    expect(applied.sort()).toEqual(expected.sort());
  }, 120_000);

  it('saga ls lists the sagas with their states and a count per state', async () => {
    const env = { PLATFORM_DATABASE_URL: stack.platformUrl };
    const all = await bionic(['saga', 'ls'], env);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(new RegExp(`^order-${finishedOrders[0]} +FINISHED +4 `, 'm'));
    expect(all.stdout).toMatch(new RegExp(`^order-${draftOrder} +DRAFT +1 +order-${draftOrder}/v1/APPROVE_ORDER`, 'm'));
    expect(all.stdout).toContain('2 sagas in all: DRAFT 1, FINISHED 1');

    const drafts = await bionic(['saga', 'ls', '--state', 'draft', '--json'], env);
    expect(drafts.code).toBe(0);
    const parsed = JSON.parse(drafts.stdout) as { sagas: { id: string; state: string; overdue: boolean }[]; counts: Record<string, number> };
    expect(parsed.sagas).toEqual([expect.objectContaining({ id: `order-${draftOrder}`, state: 'DRAFT', overdue: false })]);
    expect(parsed.counts).toEqual({ DRAFT: 1, FINISHED: 1 });
    const stuck = await bionic(['saga', 'ls', '--stuck'], env);
    expect(stuck.stdout).toContain('No saga matches.');
  }, 60_000);

  it('saga show prints the saga and its history, by saga id or order id', async () => {
    const env = { PLATFORM_DATABASE_URL: stack.platformUrl };
    const r = await bionic(['saga', 'show', `order-${finishedOrders[0]}`], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^saga order-${finishedOrders[0]} +FINISHED +version 4`, 'm'));
    const steps = ['REGISTER +— → DRAFT +applied +sent APPROVE_ORDER → profile.commands', 'ORDER_APPROVED +DRAFT → APPROVED', 'DEAL_UPDATED +APPROVED → NOTIFICATION', 'NOTIFIED +NOTIFICATION → FINISHED'];
    expect(r.stdout).toMatch(new RegExp(steps.join('[\\s\\S]*')));
    const byOrder = await bionic(['saga', 'show', finishedOrders[0]!, '--json'], env);
    expect(byOrder.code).toBe(0);
    const view = JSON.parse(byOrder.stdout) as { id: string; state: string; history: { eventType: string }[] };
    expect(view).toMatchObject({ id: `order-${finishedOrders[0]}`, state: 'FINISHED' });
    expect(view.history.map((h) => h.eventType)).toEqual(['REGISTER', 'ORDER_APPROVED', 'DEAL_UPDATED', 'NOTIFIED']);
  }, 60_000);

  it('saga show of an unknown saga exits 4', async () => {
    const r = await bionic(['saga', 'show', 'order-999999'], { PLATFORM_DATABASE_URL: stack.platformUrl });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('error: no saga order-999999');
  }, 60_000);

  it('an unreachable database is one line and exit 1, with the password hidden', async () => {
    const dead = `postgres://bionic:s3cret-pw@127.0.0.1:${await freePort()}`;
    const env = { CRM_DATABASE_URL: `${dead}/crm`, TELEMETRY_DATABASE_URL: `${dead}/telemetry`, PLATFORM_DATABASE_URL: `${dead}/platform` };
    const [migrate, ls] = await Promise.all([bionic(['migrate'], env), bionic(['saga', 'ls'], env)]);
    expect(migrate.stderr).toMatch(/^error: cannot reach the crm database at postgres:\/\/bionic:\*\*\*@127\.0\.0\.1:\d+\/crm: connection refused\n$/);
    expect(ls.stderr).toMatch(/^error: cannot reach the platform database at .*: connection refused\n$/);
    for (const r of [migrate, ls]) {
      expect(r.code).toBe(1);
      expect(r.stderr).not.toContain('s3cret-pw');
      expect(r.stderr).not.toMatch(STACK_TRACE);
    }
  }, 60_000);
});
