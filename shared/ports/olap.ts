/**
 * OLAP (ClickHouse). Production: a ClickHouse server or cluster; embedded: chDB in-process.
 * Parameters use ClickHouse's `{name:Type}` syntax. 64-bit integers come back as strings.
 */
export type OlapParams = Record<string, unknown>;

export interface Olap {
  query<T = Record<string, unknown>>(sql: string, params?: OlapParams): Promise<T[]>;
  /** DDL and statements without a result set (including INSERT … SELECT). */
  command(sql: string, params?: OlapParams): Promise<void>;
  insert(table: string, rows: readonly Record<string, unknown>[]): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
