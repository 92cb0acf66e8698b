/**
 * Data residency, audited on the real launcher (regions `ru,eu`): every demo customer's name,
 * e-mail and phone — taken from their own region's CRM — appears nowhere central: not in any row
 * of the central `crm`, `telemetry` or `platform` databases or of any ClickHouse table, not in any
 * KV key or value, not in the launcher's output or log files. Each region's customers exist only in their own region.
 * The central CRM keeps the ids, regions and sign-in links under pseudonyms.
 *
 * ClickHouse is searched last, after the stack stops (chDB's directory belongs to the worker
 * process while it runs). Not covered here: the object store.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouseOlap } from '../../workers/adapters/olap-clickhouse.ts';
import { pseudonymOf } from '../../workers/seed/crm-data.ts';
import { launchStack, type LaunchedStack } from '../support/launcher.ts';
import { eventually } from '../support/saga-stack.ts';

const REGIONS = ['ru', 'eu'] as const;
type Region = (typeof REGIONS)[number];

interface StackFile {
  crm: string; telemetry: string; platform: string;
  UPSTASH_REDIS_REST_URL: string; UPSTASH_REDIS_REST_TOKEN: string;
  regions: Record<Region, { crm: string; telemetry: string }>;
}
interface Person { id: string; username: string; idp_subject: string | null; region: string; full_name: string; email: string; phone: string | null }

const dataDir = mkdtempSync(join(tmpdir(), 'bionic-residency-'));
let stack: LaunchedStack;
let urls: StackFile;
const people = {} as Record<Region, Person[]>;

/** The personal attributes of `persons`, lower-cased (the search ignores case). */
const needlesOf = (persons: Person[]) => persons.flatMap((p) => [p.full_name, p.email, p.phone]).filter((v): v is string => !!v).map((v) => v.toLowerCase());
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

