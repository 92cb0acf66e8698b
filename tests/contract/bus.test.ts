/**
 * The bus contract against the PostgreSQL log (embedded PostgreSQL in a temp directory, always) and
 * against Kafka (only when KAFKA_BROKERS points at a broker; reported as skipped otherwise).
 */
import { afterAll, beforeAll } from 'vitest';
import { createKafkaBus } from '../../workers/bus/kafka-bus.ts';
import { createPostgresBus } from '../../workers/bus/postgres-bus.ts';
import { startPlatformDb, type PlatformDb } from '../support/platform-db.ts';
import { busContract, type BusUnderTest } from './bus-contract.ts';
import { testCodec, type TestTopics } from './bus-support.ts';

const PARTITIONS = 4;
let db: PlatformDb;

beforeAll(async () => { db = await startPlatformDb('bus-contract'); }, 120_000);
afterAll(async () => { await db?.stop(); }, 60_000);

busContract('postgres log', async (): Promise<BusUnderTest> => ({
  newBus: (codec) => createPostgresBus<TestTopics>({
    url: db.url, codec: codec ?? testCodec, defaultPartitions: PARTITIONS, poolMax: 4, retention: false,
    // The fallback poll never fires within a test: every delivery here is woken by NOTIFY.
    pollIntervalMs: 120_000, rebalanceIntervalMs: 150,
  }),
  transaction: (fn, outcome) => db.transaction(fn, outcome),
  partitions: PARTITIONS,
  teardown: async () => {},
}));

const brokers = process.env.KAFKA_BROKERS;
busContract(
  'kafka',
  async (): Promise<BusUnderTest> => ({
    newBus: (codec) => createKafkaBus<TestTopics>({
      kafka: { brokers: brokers!.split(','), clientId: 'bus-contract', ssl: false },
      codec: codec ?? testCodec, defaultPartitions: PARTITIONS, outbox: { url: db.url },
    }),
    transaction: (fn, outcome) => db.transaction(fn, outcome),
    partitions: PARTITIONS,
    teardown: async () => {},
  }),
  brokers ? undefined : 'KAFKA_BROKERS is not set; no Kafka broker can run on this machine',
);
