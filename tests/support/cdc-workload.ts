/**
 * Writes to the CRM the way CDC must survive: random inserts, updates (also two of one row in one
 * transaction), primary-key changes, deletes, multi-table transactions and the odd TRUNCATE, over
 * customers, accounts, orders, prosthesis models and the audit log, respecting their foreign keys.
 */
import type postgres from 'postgres';

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed with its seed. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

/** Models, customers with accounts, and orders: a CRM with something in it. */
export async function seedCrm(crm: postgres.Sql, n: { customers: number; orders: number }): Promise<void> {
  await crm`INSERT INTO prosthesis_models (name, kind, manufacturer, price)
    SELECT 'model-' || g, (ARRAY['hand', 'arm', 'leg'])[1 + g % 3], 'maker-' || (g % 4), 1000 + g * 10.25 FROM generate_series(1, 8) g
    ON CONFLICT (name) DO NOTHING`;
  await crm`INSERT INTO customers (username, full_name, email, phone, region)
    SELECT 'seed' || g, 'Seed Customer ' || g, 'seed' || g || '@example.com', '+49 ' || g, (ARRAY['eu', 'us', 'uk'])[1 + g % 3]
    FROM generate_series(1, ${n.customers}) g`;
  await crm`INSERT INTO customer_accounts (customer_id, balance) SELECT id, 10000 + id FROM customers WHERE username LIKE 'seed%'`;
  await crm`INSERT INTO orders (customer_id, model_id, status, price)
    SELECT c.id, 1 + g % 8, (ARRAY['DRAFT', 'APPROVED', 'FINISHED'])[1 + g % 3], 500 + g
    FROM generate_series(1, ${n.orders}) g JOIN customers c ON c.username = 'seed' || (1 + g % ${n.customers})`;
}

type Tx = postgres.TransactionSql;

export class RandomWorkload {
  private readonly r: ReturnType<typeof rng>;
  private serial = 0;
  transactions = 0;
  conflicts = 0;

  constructor(private readonly crm: postgres.Sql, seed: number, private readonly opts: { truncates?: boolean } = {}) {
    this.r = rng(seed);
  }

  /** One random transaction. */
  async step(): Promise<void> {
    const ops = this.r.next() < 0.25 ? this.r.int(2, 4) : 1;
    await this.crm.begin(async (tx) => {
      for (let i = 0; i < ops; i++) await this.op(tx);
    });
    this.transactions++;
  }

  /**
   * Runs transactions on `writers` connections at once until `signal` aborts. Concurrent writers
   * collide now and then (deadlock, serialization, a key taken meanwhile): such a transaction rolls
   * back and is not counted, as an application would retry it.
   */
  async run(signal: AbortSignal, writers = 1): Promise<void> {
    await Promise.all(Array.from({ length: writers }, async () => {
      while (!signal.aborted) {
        try {
          await this.step();
        } catch (err) {
          if (!['40P01', '40001', '23505', '23503'].includes((err as { code?: string }).code ?? '')) throw err;
          this.conflicts++;
        }
      }
    }));
  }

  private async someId(tx: Tx, table: 'customers' | 'orders'): Promise<number | null> {
    const [b] = await tx.unsafe(`SELECT min(id)::int8 AS lo, max(id)::int8 AS hi FROM ${table}`);
    if (!b || b.lo === null) return null;
    const from = this.r.int(Number(b.lo), Number(b.hi));
    const [row] = await tx.unsafe(`SELECT id FROM ${table} WHERE id >= $1 ORDER BY id LIMIT 1`, [from]);
    return row ? Number(row.id) : null;
  }

