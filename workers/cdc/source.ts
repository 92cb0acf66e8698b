/**
 * The CRM side of CDC over a small postgres.js pool: the publication and the permanent slot, the
 * catalog of captured tables, heartbeats and signals written into the WAL, and the slot's health.
 *
 * Heartbeats and signals are transactional logical messages (`pg_logical_emit_message`), so they
 * reach the capture through the slot in commit order with everything else: a signal's commit LSN
 * is exactly the point a resync's snapshot stands for. The role needs REPLICATION and EXECUTE on
 * `pg_logical_emit_message` (superusers have both).
 */
import postgres from 'postgres';
import type { CdcSlotStatus } from '../../shared/ports/cdc.ts';
import { parseLsn } from './lsn.ts';
import { chTypeOf, decoderFor, pgIdent, type ColumnSpec } from './pg-types.ts';

/** Not captured unless named: migrations' ledger, the bus's dedupe table, the saga's stored replies. */
// `notifications`: the saga's messages to customers (crm/003_notifications.sql), read through KV, not analytics.
const BOOKKEEPING = /^(schema_migrations|bus_.*|saga_.*|notifications)$/;

export const HEARTBEAT_PREFIX = 'bionic.cdc.heartbeat';
export const SIGNAL_PREFIX = 'bionic.cdc.signal';

/** `initial`: load a table that has no replica yet; `resync`: reload (and rebuild if its schema changed). */
export interface Signal { type: 'initial' | 'resync'; table: string; id: string }

export interface SourceTable { name: string; oid: number; primaryKey: string[]; columns: ColumnSpec[] }

/** The slot as `cdc.status` reports it (an existing one), plus the WAL it holds back. */
export interface SlotInfo extends Omit<CdcSlotStatus, 'exists'> {
  lagBytes: number;
  retainedBytes: number;
}

export interface NewColumnInfo { missingValue: string | null; defaultExpr: string | null }

const TABLES = `
SELECT c.oid::int AS oid, c.relname AS name, c.relreplident AS replident,
  (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i
     CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
   WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND ($1::text[] IS NULL OR c.relname = ANY($1::text[]))
ORDER BY c.relname`;

const COLUMNS = `
SELECT a.attrelid::int AS oid, a.attname AS name, a.atttypid::int AS type_oid, a.atttypmod AS type_mod
FROM pg_attribute a
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attrelid, a.attnum`;

const SLOT = `
SELECT slot_name, active, active_pid, confirmed_flush_lsn::text, restart_lsn::text, wal_status,
  pg_current_wal_lsn()::text AS current_lsn,
  COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::float8 AS lag_bytes,
  COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::float8 AS retained_bytes
FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`;

// 32-bit xids from pgoutput, widened with the current epoch (one less if they would lie in the future),
// that a snapshot taken now would still not see.
const INVISIBLE = `
WITH s AS (SELECT pg_current_snapshot() AS snap, pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax)
SELECT count(*)::int AS n FROM s, unnest($1::bigint[]) AS x
WHERE NOT pg_visible_in_snapshot((CASE WHEN ((s.xmax >> 32) << 32 | x) >= s.xmax
  THEN (((s.xmax >> 32) - 1) << 32 | x) ELSE ((s.xmax >> 32) << 32 | x) END)::text::xid8, s.snap)`;

export class CrmSource {
  readonly sql: postgres.Sql;

  constructor(url: string, readonly names: { slot: string; publication: string }) {
    // Text output fixed as on the replication session, so values read here decode the same way.
    this.sql = postgres(url, {
      max: 4, onnotice: () => {},
      connection: { application_name: 'bionicpro-cdc', TimeZone: 'UTC', DateStyle: 'ISO', IntervalStyle: 'postgres', extra_float_digits: '1', bytea_output: 'hex' },
    });
  }

