import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config.ts';
import { busConfigOf, busEnvSchema } from './config.ts';

const parse = (env: Record<string, string>) => busConfigOf(busEnvSchema.parse(env));

describe('bus configuration', () => {
  it('uses the PostgreSQL log unless KAFKA_BROKERS is set', () => {
    expect(parse({})).toEqual({ kafka: undefined, defaultPartitions: 8, retentionMinAgeMs: 3_600_000 });
  });

  it('selects Kafka with a broker list, client id, TLS, SASL and a replication override', () => {
    const cfg = parse({
      KAFKA_BROKERS: 'k1:9092, k2:9093,', KAFKA_CLIENT_ID: 'worker-1', KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_REPLICATION_FACTOR: '1', BUS_PARTITIONS: '12',
    });
    expect(cfg).toEqual({
      kafka: { brokers: ['k1:9092', 'k2:9093'], clientId: 'worker-1', ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' }, replicationFactor: 1 },
      defaultPartitions: 12, retentionMinAgeMs: 3_600_000,
    });
  });

  it('names the variable at fault', () => {
    const issues = (env: Record<string, string>) => busEnvSchema.safeParse(env).error?.issues.map((i) => String(i.path[0]));
    expect(issues({ KAFKA_BROKERS: 'no-port' })).toEqual(['KAFKA_BROKERS']);
    expect(issues({ KAFKA_BROKERS: ' , ' })).toEqual(['KAFKA_BROKERS']);
    expect(issues({ BUS_PARTITIONS: '0' })).toEqual(['BUS_PARTITIONS']);
    const thrown = (env: Record<string, string>) => { try { parse(env); return null; } catch (err) { return err as ConfigError; } };
    expect(thrown({ KAFKA_BROKERS: 'k:1', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' })?.problems)
      .toEqual([{ variable: 'KAFKA_SASL_PASSWORD', message: 'is required when KAFKA_SASL_MECHANISM is set' }]);
    const both = thrown({ KAFKA_BROKERS: 'k:1', KAFKA_SASL_MECHANISM: 'plain' });
    expect(both).toBeInstanceOf(ConfigError);
    expect(both?.problems.map((p) => p.variable)).toEqual(['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD']);
  });
});
