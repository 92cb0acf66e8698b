/**
 * The ClickHouse side of CDC: replica tables `crm_<table>` (`ReplacingMergeTree(_version, _deleted)
 * ORDER BY <primary key>`, read with FINAL), CDC's own state table, snapshots bulk-loaded with one
 * `INSERT … SELECT` from PostgreSQL, and tombstones for every row below a version.
 *
 * State lives next to the data it describes: if the ClickHouse data is lost, so is the state, and
 * every table is loaded again.
 */
import type { CdcTableStatus } from '../../shared/ports/cdc.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import { chColumnType, chFromText, chIdent, chString, type ColumnSpec } from './pg-types.ts';

export type TableStatus = CdcTableStatus['status'];

export interface TableState {
  table: string;
  status: TableStatus;
  /** Snapshot version: changes at or below it are already in the replica. 0 before the first snapshot. */
  floor: bigint;
  columns: ColumnSpec[];
  primaryKey: string[];
  reason: string | null;
  snapshotRows: number | null;
}

/** How to split a load: a single integer key, its current range, and how many reads. */
export interface KeySplit { column: string; lo: bigint; hi: bigint; slices: number }

/** `[lo, hi]` cut into at most `slices` inclusive ranges of near-equal width. */
export function keyRanges(s: KeySplit): [bigint, bigint][] {
  if (s.hi < s.lo) return [];
  const n = BigInt(Math.max(1, s.slices));
  const width = (s.hi - s.lo + n) / n;
  const out: [bigint, bigint][] = [];
  for (let lo = s.lo; lo <= s.hi; lo += width) out.push([lo, lo + width - 1n < s.hi ? lo + width - 1n : s.hi]);
  return out;
}

export interface PgAddress { host: string; port: number; database: string; user: string; password: string }

export const replicaName = (table: string) => `crm_${table}`;
const STATE_TABLE = 'cdc_tables';
const TRUNCATE_TABLE = 'cdc_truncations';
const u128 = (v: bigint) => `toUInt128(${chString(v.toString())})`;