  /**
   * Tables of `public` with their primary key and columns: those named, or every table with a primary
   * key except bookkeeping (`schema_migrations`, `bus_*`, `saga_*`, `notifications`). `problems` says why a table cannot be captured.
   */
  async tables(names: readonly string[] | null): Promise<{ tables: SourceTable[]; problems: { table: string; reason: string }[] }> {
    const rows = await this.sql.unsafe(TABLES, [names ? [...names] : null]);
    const problems: { table: string; reason: string }[] = [];
    for (const n of names ?? []) if (!rows.some((r) => r.name === n)) problems.push({ table: n, reason: 'no such table in schema public' });
    // Unless tables are named, bookkeeping tables that travel with their own subsystems stay out.
    const candidates = names ? rows : rows.filter((r) => !BOOKKEEPING.test(r.name));
    const ok = candidates.filter((r) => {
      const reason = !/^[a-z_][a-z0-9_]*$/.test(r.name) ? 'its name is not [a-z_][a-z0-9_]* (topic and replica names derive from it)'
        : !r.pk ? 'it has no primary key' : !['d', 'f'].includes(r.replident) ? 'its REPLICA IDENTITY is neither DEFAULT nor FULL' : null;
      if (reason && (names || r.pk)) problems.push({ table: r.name, reason });
      return !reason;
    });
    const cols = ok.length ? await this.sql.unsafe(COLUMNS, [ok.map((r) => r.oid)]) : [];
    return {
      problems,
      tables: ok.map((r) => ({
        name: r.name as string, oid: r.oid as number, primaryKey: r.pk as string[],
        columns: cols.filter((c) => c.oid === r.oid).map((c) => ({
          name: c.name as string, typeOid: c.type_oid as number, typeMod: c.type_mod as number,
          chType: chTypeOf(c.type_oid, c.type_mod),
          // Every column but the key is Nullable in the replica: a later DROP NOT NULL must not turn NULLs into defaults.
          nullable: !(r.pk as string[]).includes(c.name),
        })),
      })),
    };
  }

  /** Runs `fn` while holding a session lock on the CRM, so workers starting together set CDC up one at a time. */
  async exclusively<T>(fn: () => Promise<T>): Promise<T> {
    const conn = await this.sql.reserve();
    try {
      await conn`SELECT pg_advisory_lock(hashtext(${`bionic_cdc:setup:${this.names.slot}`}))`;
      return await fn();
    } finally {
      await conn`SELECT pg_advisory_unlock(hashtext(${`bionic_cdc:setup:${this.names.slot}`}))`.catch(() => {});
      conn.release();
    }
  }

  /** Tables in the publication, or `null` when it does not exist. */
  async publicationTables(): Promise<string[] | null> {
    const [pub] = await this.sql`SELECT 1 FROM pg_publication WHERE pubname = ${this.names.publication}`;
    if (!pub) return null;
    const rows = await this.sql`SELECT tablename FROM pg_publication_tables WHERE pubname = ${this.names.publication} AND schemaname = 'public' ORDER BY tablename`;
    return rows.map((r) => r.tablename as string);
  }

  async createPublication(tables: readonly string[]): Promise<void> {
    const list = tables.map((t) => `public.${pgIdent(t)}`).join(', ');
    await this.sql.unsafe(`CREATE PUBLICATION ${pgIdent(this.names.publication)} ${list ? `FOR TABLE ${list}` : ''} WITH (publish_via_partition_root = true)`);
  }

  async alterPublication(add: readonly string[], drop: readonly string[]): Promise<void> {
    const pub = pgIdent(this.names.publication);
    if (add.length) await this.sql.unsafe(`ALTER PUBLICATION ${pub} ADD TABLE ${add.map((t) => `public.${pgIdent(t)}`).join(', ')}`);
    if (drop.length) await this.sql.unsafe(`ALTER PUBLICATION ${pub} DROP TABLE ${drop.map((t) => `public.${pgIdent(t)}`).join(', ')}`);
  }

  async dropPublication(): Promise<void> {
    await this.sql.unsafe(`DROP PUBLICATION IF EXISTS ${pgIdent(this.names.publication)}`);
  }

  async slot(): Promise<SlotInfo | null> {
    const [r] = await this.sql.unsafe(SLOT, [this.names.slot]);
    if (!r) return null;
    return {
      name: r.slot_name, active: r.active, activePid: r.active_pid, confirmedFlushLsn: r.confirmed_flush_lsn, restartLsn: r.restart_lsn,
      walStatus: r.wal_status, currentLsn: r.current_lsn, lagBytes: Number(r.lag_bytes), retainedBytes: Number(r.retained_bytes),
    };
  }

  async currentLsn(): Promise<string> {
    const [r] = await this.sql`SELECT pg_current_wal_lsn()::text AS lsn`;
    return r!.lsn as string;
  }

