/**
 * The OLAP contract: what every adapter of the `Olap` port must do (chDB in-process, a ClickHouse
 * server). Tables get a random suffix, so the suite may share a database with other users.
 * `setup` runs once: chDB allows one data directory per process.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Olap } from '../../shared/ports/olap.ts';

export function olapContract(
  name: string,
  setup: () => Promise<{ olap: Olap; database: string; teardown?(): Promise<void> }>,
): void {
  describe(`OLAP contract: ${name}`, () => {
    let olap: Olap;
    let database: string;
    let teardown: (() => Promise<void>) | undefined;
    const suffix = randomUUID().replace(/-/g, '').slice(0, 12);
    const replica = `contract_replica_${suffix}`;
    const wide = `contract_wide_${suffix}`;
    const many = `contract_many_${suffix}`;

    beforeAll(async () => {
      ({ olap, database, teardown } = await setup());
    }, 120_000);
    afterAll(async () => {
      for (const t of [replica, wide, many]) await olap?.command(`DROP TABLE IF EXISTS ${t}`).catch(() => {});
      await teardown?.();
    }, 60_000);

    it('answers ping', async () => {
      await expect(olap.ping()).resolves.toBeUndefined();
    });

    it('works inside its configured database', async () => {
      expect(await olap.query('SELECT currentDatabase() AS db')).toEqual([{ db: database }]);
    });

    it('runs DDL through command and sees the new table', async () => {
      await olap.command(`CREATE TABLE ${replica} (id UInt64, name String, _version UInt64, _deleted UInt8)
        ENGINE = ReplacingMergeTree(_version, _deleted) ORDER BY id`);
      const rows = await olap.query<{ engine: string }>(
        'SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = {t:String}',
        { t: replica },
      );
      expect(rows).toEqual([{ engine: 'ReplacingMergeTree' }]);
    });

    it('reads the newest version with FINAL and hides deleted rows', async () => {
      // Separate inserts make separate parts, so only FINAL (not a background merge) can collapse them.
      await olap.insert(replica, [{ id: 1, name: 'v1', _version: 10, _deleted: 0 }, { id: 2, name: 'keep', _version: 10, _deleted: 0 }]);
      await olap.insert(replica, [{ id: 1, name: 'v3', _version: 30, _deleted: 0 }, { id: 3, name: 'gone', _version: 10, _deleted: 0 }]);
      await olap.insert(replica, [{ id: 1, name: 'v2-late', _version: 20, _deleted: 0 }, { id: 3, name: 'gone', _version: 11, _deleted: 1 }]);
      const raw = await olap.query<{ n: string }>(`SELECT count() AS n FROM ${replica}`);
      expect(raw).toEqual([{ n: '6' }]);
      const final = await olap.query<{ id: string; name: string; _version: string }>(
        `SELECT id, name, _version FROM ${replica} FINAL ORDER BY id`,
      );
      expect(final).toEqual([
        { id: '1', name: 'v3', _version: '30' },
        { id: '2', name: 'keep', _version: '10' },
      ]);
    });

    it('binds typed query parameters, including awkward strings and arrays', async () => {
      const tricky = `it's a "test" \\ with {braces}; DROP TABLE x`;
      const rows = await olap.query<{ s: string; n: number; ids: number[]; tags: string[] }>(
        'SELECT {s:String} AS s, {n:UInt32} AS n, {ids:Array(UInt32)} AS ids, {tags:Array(String)} AS tags',
        { s: tricky, n: 41, ids: [3, 1, 2], tags: ['plain', tricky, ''] },
      );
      expect(rows).toEqual([{ s: tricky, n: 41, ids: [3, 1, 2], tags: ['plain', tricky, ''] }]);
      const filtered = await olap.query<{ id: string }>(`SELECT id FROM ${replica} FINAL WHERE name = {name:String}`, { name: 'keep' });
      expect(filtered).toEqual([{ id: '2' }]);
    });

    it('keeps 64-bit integers above 2^53 intact as strings', async () => {
      await olap.command(`CREATE TABLE ${wide} (u UInt64, i Int64) ENGINE = MergeTree ORDER BY u`);
      const values = [
        { u: '18446744073709551615', i: '-9223372036854775808' },
        { u: '9007199254740993', i: '9223372036854775807' },
      ];
      await olap.insert(wide, values);
      expect(await olap.query(`SELECT u, i FROM ${wide} ORDER BY u DESC`)).toEqual(values);
      expect(await olap.query('SELECT {v:UInt64} AS v', { v: '9007199254740993' })).toEqual([{ v: '9007199254740993' }]);
    });

    it('inserts many rows in one call', async () => {
      await olap.command(`CREATE TABLE ${many} (id UInt32, label String, day Date) ENGINE = MergeTree ORDER BY id`);
      const rows = Array.from({ length: 50_000 }, (_, i) => ({ id: i, label: `row-${i}`, day: '2026-01-15' }));
      await olap.insert(many, rows);
      expect(await olap.query(`SELECT count() AS n, sum(id) AS s, uniqExact(label) AS u FROM ${many}`)).toEqual([
        { n: '50000', s: String((49_999 * 50_000) / 2), u: '50000' },
      ]);
      await olap.insert(many, []);
    });

    it('runs INSERT … SELECT through command with parameters', async () => {
      await olap.command(`INSERT INTO ${many} SELECT id + 100000, label, day FROM ${many} WHERE id < {k:UInt32}`, { k: 10 });
      expect(await olap.query(`SELECT count() AS n FROM ${many} WHERE id >= 100000`)).toEqual([{ n: '10' }]);
    });

    it('serves concurrent calls correctly', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => olap.query<{ v: number }>('SELECT {i:UInt8} * 2 AS v', { i })),
      );
      expect(results.map((r) => r[0]!.v)).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
    });

    it('rejects bad SQL with the ClickHouse error, and keeps working', async () => {
      await expect(olap.query('SELEC 1')).rejects.toThrow(/syntax/i);
      await expect(olap.query('SELECT * FROM no_such_table_here')).rejects.toThrow(/no_such_table_here/);
      expect(await olap.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    });
  });
}