/** How ClickHouse's PostgreSQL engine reaches the database of `url`. */
export function pgAddressOf(url: string): PgAddress {
  const u = new URL(url);
  return {
    host: u.hostname, port: Number(u.port || 5432), database: decodeURIComponent(u.pathname.replace(/^\//, '')),
    user: decodeURIComponent(u.username), password: decodeURIComponent(u.password),
  };
}

export class Replica {
  private rev = 0n;

  constructor(private readonly olap: Olap) {}

  async init(): Promise<void> {
    await this.olap.command(`CREATE TABLE IF NOT EXISTS ${STATE_TABLE} (
      table_name String, status LowCardinality(String), floor_version UInt128, columns String, primary_key Array(String),
      reason String, snapshot_rows Nullable(UInt64), updated_at DateTime64(3, 'UTC'), rev UInt64
    ) ENGINE = ReplacingMergeTree(rev) ORDER BY table_name`);
    await this.olap.command(`CREATE TABLE IF NOT EXISTS ${TRUNCATE_TABLE} (table_name String, version UInt128)
      ENGINE = ReplacingMergeTree(version) ORDER BY table_name`);
  }

  /** The version of the newest TRUNCATE the sink applied to `table` (0 when none). */
  async truncatedBelow(table: string): Promise<bigint> {
    const [r] = await this.olap.query<{ v: string }>(`SELECT max(version) AS v FROM ${TRUNCATE_TABLE} WHERE table_name = {t:String}`, { t: table });
    return BigInt(r?.v ?? 0);
  }

  async recordTruncate(table: string, version: bigint): Promise<void> {
    await this.olap.insert(TRUNCATE_TABLE, [{ table_name: table, version: version.toString() }]);
  }

  async states(): Promise<Map<string, TableState>> {
    const rows = await this.olap.query<Record<string, string>>(`SELECT * FROM ${STATE_TABLE} FINAL`);
    const out = new Map<string, TableState>();
    for (const r of rows) {
      if (BigInt(r.rev!) > this.rev) this.rev = BigInt(r.rev!);
      out.set(r.table_name!, {
        table: r.table_name!, status: r.status as TableStatus, floor: BigInt(r.floor_version!), columns: JSON.parse(r.columns!),
        primaryKey: r.primary_key as unknown as string[], reason: r.reason || null,
        snapshotRows: r.snapshot_rows === null || r.snapshot_rows === undefined ? null : Number(r.snapshot_rows),
      });
    }
    return out;
  }

  async save(s: TableState): Promise<void> {
    // One writer (the slot holder); the revision only has to grow.
    const now = BigInt(Date.now()) * 1000n;
    this.rev = now > this.rev ? now : this.rev + 1n;
    await this.olap.insert(STATE_TABLE, [{
      table_name: s.table, status: s.status, floor_version: s.floor.toString(), columns: JSON.stringify(s.columns),
      primary_key: s.primaryKey, reason: s.reason ?? '', snapshot_rows: s.snapshotRows, updated_at: new Date().toISOString(), rev: this.rev.toString(),
    }]);
  }

  /** Column name → ClickHouse type (as `system.columns` spells it), without `_version` and `_deleted`. */
  async columns(table: string): Promise<Map<string, string>> {
    const rows = await this.olap.query<{ name: string; type: string }>(
      'SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String} ORDER BY position',
      { t: replicaName(table) },
    );
    return new Map(rows.filter((r) => r.name !== '_version' && r.name !== '_deleted').map((r) => [r.name, r.type]));
  }

  /** Creates the replica; an existing one whose columns differ is dropped first (or always, with `replace`). */
  async ensureTable(table: string, columns: readonly ColumnSpec[], primaryKey: readonly string[], opts: { replace?: boolean } = {}): Promise<'created' | 'kept' | 'replaced'> {
    const existing = await this.columns(table);
    const same = existing.size === columns.length && columns.every((c) => existing.get(c.name) === chColumnType(c));
    if (existing.size > 0 && same && !opts.replace) return 'kept';
    if (existing.size > 0) await this.olap.command(`DROP TABLE IF EXISTS ${replicaName(table)} SYNC`);
    await this.olap.command(`CREATE TABLE ${replicaName(table)} (
      ${columns.map((c) => `${chIdent(c.name)} ${chColumnType(c)}`).join(',\n      ')},
      _version UInt128, _deleted UInt8
    ) ENGINE = ReplacingMergeTree(_version, _deleted) ORDER BY (${primaryKey.map(chIdent).join(', ')})`);
    return existing.size > 0 ? 'replaced' : 'created';
  }

  /** Adds a column; `defaultText` is PostgreSQL's text of the value existing rows show. */
  async addColumn(table: string, c: ColumnSpec, defaultText: string | null): Promise<void> {
    const dflt = defaultText === null ? '' : ` DEFAULT ${chFromText(chString(defaultText), c)}`;
    await this.olap.command(`ALTER TABLE ${replicaName(table)} ADD COLUMN IF NOT EXISTS ${chIdent(c.name)} ${chColumnType(c)}${dflt}`);
  }

  /**
   * Loads the whole table as of now with `_version = floor`, reading PostgreSQL's text through a
   * transient PostgreSQL-engine table (every column declared String, converted here exactly as the
   * stream's values are), so ClickHouse does the work in one statement. Returns the rows at `floor`.
   *
   * With `split` (a single integer key and its range), the read is several PostgreSQL queries over
   * disjoint key ranges, run in parallel: ClickHouse parses each PostgreSQL stream on one thread, so
   * one stream leaves the other core idle. A row moving between ranges meanwhile is a key change
   * after the snapshot point, streamed anyway (snapshots.ts), so ranges read at different moments are fine.
   */
  async snapshot(table: string, columns: readonly ColumnSpec[], floor: bigint, src: PgAddress, split?: KeySplit): Promise<number> {
    const source = `_cdc_src_${table}`;
    const declared = (c: ColumnSpec) => (split && c.name === split.column ? c.chType : c.nullable ? 'Nullable(String)' : 'String');
    await this.olap.command(`DROP TABLE IF EXISTS ${source}`);
    await this.olap.command(`CREATE TABLE ${source} (${columns.map((c) => `${chIdent(c.name)} ${declared(c)}`).join(', ')})
      ENGINE = PostgreSQL(${[`${src.host}:${src.port}`, src.database, table, src.user, src.password, 'public'].map(chString).join(', ')})`);
    try {
      const ranges = split ? keyRanges(split) : [];
      const from = ranges.length > 1
        ? `(${ranges.map(([lo, hi]) => `SELECT * FROM ${source} WHERE ${chIdent(split!.column)} >= ${lo} AND ${chIdent(split!.column)} <= ${hi}`).join(' UNION ALL ')})`
        : source;
      await this.olap.command(`INSERT INTO ${replicaName(table)} (${columns.map((c) => chIdent(c.name)).join(', ')}, _version, _deleted)
        SELECT ${columns.map((c) => chFromText(chIdent(c.name), c)).join(', ')}, ${u128(floor)}, 0 FROM ${from}
        SETTINGS max_threads = ${Math.max(2, ranges.length)}`);
    } finally {
      await this.olap.command(`DROP TABLE IF EXISTS ${source}`);
    }
    const [r] = await this.olap.query<{ n: string }>(`SELECT count() AS n FROM ${replicaName(table)} WHERE _version = ${u128(floor)} AND _deleted = 0`);
    return Number(r?.n ?? 0);
  }

  /** Marks deleted, at `version`, every live row whose latest version is below it (after a snapshot; for a TRUNCATE). */
  async tombstoneBelow(table: string, primaryKey: readonly string[], version: bigint): Promise<void> {
    const pk = primaryKey.map(chIdent).join(', ');
    // The version filter runs on FINAL's output: on the latest row per key, never on older ones.
    await this.olap.command(`INSERT INTO ${replicaName(table)} (${pk}, _version, _deleted)
      SELECT ${pk}, ${u128(version)}, 1 FROM (SELECT ${pk}, _version FROM ${replicaName(table)} FINAL) WHERE _version < ${u128(version)}`);
  }

  insert(table: string, rows: readonly Record<string, unknown>[]): Promise<void> {
    return this.olap.insert(replicaName(table), rows);
  }
}