  /** A customer nothing refers to (deletable, re-keyable). */
  private async loneCustomer(tx: Tx): Promise<number | null> {
    const from = (await this.someId(tx, 'customers')) ?? 0;
    const [row] = await tx`
      SELECT id FROM customers c WHERE id >= ${from}
        AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)
        AND NOT EXISTS (SELECT 1 FROM prostheses p WHERE p.customer_id = c.id)
        AND NOT EXISTS (SELECT 1 FROM customer_accounts a WHERE a.customer_id = c.id)
        AND NOT EXISTS (SELECT 1 FROM order_reservations r WHERE r.customer_id = c.id)
      ORDER BY id LIMIT 1`;
    return row ? Number(row.id) : null;
  }

  private async op(tx: Tx): Promise<void> {
    const r = this.r;
    const roll = r.next();
    const tag = `${Date.now().toString(36)}${(this.serial++).toString(36)}${r.int(0, 1e6)}`;
    if (roll < 0.16) {
      await tx`INSERT INTO customers (username, full_name, email, region) VALUES (${`w${tag}`}, ${`Worker ${tag}`}, ${`w${tag}@example.com`}, ${r.pick(['eu', 'us', 'ru'])})`;
    } else if (roll < 0.3) {
      const id = await this.someId(tx, 'customers');
      if (id !== null) await tx`UPDATE customers SET full_name = ${`Renamed ${tag}`}, phone = ${r.next() < 0.3 ? null : `+1 ${r.int(100, 999)}`} WHERE id = ${id}`;
    } else if (roll < 0.36) {
      const id = await this.loneCustomer(tx);
      // Re-keyed below zero: the identity sequence (positive) never collides with it.
      if (id !== null) await tx`UPDATE customers SET id = (SELECT least(min(id), 0) - ${r.int(1, 50)} FROM customers) WHERE id = ${id}`;
    } else if (roll < 0.42) {
      const id = await this.loneCustomer(tx);
      if (id !== null) await tx`DELETE FROM customers WHERE id = ${id}`;
    } else if (roll < 0.56) {
      const c = await this.someId(tx, 'customers');
      if (c !== null) await tx`INSERT INTO orders (customer_id, model_id, price, status) VALUES (${c}, ${r.int(1, 8)}, ${r.int(100, 99999) / 100}, 'DRAFT')`;
    } else if (roll < 0.72) {
      const id = await this.someId(tx, 'orders');
      if (id === null) return;
      await tx`UPDATE orders SET status = ${r.pick(['APPROVED', 'REJECTED', 'NOTIFICATION'])}, version = version + 1 WHERE id = ${id}`;
      // Sometimes the same row again in the same transaction: the later update must win.
      if (r.next() < 0.4) await tx`UPDATE orders SET status = 'FINISHED', note = ${`final ${tag}`}, version = version + 1 WHERE id = ${id}`;
    } else if (roll < 0.78) {
      const id = await this.someId(tx, 'orders');
      if (id !== null) await tx`DELETE FROM orders o WHERE id = ${id} AND NOT EXISTS (SELECT 1 FROM order_reservations r WHERE r.order_id = o.id)`;
    } else if (roll < 0.88) {
      const c = await this.someId(tx, 'customers');
      if (c !== null) {
        await tx`INSERT INTO customer_accounts (customer_id, balance) VALUES (${c}, ${r.int(0, 100000)})
          ON CONFLICT (customer_id) DO UPDATE SET balance = EXCLUDED.balance, version = customer_accounts.version + 1`;
      }
    } else if (roll < 0.97) {
      await tx`INSERT INTO audit_log (actor, action, entity, entity_id, details) VALUES ('workload', ${r.pick(['create', 'update', 'delete'])}, 'order', ${tag}, ${tx.json({ tag, n: r.int(0, 1e9) })})`;
    } else if (roll < 0.985) {
      await tx`UPDATE prosthesis_models SET price = price + 1 WHERE id = ${r.int(1, 8)}`;
    } else if (this.opts.truncates) {
      await tx`TRUNCATE audit_log`;
      await tx`INSERT INTO audit_log (actor, action, entity, details) VALUES ('workload', 'truncated', 'audit_log', '{}')`;
    }
  }
}
