/**
 * The ETL's part of a worker's configuration (spread into the worker schema in shared/config.ts),
 * keyed by environment variable names. The cron expression's fields are checked here; croner parses
 * it fully when the worker starts (shared/ stays free of scheduler code).
 */
import { z } from 'zod';
import { bool } from '../config-fields.ts';

const hostPort = z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port');

export const etlEnv = {
  /** Run the schedule in this worker (etl.run and the CLI work either way). */
  ETL_ENABLED: bool.default('true'),
  ETL_CRON: z.string().trim().refine((s) => [5, 6].includes(s.split(/\s+/).length), 'must be a cron expression of 5 or 6 fields').default('*/15 * * * *'),
  ETL_LATE_ALLOWANCE_MINUTES: z.coerce.number().int().min(0).max(7 * 24 * 60).default(120),
  /** Where chip → user comes from: CRM in PostgreSQL, or the CDC replicas `crm_*` in ClickHouse. */
  ETL_CRM_SOURCE: z.enum(['postgres', 'clickhouse']).default('postgres'),
  ETL_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(4),
  ETL_RETRY_INITIAL_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  /** PostgreSQL's address as ClickHouse reaches it, when that differs from the worker's view. */
  ETL_PG_ADDRESS_FOR_CLICKHOUSE: hostPort.optional(),
  /** Parallel reads from PostgreSQL per run (time slices of the window). */
  ETL_READ_SLICES: z.coerce.number().int().min(1).max(16).default(2),
  /** Run once at start when the job has never succeeded, instead of waiting for the first cron tick. */
  ETL_RUN_ON_START: bool.default('false'),
};

export const etlEnvSchema = z.object(etlEnv);
export type EtlEnv = z.output<typeof etlEnvSchema>;

export interface EtlConfig {
  enabled: boolean;
  cron: string;
  lateAllowanceMs: number;
  crmSource: 'postgres' | 'clickhouse';
  retry: { maximumAttempts: number; initialIntervalMs: number; backoffCoefficient: number; maximumIntervalMs: number };
  pgAddressForClickHouse?: string;
  readSlices: number;
  runOnStart: boolean;
}

export function etlConfigOf(e: EtlEnv): EtlConfig {
  return {
    enabled: e.ETL_ENABLED,
    cron: e.ETL_CRON,
    lateAllowanceMs: e.ETL_LATE_ALLOWANCE_MINUTES * 60_000,
    crmSource: e.ETL_CRM_SOURCE,
    retry: { maximumAttempts: e.ETL_MAX_ATTEMPTS, initialIntervalMs: e.ETL_RETRY_INITIAL_SECONDS * 1000, backoffCoefficient: 2, maximumIntervalMs: 15 * 60_000 },
    pgAddressForClickHouse: e.ETL_PG_ADDRESS_FOR_CLICKHOUSE,
    readSlices: e.ETL_READ_SLICES,
    runOnStart: e.ETL_RUN_ON_START,
  };
}

/** Defaults for code that builds an ETL without parsing an environment (tests, benchmarks). */
export const DEFAULT_ETL_CONFIG: EtlConfig = etlConfigOf(etlEnvSchema.parse({}));