  /** Creates the permanent pgoutput slot; returns its consistent point. */
  async createSlot(): Promise<bigint> {
    const [r] = await this.sql`SELECT lsn::text FROM pg_create_logical_replication_slot(${this.names.slot}, 'pgoutput')`;
    return parseLsn(r!.lsn as string);
  }

  /** Drops the slot; `force` first ends the session streaming from it. Returns false when there was none. */
  async dropSlot(opts: { force?: boolean } = {}): Promise<boolean> {
    const slot = await this.slot();
    if (!slot) return false;
    if (slot.active && slot.activePid) {
      if (!opts.force) throw new Error(`replication slot ${slot.name} is in use by backend ${slot.activePid}: stop CDC first, or use --force`);
      await this.sql`SELECT pg_terminate_backend(${slot.activePid})`;
      for (let i = 0; i < 100 && (await this.slot())?.active; i++) await new Promise((r) => setTimeout(r, 50));
    }
    await this.sql`SELECT pg_drop_replication_slot(${this.names.slot})`;
    return true;
  }

  /** The smallest and largest value of an integer column (a primary key: an index answers), or null when the table is empty. */
  async keyRange(table: string, column: string): Promise<{ lo: bigint; hi: bigint } | null> {
    const [r] = await this.sql.unsafe(`SELECT min(${pgIdent(column)})::text AS lo, max(${pgIdent(column)})::text AS hi FROM public.${pgIdent(table)}`);
    return r?.lo == null ? null : { lo: BigInt(r.lo as string), hi: BigInt(r.hi as string) };
  }

  /** Writes a heartbeat carrying `at` (epoch ms, when it was sent). */
  async heartbeat(at = Date.now()): Promise<void> {
    await this.sql`SELECT pg_logical_emit_message(true, ${HEARTBEAT_PREFIX}, ${String(at)})`;
  }

  /** Writes signals in one transaction; returns the WAL position after it. */
  async signal(signals: readonly Signal[]): Promise<string> {
    await this.sql`SELECT pg_logical_emit_message(true, ${SIGNAL_PREFIX}, s) FROM unnest(${signals.map((s) => JSON.stringify(s))}::text[]) AS s`;
    return this.currentLsn();
  }

  /** What the catalog says now about a column the stream just showed for the first time. */
  async newColumn(relationOid: number, name: string): Promise<NewColumnInfo | null> {
    const [r] = await this.sql`
      SELECT CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END AS missing,
             pg_get_expr(d.adbin, d.adrelid) AS default_expr
      FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = ${relationOid} AND a.attname = ${name} AND NOT a.attisdropped`;
    return r ? { missingValue: r.missing ?? null, defaultExpr: r.default_expr ?? null } : null;
  }

  /**
   * The current values of some columns of one row (by primary key, values as in the envelope), decoded
   * like the stream's; `null` when the row is gone. Fills in TOASTed values an update left unchanged.
   */
  async currentValues(table: string, primaryKey: readonly string[], key: Record<string, unknown>, columns: readonly { name: string; typeOid: number; typeMod: number }[]): Promise<Record<string, unknown> | null> {
    const where = primaryKey.map((k, i) => `${pgIdent(k)} = $${i + 1}`).join(' AND ');
    const [row] = await this.sql.unsafe(
      `SELECT ${columns.map((c) => `${pgIdent(c.name)}::text AS ${pgIdent(c.name)}`).join(', ')} FROM public.${pgIdent(table)} WHERE ${where}`,
      primaryKey.map((k) => String(key[k])),
    );
    if (!row) return null;
    return Object.fromEntries(columns.map((c) => [c.name, row[c.name] === null ? null : decoderFor(c.typeOid, c.typeMod)(row[c.name] as string)]));
  }

  /**
   * Waits until transactions the stream delivered are visible to new snapshots. A commit reaches the
   * WAL (and the slot) a moment before the committing backend leaves the proc array; a snapshot taken
   * in that moment would miss it, so a snapshot standing for "everything up to here" waits first.
   */
  async waitVisible(xids: readonly number[], signal?: AbortSignal, timeoutMs = 30_000): Promise<boolean> {
    if (xids.length === 0) return true;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [r] = await this.sql.unsafe(INVISIBLE, [xids.map(String)]);
      if (r!.n === 0) return true;
      if (signal?.aborted || Date.now() > deadline) return false;
      await new Promise((res) => setTimeout(res, 5));
    }
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}
