/**
 * The bus's part of a worker's configuration, keyed by environment variable names like
 * shared/config.ts. Spread {@link busEnv} into the worker's schema and map with {@link busConfigOf}.
 * Kafka is used when `KAFKA_BROKERS` is set; otherwise the PostgreSQL log in the platform database.
 */
import { z } from 'zod';
import { bool as flag, ConfigError } from '../config-fields.ts';

const broker = z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'each broker must be host:port');

export const busEnv = {
  /** Comma-separated `host:port` list; setting it selects the Kafka adapter. */
  KAFKA_BROKERS: z
    .string()
    .transform((s) => s.split(',').map((b) => b.trim()).filter(Boolean))
    .pipe(z.array(broker).min(1, 'must list at least one broker'))
    .optional(),
  KAFKA_CLIENT_ID: z.string().min(1).default('bionicpro'),
  KAFKA_SSL: flag.default('false'),
  KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  /** Replication factor of every topic the workers create, overriding topics.json (1 for a single broker). */
  KAFKA_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(32).optional(),
  /** Partitions of topics created on first use (topics.json sets the production ones). */
  BUS_PARTITIONS: z.coerce.number().int().min(1).max(4096).default(8),
  /** PostgreSQL log: messages every group has passed are deleted once older than this. */
  BUS_RETENTION_MIN_AGE_MS: z.coerce.number().int().min(0).default(3_600_000),
};

export const busEnvSchema = z.object(busEnv);
export type BusEnv = z.output<typeof busEnvSchema>;

export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  ssl: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  /** Overrides the replication factor of every topic created (absent: topics.json, else the broker's default). */
  replicationFactor?: number;
}

export interface BusConfig {
  /** Present when the Kafka adapter is selected. */
  kafka?: KafkaConfig;
  defaultPartitions: number;
  retentionMinAgeMs: number;
}

/** Maps parsed variables to {@link BusConfig}; throws {@link ConfigError} on inconsistent SASL settings. */
export function busConfigOf(e: BusEnv): BusConfig {
  let sasl: KafkaConfig['sasl'];
  if (e.KAFKA_SASL_MECHANISM) {
    const missing = (['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const).filter((v) => !e[v]);
    if (missing.length) {
      throw new ConfigError(missing.map((variable) => ({ variable, message: 'is required when KAFKA_SASL_MECHANISM is set' })));
    }
    sasl = { mechanism: e.KAFKA_SASL_MECHANISM, username: e.KAFKA_SASL_USERNAME!, password: e.KAFKA_SASL_PASSWORD! };
  }
  return {
    kafka: e.KAFKA_BROKERS
      ? { brokers: e.KAFKA_BROKERS, clientId: e.KAFKA_CLIENT_ID, ssl: e.KAFKA_SSL, sasl, replicationFactor: e.KAFKA_REPLICATION_FACTOR }
      : undefined,
    defaultPartitions: e.BUS_PARTITIONS,
    retentionMinAgeMs: e.BUS_RETENTION_MIN_AGE_MS,
  };
}
