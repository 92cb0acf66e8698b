/**
 * Data residency, audited on the real launcher (regions `ru,eu`) after a demo run (sign-ins and
 * reports in both regions, an order through the saga, a device batch per region, an ETL run per
 * region, CDC caught up): every customer's name, e-mail and phone — taken from their own region's
 * CRM — and every directory entry's name and e-mail appear nowhere central: not in any row of the
 * central `crm`, `telemetry` or `platform` databases, not in the central ClickHouse database, not
 * in any KV key or value, not in the launcher's output or log files, not in the central bucket.
 * Each region's people exist only in their own region's stores (databases, ClickHouse database,
 * bucket). The central CRM holds no customers at all, only the shared catalogue of models.
 *
 * ClickHouse is searched last, after the stack stops (chDB's directory belongs to the worker
 * process while it runs).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3ObjectStore } from '../../edge/adapters/object-store-s3.ts';
import { DEMO_USERS } from '../../infra/dev/services/ldap-directory.ts';
import { parseReportKey } from '../../shared/reports/keys.ts';
import { createClickHouseOlap } from '../../workers/adapters/olap-clickhouse.ts';
import { launchStack, type LaunchedStack } from '../support/launcher.ts';
import { demoRun, type DemoRun } from '../support/regions-demo.ts';
import { eventually } from '../support/saga-stack.ts';

const REGIONS = ['ru', 'eu'] as const;
type Region = (typeof REGIONS)[number];

interface StackFile {
  crm: string; telemetry: string; platform: string; edge: string; idpDataDir: string;
  UPSTASH_REDIS_REST_URL: string; UPSTASH_REDIS_REST_TOKEN: string; TELEMETRY_DEVICE_KEYS: string;
  S3_ENDPOINT: string; S3_REGION: string; S3_ACCESS_KEY_ID: string; S3_SECRET_ACCESS_KEY: string; S3_BUCKET_REPORTS: string;
  regions: Record<Region, { crm: string; telemetry: string; reportsBucket: string }>;
  /** Each region's own KV (the launcher gives every region one). */
  REGION_RU_UPSTASH_REDIS_REST_URL: string;
}
interface Person { id: string; username: string; idp_subject: string | null; region: string; full_name: string; email: string; phone: string | null }

const dataDir = mkdtempSync(join(tmpdir(), 'bionic-residency-'));
let stack: LaunchedStack;
let urls: StackFile;
const people = {} as Record<Region, Person[]>;
let demo: DemoRun;

/** The directory's personal attributes of a region's accounts: full name and e-mail (infra/dev/services/ldap-directory.ts). */
const directoryNeedles = (r: Region) => DEMO_USERS.filter((u) => u.region === r).flatMap((u) => [`${u.givenName} ${u.sn}`, `${u.uid}@bionicpro.example`]);
/** The personal attributes of `persons` (and of region `r`'s directory entries), lower-cased (the search ignores case). */
const needlesOf = (persons: Person[], r?: Region) =>
  [...persons.flatMap((p) => [p.full_name, p.email, p.phone]), ...(r ? directoryNeedles(r) : [])].filter((v): v is string => !!v).map((v) => v.toLowerCase());
const everyone = () => [...needlesOf(people.ru, 'ru'), ...needlesOf(people.eu, 'eu')];
const likePattern = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Rows (as text, every column) of every table of a database that contain any needle. Whole rows
 * are searched — `row::text` covers text, JSON, arrays and anything else; partitions are searched
 * through their parent.
 */
async function findInDatabase(url: string, needles: string[]): Promise<string[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const tables = await sql<{ name: string }[]>`
      SELECT format('%I.%I', n.nspname, c.relname) AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`;
    expect(tables.length).toBeGreaterThan(0);
    const found: string[] = [];
    const patterns = needles.map(likePattern);
    for (const { name } of tables) {
      const rows = await sql.unsafe<{ row: string }[]>(
        `SELECT t::text AS row FROM ${name} t WHERE lower(t::text) LIKE ANY($1::text[]) LIMIT 200`, [patterns]);
      found.push(...rows.map((r) => `${name}: ${r.row}`));
    }
    return found;
  } finally {
    await sql.end();
  }
}

