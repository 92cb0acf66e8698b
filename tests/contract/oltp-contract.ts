/**
 * The OLTP contract: what every adapter of the `Oltp` port must do. Tables get a random suffix,
 * so the suite may share a database with other users.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Oltp } from '../../shared/ports/oltp.ts';

/** Registers the suite for one adapter; `make` may be called more than once (the close test). */
export function oltpContract(name: string, make: () => Promise<Oltp>): void {
  describe(`OLTP contract: ${name}`, () => {
    let db: Oltp;
    const t = `contract_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const count = async () => Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`))[0]!.n);

    beforeAll(async () => {
      db = await make();
      await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, name text NOT NULL, at timestamptz NOT NULL DEFAULT now())`);
    }, 60_000);
    afterAll(async () => {
      await db?.query(`DROP TABLE IF EXISTS ${t}`).catch(() => {});
      await db?.close();
    }, 60_000);

    it('answers ping', async () => {
      await expect(db.ping()).resolves.toBeUndefined();
    });

    it('binds positional parameters and returns plain row objects', async () => {
      await db.query(`INSERT INTO ${t} (id, name) VALUES ($1, $2), ($3, $4)`, [1, "O'Brien; DROP TABLE x", 2, 'two']);
      const rows = await db.query<{ id: number; name: string; at: Date }>(`SELECT id, name, at FROM ${t} WHERE id = ANY($1::int[]) ORDER BY id`, [[1, 2]]);
      expect(Array.isArray(rows)).toBe(true);
      expect(rows.map((r) => [r.id, r.name])).toEqual([[1, "O'Brien; DROP TABLE x"], [2, 'two']]);
      expect(rows[0]!.at).toBeInstanceOf(Date);
      expect(await db.query(`SELECT * FROM ${t} WHERE id = $1`, [404])).toEqual([]);
      expect(await db.query('SELECT $1::text AS v', [null])).toEqual([{ v: null }]);
    });

    it('commits a transaction and returns its value', async () => {
      const before = await count();
      const result = await db.transaction(async (tx) => {
        await tx.query(`INSERT INTO ${t} (id, name) VALUES ($1, 'tx-a')`, [10]);
        await tx.query(`INSERT INTO ${t} (id, name) VALUES ($1, 'tx-b')`, [11]);
        return (await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}`))[0]!.n;
      });
      expect(result).toBe(before + 2);
      expect(await count()).toBe(before + 2);
    });

    it('keeps uncommitted writes invisible outside the transaction', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let inserted!: () => void;
      const wrote = new Promise<void>((r) => (inserted = r));
      const tx = db.transaction(async (q) => {
        await q.query(`INSERT INTO ${t} (id, name) VALUES (20, 'pending')`);
        inserted();
        await gate;
      });
      await wrote;
      expect(await db.query(`SELECT 1 FROM ${t} WHERE id = 20`)).toEqual([]);
      release();
      await tx;
      expect(await db.query(`SELECT name FROM ${t} WHERE id = 20`)).toEqual([{ name: 'pending' }]);
    });

    it('rolls back everything when the function throws, and rethrows the same error', async () => {
      const before = await count();
      const boom = new Error('boom');
      await expect(
        db.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${t} (id, name) VALUES (30, 'lost')`);
          await tx.query(`UPDATE ${t} SET name = 'changed' WHERE id = 1`);
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(await count()).toBe(before);
      expect(await db.query(`SELECT name FROM ${t} WHERE id = 1`)).toEqual([{ name: "O'Brien; DROP TABLE x" }]);
    });

    it('rolls back when a statement inside fails', async () => {
      const before = await count();
      await expect(
        db.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${t} (id, name) VALUES (40, 'first')`);
          await tx.query(`INSERT INTO ${t} (id, name) VALUES (40, 'duplicate')`);
        }),
      ).rejects.toMatchObject({ code: '23505' });
      expect(await count()).toBe(before);
    });

    it('surfaces a unique violation with the PostgreSQL error code', async () => {
      const err = await db.query(`INSERT INTO ${t} (id, name) VALUES (1, 'again')`).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ code: '23505' });
      expect((err as Error).message).toMatch(/duplicate key/);
    });

    it('rejects invalid SQL with the syntax error code', async () => {
      await expect(db.query('SELEC 1')).rejects.toMatchObject({ code: '42601' });
    });

    it('fails calls after close', async () => {
      const other = await make();
      await other.ping();
      await other.close();
      await expect(other.query('SELECT 1')).rejects.toThrow();
    });
  });
}
