/**
 * OLAP contract against chDB in-process (always) and a ClickHouse server (when CLICKHOUSE_URL is
 * set), plus chDB's own rules: one process per data directory, data kept across reopen.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OlapConfig } from '../../shared/config.ts';
import { createClickHouseOlap } from '../../workers/adapters/olap-clickhouse.ts';
import { olapContract } from './olap-contract.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
const chdbConfig = (): OlapConfig => ({ user: 'default', password: '', database: 'contract_db', chdbPath: join(dir, 'chdb') });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'olap-test-'));
}, 60_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

olapContract('chDB in-process', async () => {
  const olap = await createClickHouseOlap(chdbConfig());
  return { olap, database: 'contract_db', teardown: () => olap.close() };
});

describe('chDB adapter', () => {
  it('runs inserts, queries and pings while a long statement is still running', async () => {
    const olap = await createClickHouseOlap(chdbConfig());
    try {
      await olap.command('CREATE TABLE IF NOT EXISTS lanes (n UInt64) ENGINE = MergeTree ORDER BY n');
      const order: string[] = [];
      const long = olap.command('INSERT INTO lanes SELECT count() FROM numbers(150000000) WHERE sipHash64(number) % 7 = 1')
        .then(() => order.push('long'));
      await olap.insert('lanes', [{ n: 1 }]);
      const [row] = await olap.query<{ c: string }>('SELECT count() AS c FROM lanes WHERE n = 1');
      await olap.ping();
      order.push('short');
      await long;
      expect(row!.c).toBe('1');
      expect(order).toEqual(['short', 'long']);
    } finally {
      await olap.close();
    }
  }, 120_000);

  it('hands out views of other databases that share the sessions without mixing rows', async () => {
    const olap = await createClickHouseOlap(chdbConfig());
    try {
      const views = { ru: olap.withDatabase('contract_ru'), eu: olap.withDatabase('contract_eu') };
      for (const [id, v] of Object.entries(views)) {
        await v.command('CREATE TABLE IF NOT EXISTS people (id UInt32, region String) ENGINE = MergeTree ORDER BY id');
        await v.command('TRUNCATE TABLE people');
        await v.insert('people', [{ id: 1, region: id }, { id: 2, region: id }]);
      }
      await olap.command('CREATE TABLE IF NOT EXISTS people (id UInt32, region String) ENGINE = MergeTree ORDER BY id');
      await olap.command('TRUNCATE TABLE people');
      // Interleaved calls of the three databases, not awaited one by one: each lands in its own.
      await Promise.all([
        views.ru.insert('people', [{ id: 3, region: 'ru' }]),
        olap.insert('people', [{ id: 9, region: 'central' }]),
        views.eu.command("INSERT INTO people VALUES (3, 'eu')"),
        views.ru.command("INSERT INTO people VALUES (4, 'ru')"),
      ]);
      const read = (o: typeof olap | typeof views.ru) =>
        o.query<{ r: string; n: string; db: string }>('SELECT region AS r, toString(count()) AS n, currentDatabase() AS db FROM people GROUP BY region');
      const [ru, eu, central] = await Promise.all([read(views.ru), read(views.eu), read(olap)]);
      expect(ru).toEqual([{ r: 'ru', n: '4', db: 'contract_ru' }]);
      expect(eu).toEqual([{ r: 'eu', n: '3', db: 'contract_eu' }]);
      expect(central).toEqual([{ r: 'central', n: '1', db: 'contract_db' }]);
      expect(() => olap.withDatabase('bad-name; DROP')).toThrow(/invalid ClickHouse database name/);
      await views.ru.close(); // a no-op: the adapter still works
      expect(await read(views.ru)).toHaveLength(1);
    } finally {
      await olap.close();
    }
  }, 120_000);

  it('refuses a second process on the same data directory, naming the owner', async () => {
    const olap = await createClickHouseOlap(chdbConfig());
    try {
      await olap.command('CREATE TABLE IF NOT EXISTS kept (k String) ENGINE = MergeTree ORDER BY k');
      await olap.insert('kept', [{ k: 'survives reopen' }]);
      // .mts: outside the repository there is no package.json saying this is an ES module.
      const probe = join(dir, 'probe.mts');
      await writeFile(
        probe,
        `import { createClickHouseOlap } from ${JSON.stringify(join(root, 'workers/adapters/olap-clickhouse.ts'))};
try {
  const o = await createClickHouseOlap({ user: 'default', password: '', database: 'contract_db', chdbPath: process.argv[2] });
  await o.close();
  console.log('opened');
} catch (e) {
  console.error(e.name + ': ' + e.message);
  process.exit(3);
}
`,
      );
      const run = promisify(execFile)(process.execPath, ['--import', 'tsx', probe, chdbConfig().chdbPath], { cwd: root });
      const failure = await run.then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      expect(failure.stdout, failure.stderr).not.toContain('opened');
      expect(failure.code).toBe(3);
      expect(failure.stderr).toContain('ChdbDirectoryInUseError');
      expect(failure.stderr).toContain(`in use by another process (pid ${process.pid})`);
    } finally {
      await olap.close();
    }
  }, 120_000);

  it('keeps data when the directory is opened again by the same process', async () => {
    const olap = await createClickHouseOlap(chdbConfig());
    try {
      expect(await olap.query('SELECT k FROM kept')).toEqual([{ k: 'survives reopen' }]);
    } finally {
      await olap.close();
    }
  });

  it('explains why a second data directory cannot be opened in the same process', async () => {
    const olap = await createClickHouseOlap(chdbConfig());
    try {
      const other = join(dir, 'other-chdb');
      await expect(createClickHouseOlap({ ...chdbConfig(), chdbPath: other })).rejects.toThrow(
        new RegExp(`chDB failed to open data directory ${other}: .*only one active data directory per process`),
      );
      expect(await olap.query('SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
    } finally {
      await olap.close();
    }
  });

  it('runs calls in the order they were made', async () => {
    const olap = await createClickHouseOlap(chdbConfig());
    try {
      await olap.command('CREATE TABLE ordered (id UInt32) ENGINE = MergeTree ORDER BY id');
      // Not awaited in between: the count must still see the insert issued before it.
      const inserted = olap.insert('ordered', Array.from({ length: 20_000 }, (_, id) => ({ id })));
      const counted = olap.query('SELECT count() AS n FROM ordered');
      await inserted;
      expect(await counted).toEqual([{ n: '20000' }]);
    } finally {
      await olap.close();
    }
  });

  it('rejects a database name that is not an identifier', async () => {
    await expect(createClickHouseOlap({ ...chdbConfig(), database: 'x; DROP' })).rejects.toThrow(/invalid ClickHouse database name/);
  });
});

const serverUrl = process.env.CLICKHOUSE_URL;
if (serverUrl) {
  olapContract(`ClickHouse server at ${serverUrl}`, async () => {
    const database = `contract_${process.pid}`;
    const olap = await createClickHouseOlap({
      url: serverUrl,
      user: process.env.CLICKHOUSE_USER ?? 'default',
      password: process.env.CLICKHOUSE_PASSWORD ?? '',
      database,
      chdbPath: '',
    });
    return {
      olap,
      database,
      teardown: async () => {
        await olap.command(`DROP DATABASE IF EXISTS ${database}`);
        await olap.close();
      },
    };
  });
} else {
  describe.skip('OLAP contract: ClickHouse server (skipped: set CLICKHOUSE_URL to run it)', () => {
    it('runs the OLAP contract against a ClickHouse server', () => {});
  });
}
