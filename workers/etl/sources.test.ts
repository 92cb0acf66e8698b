import { describe, expect, it } from 'vitest';
import { etlSources, postgresTable, scrub } from './sources.ts';

describe('ETL sources', () => {
  it('turns a postgres URL into a postgresql() call, quoting what needs quoting', () => {
    const t = postgresTable("postgres://etl%40ro:pa'ss%5Cword@db.internal:6432/telemetry", 'telemetry_events');
    expect(t.expr).toBe("postgresql('db.internal:6432', 'telemetry', 'telemetry_events', 'etl@ro', 'pa\\'ss\\\\word')");
    expect(t.password).toBe("pa'ss\\word");
    expect(postgresTable('postgres://u:p@10.0.0.5/crm', 'customers', 'pg.cluster:5432').expr).toContain("'pg.cluster:5432', 'crm'");
  });

  it('reads CRM from PostgreSQL or from the CDC replicas, and knows every password to scrub', () => {
    const pg = etlSources({ telemetryUrl: 'postgres://u:tele-secret@h:1/telemetry', crmUrl: 'postgres://u:crm-secret@h:1/crm', crmSource: 'postgres' });
    expect(pg.chipOwners).toContain("'crm', 'prostheses'");
    expect(pg.secrets.sort()).toEqual(['crm-secret', 'tele-secret']);
    const ch = etlSources({ telemetryUrl: 'postgres://u:tele-secret@h:1/telemetry', crmUrl: 'postgres://u:crm-secret@h:1/crm', crmSource: 'clickhouse' });
    expect(ch.chipOwners).toContain('crm_prostheses FINAL WHERE _deleted = 0');
    expect(ch.chipOwners).not.toContain('postgresql(');
    expect(scrub(`Code: 47. while reading ${pg.chipOwners}`, pg.secrets)).not.toMatch(/secret/);
  });
});
