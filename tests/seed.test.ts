/**
 * The synthetic data generator against embedded PostgreSQL: counts, determinism, referential
 * integrity, plausible distributions, refusal to overwrite, the demo helper and the CLI.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresService } from '../infra/dev/services/postgres.ts';
import { MIGRATION_DIRS, migratePostgres } from '../workers/db/migrate.ts';
import { SeedError, generate, seedDemoIfEmpty, type GenerateResult } from '../workers/seed/generate.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const END = new Date('2026-03-02T15:30:00Z');
const DAYS = 4;
const START = Date.UTC(2026, 1, 27); // UTC midnight of the first generated day (crosses a month boundary)
const OPTS = { customers: 40, days: DAYS, eventsPerDay: 60, seed: 42, end: END };

let dir: string;
let pg: PostgresService;
const clients: postgres.Sql[] = [];

/** A migrated crm + telemetry pair of fresh databases. */
async function pair(name: string): Promise<{ crm: postgres.Sql; telemetry: postgres.Sql }> {
  const open = async (db: string, migrations: string) => {
    await pg.ensureDatabase(db);
    const sql = postgres(pg.databaseUrl(db), { max: 3, onnotice: () => {} });
    clients.push(sql);
    await migratePostgres(sql, migrations);
    return sql;
  };
  return { crm: await open(`${name}_crm`, MIGRATION_DIRS.crm), telemetry: await open(`${name}_telemetry`, MIGRATION_DIRS.telemetry) };
}

