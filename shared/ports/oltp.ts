/**
 * OLTP (PostgreSQL). One instance per database (crm, telemetry, platform).
 * Parameters are positional (`$1`, `$2`, …).
 */
export interface OltpQueryable {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface Oltp extends OltpQueryable {
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: OltpQueryable) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type DatabaseName = 'crm' | 'telemetry' | 'platform';
