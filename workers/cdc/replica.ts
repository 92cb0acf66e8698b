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
   */
  async snapshot(table: string, columns: readonly ColumnSpec[], floor: bigint, src: PgAddress): Promise<number> {
    const source = `_cdc_src_${table}`;
    await this.olap.command(`DROP TABLE IF EXISTS ${source}`);
    await this.olap.command(`CREATE TABLE ${source} (${columns.map((c) => `${chIdent(c.name)} ${c.nullable ? 'Nullable(String)' : 'String'}`).join(', ')})
      ENGINE = PostgreSQL(${[`${src.host}:${src.port}`, src.database, table, src.user, src.password, 'public'].map(chString).join(', ')})`);
    try {
      await this.olap.command(`INSERT INTO ${replicaName(table)} (${columns.map((c) => chIdent(c.name)).join(', ')}, _version, _deleted)
        SELECT ${columns.map((c) => chFromText(chIdent(c.name), c)).join(', ')}, ${u128(floor)}, 0 FROM ${source}`);
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