/** A digest of everything generated, for comparing data sets. */
async function fingerprint(p: { crm: postgres.Sql; telemetry: postgres.Sql }): Promise<string[]> {
  const md5 = async (sql: postgres.Sql, table: string, order: string) =>
    (await sql.unsafe(`SELECT md5(string_agg(t::text, '|' ORDER BY ${order})) AS h FROM ${table} t`))[0]!.h as string;
  return [
    await md5(p.crm, 'customers', 'id'), await md5(p.crm, 'customer_accounts', 'customer_id'),
    await md5(p.crm, 'prostheses', 'id'), await md5(p.crm, 'orders', 'id'),
    await md5(p.telemetry, 'telemetry_events', 'chip_id, ts, batch_id, seq'), await md5(p.telemetry, 'telemetry_batches', 'batch_id'),
  ];
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'seed-test-'));
  pg = await startPostgres({ dataDir: dir });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.end({ timeout: 5 })));
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('generate', () => {
  let a: { crm: postgres.Sql; telemetry: postgres.Sql };
  let result: GenerateResult;
  const progress: string[] = [];

  beforeAll(async () => {
    a = await pair('a');
    result = await generate({ ...a, ...OPTS, onProgress: (done, total, phase) => progress.push(`${phase} ${done}/${total}`) });
  }, 120_000);

  it('returns counts that match the tables and reports progress to the end', async () => {
    const [c] = await a.crm`SELECT (SELECT count(*)::int FROM customers) AS customers, (SELECT count(*)::int FROM prostheses) AS prostheses`;
    const [t] = await a.telemetry`SELECT count(*)::int AS events FROM telemetry_events`;
    expect(result).toEqual({ customers: 40, prostheses: c!.prostheses, events: t!.events });
    expect(result.events).toBeGreaterThan(40 * DAYS * 30);
    expect(progress).toContain('crm 1/1');
    expect(progress.at(-1)).toBe(`telemetry ${result.prostheses}/${result.prostheses}`);
  });

  it('names customers user1…userN with unique e-mails, each owning one or two prostheses', async () => {
    const users = await a.crm<{ username: string }[]>`SELECT username FROM customers ORDER BY id`;
    expect(users.map((u) => u.username)).toEqual(Array.from({ length: 40 }, (_, i) => `user${i + 1}`));
    const [emails] = await a.crm`SELECT count(DISTINCT lower(email))::int AS n FROM customers`;
    expect(emails!.n).toBe(40);
    const owned = await a.crm<{ n: number; customers: number }[]>`
      SELECT n, count(*)::int AS customers FROM (
        SELECT c.id, count(p.id)::int AS n FROM customers c LEFT JOIN prostheses p ON p.customer_id = c.id GROUP BY c.id) x
      GROUP BY n ORDER BY n`;
    expect(owned.map((o) => o.n)).toEqual([1, 2]);
    expect(result.prostheses).toBe(40 + owned.find((o) => o.n === 2)!.customers);
  });

  it('gives every prosthesis an owner, a model and a unique chip id, and an account to every customer', async () => {
    const [r] = await a.crm`SELECT
      (SELECT count(*)::int FROM prostheses p LEFT JOIN customers c ON c.id = p.customer_id WHERE c.id IS NULL) AS orphans,
      (SELECT count(*)::int FROM prostheses p LEFT JOIN prosthesis_models m ON m.id = p.model_id WHERE m.id IS NULL) AS modelless,
      (SELECT count(DISTINCT chip_id)::int FROM prostheses) AS chips,
      (SELECT count(*)::int FROM customer_accounts WHERE balance > 0) AS accounts,
      (SELECT count(*)::int FROM orders WHERE status = 'FINISHED') AS finished`;
    expect(r).toEqual({ orphans: 0, modelless: 0, chips: result.prostheses, accounts: 40, finished: result.prostheses });
    // The identity sequences were moved past the generated ids: a normal insert still works.
    const [c] = await a.crm`INSERT INTO customers (username, full_name, email) VALUES ('extra', 'E X', 'extra@example.com') RETURNING id`;
    expect(Number(c!.id)).toBe(41);
    await a.crm`DELETE FROM customers WHERE username = 'extra'`;
  });

  it('produces telemetry only for known chips, inside the period and after installation', async () => {
    const chips = await a.crm<{ chip_id: string; installed_at: Date }[]>`SELECT chip_id, installed_at FROM prostheses`;
    const seen = await a.telemetry<{ chip_id: string; first: Date; last: Date }[]>`
      SELECT chip_id, min(ts) AS first, max(ts) AS last FROM telemetry_events GROUP BY chip_id`;
    const installed = new Map(chips.map((c) => [c.chip_id, c.installed_at.getTime()]));
    expect(seen.length).toBeGreaterThan(chips.length * 0.8);
    for (const s of seen) {
      expect(installed.has(s.chip_id)).toBe(true);
      expect(s.first.getTime()).toBeGreaterThanOrEqual(Math.max(installed.get(s.chip_id)!, START - 86_400_000));
      expect(s.last.getTime()).toBeLessThanOrEqual(END.getTime());
    }
    const [b] = await a.telemetry`SELECT
      (SELECT coalesce(sum(events), 0)::int FROM telemetry_batches) AS batched,
      (SELECT count(*)::int FROM telemetry_events e LEFT JOIN telemetry_batches b USING (batch_id) WHERE b.batch_id IS NULL) AS unbatched`;
    expect(b).toEqual({ batched: result.events, unbatched: 0 });
  });

  it('has plausible values: battery, error rates, latency, grip force and a daily rhythm', async () => {
    const [v] = await a.telemetry`SELECT
      min(battery_pct) AS bmin, max(battery_pct) AS bmax,
      (avg((kind = 'error')::int) FILTER (WHERE kind <> 'status'))::float8 AS error_rate,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY response_ms) FILTER (WHERE kind = 'action') AS p50,
      percentile_cont(0.95) WITHIN GROUP (ORDER BY response_ms) FILTER (WHERE kind = 'action') AS p95,
      count(DISTINCT error_code)::int AS codes,
      count(*) FILTER (WHERE kind = 'status' AND (response_ms IS NOT NULL OR grip_force_n IS NOT NULL))::int AS bad_status
      FROM telemetry_events`;
    expect(v!.bmin).toBeGreaterThanOrEqual(0);
    expect(v!.bmax).toBeLessThanOrEqual(100);
    expect(v!.bmax).toBeGreaterThanOrEqual(90);
    expect(v!.error_rate).toBeGreaterThan(0.01);
    expect(v!.error_rate).toBeLessThan(0.12);
    expect(v!.p50).toBeGreaterThan(55);
    expect(v!.p50).toBeLessThan(110);
    expect(v!.p95).toBeGreaterThan(v!.p50 * 1.8);
    expect(v!.codes).toBeGreaterThanOrEqual(4);
    expect(v!.bad_status).toBe(0);
    const perChip = await a.telemetry<{ rate: number }[]>`
      SELECT avg((kind = 'error')::int)::float8 AS rate FROM telemetry_events WHERE kind <> 'status' GROUP BY chip_id HAVING count(*) > 100`;
    const rates = perChip.map((r) => r.rate).sort((x, y) => x - y);
    const median = rates[Math.floor(rates.length / 2)]!;
    expect(median).toBeGreaterThan(0.005);
    expect(rates.at(-1)!).toBeGreaterThan(median * 2); // some chips are clearly worse than the typical one
    // Grip force: only devices with a grip report it; legs never do.
    const kinds = new Map((await a.crm<{ chip_id: string; kind: string }[]>`
      SELECT p.chip_id, m.kind FROM prostheses p JOIN prosthesis_models m ON m.id = p.model_id`).map((r) => [r.chip_id, r.kind]));
    const grips = await a.telemetry<{ chip_id: string; with_grip: number; avg: number | null }[]>`
      SELECT chip_id, count(grip_force_n)::int AS with_grip, avg(grip_force_n) FILTER (WHERE action = 'grip') AS avg
      FROM telemetry_events WHERE kind = 'action' GROUP BY chip_id`;
    for (const g of grips) {
      if (kinds.get(g.chip_id) === 'leg') expect(g.with_grip).toBe(0);
      else {
        expect(g.with_grip).toBeGreaterThan(0);
        expect(g.avg).toBeGreaterThan(15);
        expect(g.avg).toBeLessThan(120);
      }
    }
    // Region eu is UTC+1: busy mornings and evenings, quiet small hours.
    const [h] = await a.telemetry`SELECT
      count(*) FILTER (WHERE extract(hour FROM ts AT TIME ZONE 'UTC') BETWEEN 6 AND 9)::int AS morning,
      count(*) FILTER (WHERE extract(hour FROM ts AT TIME ZONE 'UTC') BETWEEN 16 AND 19)::int AS evening,
      count(*) FILTER (WHERE extract(hour FROM ts AT TIME ZONE 'UTC') BETWEEN 11 AND 14)::int AS midday,
      count(*) FILTER (WHERE extract(hour FROM ts AT TIME ZONE 'UTC') BETWEEN 0 AND 3)::int AS night
      FROM telemetry_events`;
    expect(h!.morning).toBeGreaterThan(h!.midday * 1.5);
    expect(h!.evening).toBeGreaterThan(h!.midday * 1.5);
    expect(h!.night).toBeLessThan(h!.midday / 5);
  });

  it('loads the months it covers into their own partitions', async () => {
    const parts = await a.telemetry<{ p: string }[]>`SELECT DISTINCT tableoid::regclass::text AS p FROM telemetry_events ORDER BY 1`;
    expect(parts.map((p) => p.p)).toEqual(['telemetry_events_y2026m02', 'telemetry_events_y2026m03']);
  });

  it('is deterministic: the same seed gives the same data, another seed different data', async () => {
    const b = await pair('b');
    expect(await generate({ ...b, ...OPTS })).toEqual(result);
    const fa = await fingerprint(a);
    expect(await fingerprint(b)).toEqual(fa);
    const other = await generate({ ...b, ...OPTS, seed: 43, reset: true });
    expect(other.customers).toBe(40);
    const fb = await fingerprint(b);
    fb.forEach((h, i) => expect(h).not.toBe(fa[i]));
  }, 120_000);

  it('refuses to add to existing data unless asked to reset', async () => {
    const err = await generate({ ...a, ...OPTS }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SeedError);
    expect(err).toMatchObject({ code: 'NOT_EMPTY' });
    expect(await seedDemoIfEmpty({ ...a })).toBeNull();
    const [c] = await a.crm`SELECT count(*)::int AS n FROM customers`;
    expect(c!.n).toBe(40);
  });

  it('rejects invalid options before touching the databases', async () => {
    for (const bad of [{ customers: 0 }, { days: 1.5 }, { eventsPerDay: -1 }, { regions: [] }, { regions: ['EU West'] }, { end: new Date('nope') }]) {
      await expect(generate({ ...a, ...OPTS, ...bad })).rejects.toMatchObject({ name: 'SeedError', code: 'INVALID_OPTIONS' });
    }
  });
});

