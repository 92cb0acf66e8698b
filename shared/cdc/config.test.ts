import { describe, expect, it } from 'vitest';
import { CDC_DEFAULTS, cdcConfigOf, cdcEnvSchema } from './config.ts';

describe('CDC configuration', () => {
  it('runs capture and sink on every table by default', () => {
    expect(cdcConfigOf(cdcEnvSchema.parse({}))).toEqual({ enabled: true, options: CDC_DEFAULTS });
    expect(CDC_DEFAULTS).toMatchObject({ slot: 'bionic_cdc', publication: 'bionic_cdc', tables: null, capture: true, sink: true, heartbeatMs: 5_000, lagAlertSeconds: 60, batchMax: 2_000 });
  });

  it('reads every variable', () => {
    const { enabled, options } = cdcConfigOf(cdcEnvSchema.parse({
      CDC_ENABLED: 'false', CDC_ROLE: 'sink', CDC_SLOT: 'crm_slot', CDC_TABLES: 'orders, customers,', CDC_HEARTBEAT_MS: '250',
      CDC_LAG_ALERT_SECONDS: '2.5', CDC_LAG_ALERT_BYTES: '1048576', CDC_BATCH_MAX: '500', CDC_SNAPSHOT_SOURCE_URL: 'postgres://u:p@db:5432/crm',
    }));
    expect(enabled).toBe(false);
    expect(options).toMatchObject({
      slot: 'crm_slot', tables: ['orders', 'customers'], capture: false, sink: true, heartbeatMs: 250, lagAlertSeconds: 2.5,
      lagAlertBytes: 1_048_576, batchMax: 500, snapshotSourceUrl: 'postgres://u:p@db:5432/crm',
    });
  });

  it('names the variable at fault', () => {
    const bad = (env: Record<string, string>) => cdcEnvSchema.safeParse(env).error?.issues.map((i) => String(i.path[0]));
    expect(bad({ CDC_SLOT: 'Bad-Slot' })).toEqual(['CDC_SLOT']);
    expect(bad({ CDC_TABLES: ' , ' })).toEqual(['CDC_TABLES']);
    expect(bad({ CDC_TABLES: 'public.orders' })).toEqual(['CDC_TABLES']);
    expect(bad({ CDC_HEARTBEAT_MS: '0' })).toEqual(['CDC_HEARTBEAT_MS']);
    expect(bad({ CDC_ROLE: 'all' })).toEqual(['CDC_ROLE']);
  });
});