/** One command through the Upstash REST gateway, as any KV client sends it. */
const kvCall = async (cmd: string[]): Promise<unknown> => {
  const res = await fetch(urls.UPSTASH_REDIS_REST_URL, {
    method: 'POST', headers: { authorization: `Bearer ${urls.UPSTASH_REDIS_REST_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(cmd),
  });
  const body = (await res.json()) as { result?: unknown; error?: string };
  if (!res.ok || body.error) throw new Error(`KV ${cmd[0]}: ${res.status} ${body.error}`);
  return body.result;
};

/** Every KV key and value as text, read through the Upstash REST gateway like any KV client. */
async function kvDump(): Promise<string> {
  const read: Record<string, (k: string) => string[]> = {
    string: (k) => ['GET', k], hash: (k) => ['HGETALL', k], list: (k) => ['LRANGE', k, '0', '-1'],
    set: (k) => ['SMEMBERS', k], zset: (k) => ['ZRANGE', k, '0', '-1', 'WITHSCORES'], stream: (k) => ['XRANGE', k, '-', '+'],
  };
  const out: string[] = [];
  for (const key of (await kvCall(['KEYS', '*'])) as string[]) {
    const type = String(await kvCall(['TYPE', key]));
    out.push(`${key} ${JSON.stringify(read[type] ? await kvCall(read[type](key)) : `<${type}>`)}`);
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
}, 300_000);

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
    expect(await findInDatabase(urls.regions.eu.crm, needlesOf(ru))).toEqual([]);
    expect(await findInDatabase(urls.regions.ru.crm, needlesOf(eu))).toEqual([]);
    const ids = (ps: Person[]) => new Set(ps.map((p) => p.id));
    expect([...ids(ru)].filter((id) => ids(eu).has(id))).toEqual([]);
    expect(await findInDatabase(urls.regions.ru.telemetry, needlesOf(eu))).toEqual([]);
    expect(await findInDatabase(urls.regions.eu.telemetry, needlesOf(ru))).toEqual([]);
  });

  it('the central crm, telemetry and platform databases hold no name, e-mail or phone', async () => {
    const needles = needlesOf([...people.ru, ...people.eu]);
    for (const db of ['crm', 'telemetry', 'platform'] as const) {
      expect(await findInDatabase(urls[db], needles), db).toEqual([]);
    }
  });

  it('the central crm keeps ids, regions and sign-in links under pseudonyms', async () => {
    const sql = postgres(urls.crm, { max: 1, onnotice: () => {} });
    try {
      const central = await sql<Person[]>`SELECT id::text, username, idp_subject, region, full_name, email, phone FROM customers ORDER BY customers.id`;
      const regional = [...people.ru, ...people.eu].sort((a, b) => Number(a.id) - Number(b.id));
      expect(central.map((c) => [c.id, c.username, c.region, c.idp_subject])).toEqual(regional.map((p) => [p.id, p.username, p.region, p.idp_subject]));
      for (const c of central) expect(c, c.id).toMatchObject(pseudonymOf(Number(c.id)));
      const [devices] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM prostheses`;
      expect(devices!.n).toBeGreaterThanOrEqual(central.length);
    } finally {
      await sql.end();
    }
  });

  it('no KV key or value holds a name, e-mail or phone', async () => {
    // A probe proves the dump reads values; it is removed before the assertion.
    await kvCall(['SET', 'residency-test:probe', 'probe-value', 'EX', '60']);
    const probed = await kvDump();
    await kvCall(['DEL', 'residency-test:probe']);
    expect(probed).toContain('residency-test:probe "probe-value"');
    const dump = await kvDump();
    expect(hits(dump, needlesOf([...people.ru, ...people.eu]))).toEqual([]);
  });

  it("the launcher's output and log files hold no name, e-mail or phone", () => {
    expect(stack.output.some((l) => l.startsWith('READY '))).toBe(true);
    const text = stack.output.join('\n') + '\n' + logFiles(join(dataDir, 'logs'));
    expect(hits(text, needlesOf([...people.ru, ...people.eu]))).toEqual([]);
  });

  // Last: chDB lets one process at a time open its directory, so the stack stops first.
  it('no ClickHouse table (read after the worker stops) holds a name, e-mail or phone', async () => {
    // The CDC replica of the central customers must be loaded first, or the control below is moot.
    const total = people.ru.length + people.eu.length;
    await eventually(async () => {
      const text = await (await fetch(`${stack.worker}/metrics`)).text();
      const rows = [...text.matchAll(/^cdc_(?:snapshot|sink)_rows_total\{[^}]*table="customers"[^}]*\} (\d+)/gm)];
      return rows.reduce((n, m) => n + Number(m[1]), 0) >= total;
    }, 'the customers replica in ClickHouse', 90_000, 250);
    expect(await stack.stop()).toBe(0);
    const olap = await createClickHouseOlap({ chdbPath: join(dataDir, 'chdb'), database: 'bionic', user: 'default', password: '' });
    try {
      const quote = (id: string) => `\`${id.replace(/[`\\]/g, (c) => `\\${c}`)}\``;
      const tables = (await olap.query<{ database: string; name: string }>(
        `SELECT database, name FROM system.tables
         WHERE database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') AND NOT is_temporary AND engine NOT IN ('View', 'MaterializedView')`))
        .map((t) => ({ name: `${quote(t.database)}.${quote(t.name)}` }));
      const search = async (needles: string[]) => {
        const found: string[] = [];
        for (const { name } of tables) {
          const rows = await olap.query<{ row: string }>(
            `SELECT formatRow('JSONEachRow', *) AS row FROM ${name} WHERE multiSearchAnyCaseInsensitiveUTF8(formatRow('JSONEachRow', *), {n:Array(String)}) LIMIT 200`, { n: needles });
          found.push(...rows.map((r) => `${name}: ${r.row.trim()}`));
        }
        return found;
      };
      // The CDC replica of the central customers is there, and the search finds its pseudonyms.
      expect((await search(['@pseudonymous.invalid'])).filter((r) => r.includes('crm_customers')).length).toBe(total);
      expect(await search(needlesOf([...people.ru, ...people.eu]))).toEqual([]);
    } finally {
      await olap.close();
    }
  }, 180_000);
});