describe('seedDemoIfEmpty', () => {
  it('seeds the small demo set into empty databases once', async () => {
    const d = await pair('demo');
    const first = await seedDemoIfEmpty({ ...d, end: END, eventsPerDay: 20 });
    expect(first).toMatchObject({ customers: 20 });
    expect(first!.events).toBeGreaterThan(0);
    const [t] = await d.telemetry`SELECT count(DISTINCT date_trunc('day', ts))::int AS days FROM telemetry_events`;
    expect(t!.days).toBeGreaterThanOrEqual(14);
    expect(await seedDemoIfEmpty({ ...d, end: END })).toBeNull();
  }, 120_000);

  it('lets two concurrent callers seed exactly once', async () => {
    const d = await pair('race');
    const results = await Promise.all([seedDemoIfEmpty({ ...d, days: 2, eventsPerDay: 10, end: END }), seedDemoIfEmpty({ ...d, days: 2, eventsPerDay: 10, end: END })]);
    expect(results.filter((r) => r === null)).toHaveLength(1);
    const [c] = await d.crm`SELECT count(*)::int AS n FROM customers`;
    expect(c!.n).toBe(20);
  }, 120_000);
});

describe('seed CLI', () => {
  const cli = (args: string[], env: Record<string, string> = {}) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', 'workers/seed/cli.ts', ...args], { cwd: root, env: { ...process.env, ...env } }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it('prints help', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--customers N');
  }, 60_000);

  it('exits 2 with a message on bad arguments', async () => {
    for (const args of [['--days', '3'], ['--customers', 'ten', '--days', '3'], ['--customers', '5', '--days', '3', '--bogus'], ['--customers', '0', '--days', '3']]) {
      const r = await cli(args, { CRM_DATABASE_URL: 'postgres://127.0.0.1:1/none', TELEMETRY_DATABASE_URL: 'postgres://127.0.0.1:1/none' });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/error: /);
    }
  }, 120_000);

  it('with REGIONS, fills only the named region\'s databases with its share, and refuses to run without --region', async () => {
    for (const db of ['cli_crm_ru', 'cli_tel_ru', 'cli_crm_central']) await pg.ensureDatabase(db);
    const env = {
      REGIONS: 'ru,eu', CRM_DATABASE_URL: pg.databaseUrl('cli_crm_central'), TELEMETRY_DATABASE_URL: pg.databaseUrl('cli_crm_central'),
      REGION_RU_CRM_DATABASE_URL: pg.databaseUrl('cli_crm_ru'), REGION_RU_TELEMETRY_DATABASE_URL: pg.databaseUrl('cli_tel_ru'),
    };
    const refused = await cli(['--customers', '4', '--days', '1'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/REGIONS is set \(ru,eu\): name the region/);
    expect((await cli(['--customers', '4', '--days', '1', '--region', 'us'], env)).stderr).toMatch(/not listed in REGIONS/);
    expect((await cli(['--customers', '4', '--days', '1', '--region', 'eu'], env)).stderr).toMatch(/REGION_EU_CRM_DATABASE_URL and REGION_EU_TELEMETRY_DATABASE_URL must be set/);
    const r = await cli(['--customers', '12', '--days', '1', '--events-per-day', '10', '--region', 'ru'], env);
    expect(r.code, r.stderr).toBe(0);
    const sql = postgres(pg.databaseUrl('cli_crm_ru'), { max: 1, onnotice: () => {} });
    const central = postgres(pg.databaseUrl('cli_crm_central'), { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<{ username: string; region: string }[]>`SELECT username, region FROM customers ORDER BY id`;
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.length).toBeLessThan(12); // ru's share, not everyone
      expect(rows.every((c) => c.region === 'ru')).toBe(true);
      expect((await central`SELECT 1 FROM pg_tables WHERE tablename = 'customers'`).length).toBe(0); // never touched
    } finally {
      await Promise.all([sql.end(), central.end()]);
    }
  }, 180_000);

  it('migrates fresh databases, then generates and summarises', async () => {
    await pg.ensureDatabase('cli_crm');
    await pg.ensureDatabase('cli_telemetry');
    const r = await cli(['--customers', '5', '--days', '2', '--events-per-day', '20', '--seed', '9', '--regions', 'eu,us'], {
      CRM_DATABASE_URL: pg.databaseUrl('cli_crm'), TELEMETRY_DATABASE_URL: pg.databaseUrl('cli_telemetry'),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('applied migrations');
    expect(r.stderr).toMatch(/telemetry: \d+\/\d+ \(100%\)/); // not a TTY: plain progress lines
    expect(r.stdout).toMatch(/^Generated 5 customers, \d+ prostheses and [\d,]+ telemetry events in [\d.]+ s/);
    const again = await cli(['--customers', '5', '--days', '2'], {
      CRM_DATABASE_URL: pg.databaseUrl('cli_crm'), TELEMETRY_DATABASE_URL: pg.databaseUrl('cli_telemetry'),
    });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already has/);
  }, 120_000);
});
