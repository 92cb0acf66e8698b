/**
 * A bus consumer for tests/e2e/bus-crash.test.ts, run as a child process that the test kills with
 * SIGKILL. Its handler applies each batch idempotently (dedupe + effects in one transaction); at batch
 * number `hangAt` it prints `{"event":"mid-batch","ids":[…]}` and hangs — inside the transaction
 * (mode `in-tx`) or after its commit but before the bus commits the offset (mode `after-commit`).
 *
 * Usage: node --import tsx tests/support/bus-crash-consumer.ts <url> <topic> <group> <mode> <hangAt> <name>
 */
import postgres from 'postgres';
import { createLogger } from '../../shared/log.ts';
import { createPostgresBus } from '../../workers/bus/postgres-bus.ts';
import { testCodec, type TestTopics } from '../contract/bus-support.ts';
import { apply } from './bus-crash-consumer-lib.ts';

const [url, topic, group, mode, hangAt, name] = process.argv.slice(2);
if (!url || !topic || !group || (mode !== 'in-tx' && mode !== 'after-commit') || !hangAt || !name) {
  console.error('usage: bus-crash-consumer <url> <topic> <group> <in-tx|after-commit> <hangAt> <name>');
  process.exit(2);
}
const say = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n');
const never = () => new Promise<never>(() => {});

const sql = postgres(url, { max: 4, onnotice: () => {} });
const log = createLogger({ level: 'warn', base: { consumer: name }, write: (line) => process.stderr.write(line + '\n') });
const bus = await createPostgresBus<TestTopics>({ url, codec: testCodec, retention: false, rebalanceIntervalMs: 200, defaultPartitions: 4, log });
let batches = 0;
let frozen = false;
await bus.subscribe({
  group, topics: [topic as `test.${string}`], maxBatchSize: 25,
  handler: async (messages) => {
    if (frozen) return never(); // about to be killed: do nothing more
    const hang = ++batches === Number(hangAt);
    if (hang) frozen = true;
    const ids = messages.map((m) => m.id);
    await apply(sql, name, messages, hang && mode === 'in-tx' ? async () => { say({ event: 'mid-batch', ids }); await never(); } : undefined);
    if (hang) {
      say({ event: 'mid-batch', ids });
      await never();
    }
  },
});
say({ event: 'ready' });