/** One command through the Upstash REST gateway (the central KV's, unless another is named), as any KV client sends it. */
const kvCall = async (cmd: string[], url = urls.UPSTASH_REDIS_REST_URL): Promise<unknown> => {
  const res = await fetch(url, {
    method: 'POST', headers: { authorization: `Bearer ${urls.UPSTASH_REDIS_REST_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(cmd),
  });
  const body = (await res.json()) as { result?: unknown; error?: string };
  if (!res.ok || body.error) throw new Error(`KV ${cmd[0]}: ${res.status} ${body.error}`);
  return body.result;
};

/** Every KV key and value as text, read through the Upstash REST gateway like any KV client. */
async function kvDump(url = urls.UPSTASH_REDIS_REST_URL): Promise<string> {
  const read: Record<string, (k: string) => string[]> = {
    string: (k) => ['GET', k], hash: (k) => ['HGETALL', k], list: (k) => ['LRANGE', k, '0', '-1'],
    set: (k) => ['SMEMBERS', k], zset: (k) => ['ZRANGE', k, '0', '-1', 'WITHSCORES'], stream: (k) => ['XRANGE', k, '-', '+'],
  };
  const out: string[] = [];
  for (const key of (await kvCall(['KEYS', '*'], url)) as string[]) {
    const type = String(await kvCall(['TYPE', key], url));
    out.push(`${key} ${JSON.stringify(read[type] ? await kvCall(read[type](key), url) : `<${type}>`)}`);
  }
  return out.join('\n');
}

/** Every file under the launcher's log directory, concatenated. */
function logFiles(dir: string): string {
  let text = '';
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    text += statSync(path).isDirectory() ? logFiles(path) : readFileSync(path, 'utf8') + '\n';
  }
  return text;
}

const hits = (text: string, needles: string[]) => {
  const lower = text.toLowerCase();
  return needles.filter((n) => lower.includes(n));
};

beforeAll(async () => {
  stack = await launchStack(['--data-dir', dataDir, '--edge-port', '0', '--worker-port', '0'], { env: { REGIONS: REGIONS.join(',') } });
  urls = JSON.parse(readFileSync(stack.stackFile, 'utf8')) as StackFile;
  for (const r of REGIONS) {
    const sql = postgres(urls.regions[r].crm, { max: 1, onnotice: () => {} });
    try {
      people[r] = await sql<Person[]>`SELECT id::text, username, idp_subject, region, full_name, email, phone FROM customers ORDER BY customers.id`;
    } finally {
      await sql.end();
    }
  }
  demo = await demoRun({ ...urls, edge: stack.edge }, { ru: 'user2', eu: 'user1', operator: 'operator1', admin: 'admin1' });
}, 420_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe('data residency on the launched stack (ru, eu)', () => {
  it('each region holds its own demo customers, with name, e-mail and phone, linked to sign-in accounts', async () => {
    for (const r of REGIONS) {
      expect(people[r].length, r).toBeGreaterThan(0);
      expect(people[r].every((p) => p.region === r && p.full_name && p.email.includes('@') && p.phone), r).toBe(true);
      expect(people[r].some((p) => p.idp_subject), `${r}: a demo account is linked`).toBe(true);
      // The search finds what is there: the audit below can fail.
      expect((await findInDatabase(urls.regions[r].crm, needlesOf(people[r]))).length, r).toBeGreaterThanOrEqual(people[r].length);
    }
  });

  it("no region's database holds another region's customers", async () => {
    const [ru, eu] = [people.ru, people.eu];
    expect(await findInDatabase(urls.regions.eu.crm, needlesOf(ru, 'ru'))).toEqual([]);
    expect(await findInDatabase(urls.regions.ru.crm, needlesOf(eu, 'eu'))).toEqual([]);
    const ids = (ps: Person[]) => new Set(ps.map((p) => p.id));
    expect([...ids(ru)].filter((id) => ids(eu).has(id))).toEqual([]);
    expect(await findInDatabase(urls.regions.ru.telemetry, needlesOf(eu, 'eu'))).toEqual([]);
    expect(await findInDatabase(urls.regions.eu.telemetry, needlesOf(ru, 'ru'))).toEqual([]);
    // The demo run's order is in the operator's region only.
    const orders = async (url: string) => {
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try { return (await sql<{ id: string }[]>`SELECT id::text FROM orders WHERE id = ${demo.order.id}::bigint AND created_at > now() - interval '1 hour'`).length; } finally { await sql.end(); }
    };
    expect(await orders(urls.regions.ru.crm)).toBe(1);
  });

  it('the central crm, telemetry and platform databases hold no name, e-mail or phone', async () => {
    for (const db of ['crm', 'telemetry', 'platform'] as const) {
      expect(await findInDatabase(urls[db], everyone()), db).toEqual([]);
    }
    // The demo run did leave its traces centrally (saga state, notifications): the search covers them.
    expect((await findInDatabase(urls.platform, [demo.order.sagaId])).length).toBeGreaterThan(0);
  });

  it('the central crm and telemetry hold no customers, devices, orders or readings — only the shared catalogue of models', async () => {
    const count = async (url: string, table: string) => {
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try { return (await sql.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n; } finally { await sql.end(); }
    };
    for (const table of ['customers', 'prostheses', 'orders', 'customer_accounts']) expect(await count(urls.crm, table), table).toBe(0);
    expect(await count(urls.crm, 'prosthesis_models')).toBeGreaterThan(0);
    expect(await count(urls.telemetry, 'telemetry_events')).toBe(0);
    for (const r of REGIONS) expect(await count(urls.regions[r].telemetry, 'telemetry_events'), r).toBeGreaterThan(0);
  });

  it('the ETL ran per region, and cross-region analytics name people by pseudonyms only', async () => {
    for (const r of REGIONS) expect(demo.etlRuns[r]?.rowsRead ?? 0, r).toBeGreaterThan(0);
    const day = (d: Date) => d.toISOString().slice(0, 10);
    const { rows } = await demo.trpc('admin1').analytics.daily.query({ from: day(new Date(Date.now() - 13 * 86_400_000)), to: day(new Date()), limit: 10_000 });
    expect(new Set(rows.map((x) => x.region))).toEqual(new Set(REGIONS));
    const subjects = new Set([...people.ru, ...people.eu].map((p) => p.idp_subject));
    expect(rows.filter((x) => subjects.has(x.pseudoId) || [...subjects].some((s) => s && x.pseudoId.includes(s)))).toEqual([]);
    expect(hits(JSON.stringify(rows), everyone())).toEqual([]);
    // A plain user may not read them.
    await expect(demo.trpc('user2').analytics.daily.query({ from: day(new Date()), to: day(new Date()), limit: 10 })).rejects.toMatchObject({ data: { code: 'FORBIDDEN' } });
  });

  it('no KV key or value holds a name, e-mail or phone', async () => {
    // A probe proves the dump reads values; it is removed before the assertion.
    await kvCall(['SET', 'residency-test:probe', 'probe-value', 'EX', '60']);
    const probed = await kvDump();
    await kvCall(['DEL', 'residency-test:probe']);
    expect(probed).toContain('residency-test:probe "probe-value"');
    const dump = await kvDump();
    // Sessions and notifications live in their people's region's KV: the central one holds none.
    expect(dump).not.toMatch(/^session:/m);
    expect(dump).not.toContain('notify:{user2}');
    expect(hits(dump, everyone())).toEqual([]);
    // The demo order's notification to its (ru) customer is in ru's KV: the dump covers the run's traces.
    const ru = await kvDump(urls.REGION_RU_UPSTASH_REDIS_REST_URL);
    expect(ru).toContain('notify:{user2}:stream');
    expect(hits(ru, everyone())).toEqual([]);
  });

  it("the launcher's output and log files hold no name, e-mail or phone", () => {
    expect(stack.output.some((l) => l.startsWith('READY '))).toBe(true);
    const text = stack.output.join('\n') + '\n' + logFiles(join(dataDir, 'logs'));
    expect(hits(text, everyone())).toEqual([]);
  });

  it("report objects exist only in their owner's region's bucket, and hold nobody's name, e-mail or phone", async () => {
    const store = (bucket: string) => createS3ObjectStore({
      endpoint: urls.S3_ENDPOINT, region: urls.S3_REGION, accessKeyId: urls.S3_ACCESS_KEY_ID, secretAccessKey: urls.S3_SECRET_ACCESS_KEY, bucket, forcePathStyle: true,
    });
    const objects = async (bucket: string) => {
      const s = store(bucket);
      const out: { key: string; text: string }[] = [];
      for await (const o of s.list('')) out.push({ key: o.key, text: new TextDecoder().decode((await s.get(o.key))!.body) });
      return out;
    };
    expect(await objects(urls.S3_BUCKET_REPORTS)).toEqual([]);
    for (const r of REGIONS) {
      const own = new Set(people[r].map((p) => p.idp_subject).filter(Boolean));
      const found = await objects(urls.regions[r].reportsBucket);
      // The demo run's report of this region's user is there.
      expect(found.length, r).toBeGreaterThan(0);
      for (const o of found) expect(own.has(parseReportKey(o.key)?.userId ?? null), `${r}: ${o.key}`).toBe(true);
      const other = REGIONS.find((x) => x !== r)!;
      expect(hits(found.map((o) => o.text).join('\n'), needlesOf(people[other], other)), r).toEqual([]);
    }
  });

  // Last: chDB lets one process at a time open its directory, so the stack stops first.
  it('the central ClickHouse database holds no personal attribute and no subject; each region\'s only its own people', async () => {
    // Each region's customers replica must be loaded first, or the control below is moot.
    const total = people.ru.length + people.eu.length;
    await eventually(async () => {
      const text = await (await fetch(`${stack.worker}/metrics`)).text();
      const rows = [...text.matchAll(/^cdc_(?:snapshot|sink)_rows_total\{[^}]*table="customers"[^}]*\} (\d+)/gm)];
      return rows.reduce((n, m) => n + Number(m[1]), 0) >= total;
    }, 'the customers replicas in ClickHouse', 90_000, 250);
    expect(await stack.stop()).toBe(0);
    const olap = await createClickHouseOlap({ chdbPath: join(dataDir, 'chdb'), database: 'bionic', user: 'default', password: '' });
    try {
      const quote = (id: string) => `\`${id.replace(/[`\\]/g, (c) => `\\${c}`)}\``;
      const tables = (await olap.query<{ database: string; name: string }>(
        `SELECT database, name FROM system.tables
         WHERE database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') AND NOT is_temporary AND engine NOT IN ('View', 'MaterializedView')`));
      const search = async (database: string, needles: string[]) => {
        const found: string[] = [];
        for (const t of tables.filter((x) => x.database === database)) {
          const name = `${quote(t.database)}.${quote(t.name)}`;
          const rows = await olap.query<{ row: string }>(
            `SELECT formatRow('JSONEachRow', *) AS row FROM ${name} WHERE multiSearchAnyCaseInsensitiveUTF8(formatRow('JSONEachRow', *), {n:Array(String)}) LIMIT 200`, { n: needles });
          found.push(...rows.map((r) => `${name}: ${r.row.trim()}`));
        }
        return found;
      };
      const databases = [...new Set(tables.map((t) => t.database))];
      expect(databases).toEqual(expect.arrayContaining(['bionic', 'bionic_ru', 'bionic_eu']));
      const subjects = [...people.ru, ...people.eu].map((p) => p.idp_subject).filter((v): v is string => !!v);
      for (const r of REGIONS) {
        // The region's replica holds its own people (the search works) and nobody else.
        expect((await search(`bionic_${r}`, needlesOf(people[r]))).filter((row) => row.includes('crm_customers')).length, r).toBe(people[r].length);
        const other = REGIONS.find((x) => x !== r)!;
        expect(await search(`bionic_${r}`, needlesOf(people[other], other)), r).toEqual([]);
      }
      for (const db of databases.filter((d) => !/^bionic_(ru|eu)$/.test(d))) {
        expect(await search(db, everyone()), db).toEqual([]);
        expect(await search(db, subjects), `${db}: sign-in subjects`).toEqual([]);
      }
    } finally {
      await olap.close();
    }
  }, 180_000);
});
