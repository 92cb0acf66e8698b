/**
 * Where the ETL reads from, as ClickHouse expressions: telemetry through the `postgresql()` table
 * function, CRM either the same way or from the CDC replicas `crm_<table>` in ClickHouse
 * (`ETL_CRM_SOURCE`). Credentials end up in statement text, so every password is also listed in
 * `secrets` for scrubbing from errors before they are stored or returned.
 *
 * A reading belongs to the CRM customer owning its chip (`prostheses.chip_id` → `customer_id`), and
 * `user_id` is that customer's identity-provider subject (`customers.idp_subject`, the `sub` the
 * reports are keyed by). Customers without a subject yet are skipped; when one gets linked, the ETL
 * recomputes their devices' history (job.ts, repairs.ts).
 */
export interface EtlSources {
  /** `postgresql(…)` reading `telemetry_events`. */
  telemetryEvents: string;
  /** A table expression for a CRM table: live rows only. */
  crm(table: CrmTable): string;
  /** A subquery yielding `(chip_id, user_id)` for every device whose owner has a subject. */
  chipOwners: string;
  secrets: string[];
}

/** The CRM tables the ETL reads (models only for the pseudonymised analytics' model kind). */
export type CrmTable = 'prostheses' | 'customers' | 'prosthesis_models';

export interface SourceOptions {
  telemetryUrl: string;
  crmUrl: string;
  crmSource: 'postgres' | 'clickhouse';
  /** `host:port` of PostgreSQL as ClickHouse reaches it (default: the URLs' own). */
  pgAddress?: string;
}

// ClickHouse string literal: backslash and quote escaped.
const lit = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** `postgresql('host:port', 'db', 'table', 'user', 'password')` for a `postgres://` URL. */
export function postgresTable(url: string, table: string, address?: string): { expr: string; password: string } {
  const u = new URL(url);
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const user = decodeURIComponent(u.username || 'postgres');
  const password = decodeURIComponent(u.password);
  const hostPort = address ?? `${u.hostname.replace(/^\[|\]$/g, '')}:${u.port || '5432'}`;
  return { expr: `postgresql(${[hostPort, db, table, user, password].map(lit).join(', ')})`, password };
}

export function etlSources(o: SourceOptions): EtlSources {
  const events = postgresTable(o.telemetryUrl, 'telemetry_events', o.pgAddress);
  const secrets = [events.password];
  const crm = (table: CrmTable) => {
    // The CDC replicas are ReplacingMergeTree(_version, _deleted): newest version, deleted rows dropped.
    if (o.crmSource === 'clickhouse') return `(SELECT * FROM crm_${table} FINAL WHERE _deleted = 0)`;
    const t = postgresTable(o.crmUrl, table, o.pgAddress);
    if (!secrets.includes(t.password)) secrets.push(t.password);
    return t.expr;
  };
  const chipOwners = `SELECT p.chip_id AS chip_id, assumeNotNull(c.idp_subject) AS user_id
    FROM ${crm('prostheses')} AS p INNER JOIN ${crm('customers')} AS c ON c.id = p.customer_id
    WHERE c.idp_subject IS NOT NULL`;
  return { telemetryEvents: events.expr, crm, chipOwners, secrets: secrets.filter(Boolean) };
}

/** Replaces every secret in `text` (error messages may quote the statement). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join('[REDACTED]');
  return out;
}
