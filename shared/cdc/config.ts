/**
 * CDC's part of a worker's configuration, keyed by environment variable names like shared/config.ts.
 * Spread {@link cdcEnv} into the worker's schema and map the parsed values with {@link cdcConfigOf}.
 * Web-standard only (zod), so it can move beside the other fragments in shared/ as it is.
 */
import { z } from 'zod';
import { bool as flag } from '../config-fields.ts';
// Slot and publication names are SQL identifiers we interpolate: keep them plain.
const ident = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case identifier ([a-z_][a-z0-9_]*, ≤ 63 characters)');
const ms = (dflt: number, min: number) => z.coerce.number().int().min(min).max(3_600_000).default(dflt);

export const cdcEnv = {
  /** Run CDC in this worker (capture and sink). */
  CDC_ENABLED: flag.default('true'),
  /** Which halves run here: `capture` (the slot holder), `sink` (consumer of the bus), or both. */
  CDC_ROLE: z.enum(['both', 'capture', 'sink']).default('both'),
  CDC_SLOT: ident.default('bionic_cdc'),
  CDC_PUBLICATION: ident.default('bionic_cdc'),
  /** Comma-separated tables of the CRM's `public` schema; unset: every table with a primary key. */
  CDC_TABLES: z
    .string()
    .transform((s) => s.split(',').map((t) => t.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[a-z_][a-z0-9_]*$/, 'table names must be [a-z_][a-z0-9_]*')).min(1, 'must list at least one table'))
    .optional(),
  /** Interval of the heartbeat written to the WAL, so the slot advances while captured tables are idle. */
  CDC_HEARTBEAT_MS: ms(5_000, 50),
  /** Lag (oldest change not yet in ClickHouse) above which status and metrics raise an alert. */
  CDC_LAG_ALERT_SECONDS: z.coerce.number().min(0.1).max(7 * 24 * 3600).default(60),
  /** WAL retained behind the slot above which an alert is raised; unset: no byte threshold. */
  CDC_LAG_ALERT_BYTES: z.coerce.number().int().min(1).optional(),
  /** Most changes per bus publish and per sink batch. */
  CDC_BATCH_MAX: z.coerce.number().int().min(1).max(100_000).default(2_000),
  /** How often the slot is acknowledged up to what the sink has made durable. */
  CDC_ACK_INTERVAL_MS: ms(500, 10),
  CDC_SINK_GROUP: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/).default('cdc-sink'),
  /** How ClickHouse reaches the CRM database for snapshots, when not by CRM_DATABASE_URL. */
  CDC_SNAPSHOT_SOURCE_URL: z.string().url().optional(),
};

export const cdcEnvSchema = z.object(cdcEnv);
export type CdcEnv = z.output<typeof cdcEnvSchema>;

export interface CdcOptions {
  slot: string;
  publication: string;
  /** `null`: every table of `public` with a primary key. */
  tables: string[] | null;
  capture: boolean;
  sink: boolean;
  heartbeatMs: number;
  lagAlertSeconds: number;
  lagAlertBytes: number | null;
  batchMax: number;
  ackIntervalMs: number;
  sinkGroup: string;
  snapshotSourceUrl: string | null;
  /**
   * Debezium's `topic.prefix`: topics are `<topicPrefix>.public.<table>` (not an env variable; each
   * region's CDC gets `crm_<region>`, shared/cdc/regions.ts).
   */
  topicPrefix: string;
  /** How often status is refreshed into metrics and the alert log (not an env variable). */
  statusIntervalMs: number;
}

/** Everything at its default: what a worker gets with no CDC_* variable set. */
export const CDC_DEFAULTS: Readonly<CdcOptions> = Object.freeze(cdcConfigOf(cdcEnvSchema.parse({})).options);

/** Maps parsed variables to whether CDC runs and its {@link CdcOptions}. */
/** CDC's part of the worker configuration. */
export interface CdcConfig { enabled: boolean; options: CdcOptions }

export function cdcConfigOf(e: CdcEnv): CdcConfig {
  return {
    enabled: e.CDC_ENABLED,
    options: {
      slot: e.CDC_SLOT,
      publication: e.CDC_PUBLICATION,
      tables: e.CDC_TABLES ?? null,
      capture: e.CDC_ROLE !== 'sink',
      sink: e.CDC_ROLE !== 'capture',
      heartbeatMs: e.CDC_HEARTBEAT_MS,
      lagAlertSeconds: e.CDC_LAG_ALERT_SECONDS,
      lagAlertBytes: e.CDC_LAG_ALERT_BYTES ?? null,
      batchMax: e.CDC_BATCH_MAX,
      ackIntervalMs: e.CDC_ACK_INTERVAL_MS,
      sinkGroup: e.CDC_SINK_GROUP,
      snapshotSourceUrl: e.CDC_SNAPSHOT_SOURCE_URL ?? null,
      topicPrefix: 'crm',
      statusIntervalMs: 5_000,
    },
  };
}
