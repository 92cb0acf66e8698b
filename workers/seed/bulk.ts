/**
 * Bulk loading with `INSERT … SELECT * FROM unnest($1::type[], …)`: one statement per few thousand
 * rows, each column sent as one array literal. About as fast as COPY here (PostgreSQL's index
 * maintenance dominates either way) and, unlike postgres.js 3.4's COPY writable — which never settles
 * when the server rejects the data after the last write (porsager/postgres#1173) — a failure rejects
 * like any query and rolls the transaction back.
 */
import type postgres from 'postgres';

export type PgType = 'text' | 'timestamptz' | 'int2' | 'int4' | 'int8' | 'real' | 'numeric' | 'uuid';

/** Column name, type, and whether its values never need quoting (see {@link arrayLiteral}). */
export type ColumnSpec<K extends string = string> = readonly [K, PgType, plain?: boolean];

/** A value as PostgreSQL's text input reads it; `null` is SQL NULL. */
export type Cell = string | null;

// Elements with these characters (or the word NULL) must be quoted inside an array literal.
const NEEDS_QUOTES = /[",\\{}\s]|^null$|^$/i;

/**
 * Renders one column as a PostgreSQL array literal. `plain` promises that no value needs quoting
 * (identifiers, numbers, timestamps, UUIDs): it skips the per-value check, a third of the cost.
 */
export function arrayLiteral(values: readonly Cell[], plain = false): string {
  if (plain) {
    let out = '{';
    for (let i = 0; i < values.length; i++) out += (i > 0 ? ',' : '') + (values[i] ?? 'NULL');
    return out + '}';
  }
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ',';
    if (v === null || v === undefined) out += 'NULL';
    else if (NEEDS_QUOTES.test(v)) out += '"' + v.replace(/["\\]/g, '\\$&') + '"';
    else out += v;
  }
  return out + '}';
}

/** Rows of one table buffered column by column. */
export class ColumnBuffer<K extends string> {
  readonly cols: Record<K, Cell[]>;
  readonly statement: string;

  constructor(table: string, private readonly columns: readonly ColumnSpec<K>[]) {
    this.cols = Object.fromEntries(columns.map(([name]) => [name, []])) as unknown as Record<K, Cell[]>;
    const names = columns.map(([n]) => `"${n}"`).join(', ');
    const arrays = columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ');
    this.statement = `INSERT INTO "${table}" (${names}) SELECT * FROM unnest(${arrays})`;
  }

  get length(): number {
    return this.cols[this.columns[0]![0]].length;
  }

  push(row: Record<K, Cell>): void {
    for (const [name] of this.columns) this.cols[name].push(row[name]);
  }

  /** The buffered rows as statement parameters; empties the buffer (keeping the same arrays). */
  take(): string[] {
    return this.columns.map(([name, , plain]) => {
      const lit = arrayLiteral(this.cols[name], plain);
      this.cols[name].length = 0;
      return lit;
    });
  }
}

/**
 * Sends buffers' rows over one connection, keeping up to `depth` statements in flight so the
 * caller generates the next rows while the server inserts the previous ones.
 */
export class BulkWriter {
  private inFlight: Promise<unknown>[] = [];

  constructor(private readonly sql: postgres.Sql | postgres.TransactionSql, private readonly depth = 2) {}

  async flush<K extends string>(buf: ColumnBuffer<K>): Promise<void> {
    if (buf.length === 0) return;
    // postgres.js queries are lazy: `then` sends it. The side `catch` only marks the rejection as
    // handled until we await it below, where it surfaces.
    const p = Promise.resolve(this.sql.unsafe(buf.statement, buf.take()));
    p.catch(() => {});
    this.inFlight.push(p);
    while (this.inFlight.length > this.depth) await this.inFlight.shift();
  }

  /** Waits for every statement sent; throws the first failure. */
  async drain(): Promise<void> {
    const all = this.inFlight;
    this.inFlight = [];
    const results = await Promise.allSettled(all);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
