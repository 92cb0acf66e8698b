/**
 * Zero loss under kill -9: consumer processes on the PostgreSQL bus are killed with SIGKILL in the
 * middle of a batch — once after their handler committed its effects (so the batch is redelivered),
 * once inside the handler's transaction (so nothing of it happened) — and a last consumer finishes.
 * Every message must take effect exactly once, and the redelivered ones must be caught by the dedupe
 * helper as duplicates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresBus } from '../../workers/bus/postgres-bus.ts';
import { Collector, newGroup, newTopic, testCodec, type TestTopics } from '../contract/bus-support.ts';
import { apply } from '../support/bus-crash-consumer-lib.ts';
import { startPlatformDb, type PlatformDb } from '../support/platform-db.ts';

const ROOT = join(import.meta.dirname, '../..');
const TOTAL = 400;
let db: PlatformDb;
let url = '';
let sql: postgres.Sql;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  db = await startPlatformDb('bus-crash');
  ({ url, sql } = db);
  await sql`CREATE TABLE crash_effects (message_id text NOT NULL, seq int NOT NULL)`;
  await sql`CREATE TABLE crash_log (message_id text NOT NULL, duplicate boolean NOT NULL, consumer text NOT NULL)`;
}, 120_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL'); // only if a test failed before killing it
  await db?.stop();
}, 60_000);

/** Runs a consumer child until it reports being mid-batch, kills it with SIGKILL, returns that batch's ids. */
async function killMidBatch(topic: string, group: string, mode: 'in-tx' | 'after-commit', hangAt: number, name: string): Promise<string[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/support/bus-crash-consumer.ts', url, topic, group, mode, String(hangAt), name], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const stderr: string[] = [];
  child.stderr!.on('data', (d) => stderr.push(String(d)));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  const ids = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`consumer ${name} did not reach its mid-batch point in 60 s:\n${stderr.join('')}`));
    }, 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const event = JSON.parse(line) as { event: string; ids?: string[] };
      if (event.event === 'mid-batch') { clearTimeout(timer); resolve(event.ids!); }
    });
    exited.then(() => { clearTimeout(timer); reject(new Error(`consumer ${name} exited before its mid-batch point:\n${stderr.join('')}`)); });
  });
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return ids;
}

describe('bus: consumers killed with SIGKILL mid-batch', () => {
  it('lose nothing, apply every message once, and see redeliveries as duplicates', async () => {
    const topic = newTopic('crash');
    const group = newGroup('crash');
    const bus = await createPostgresBus<TestTopics>({ url, codec: testCodec, retention: false, defaultPartitions: 4, rebalanceIntervalMs: 200 });
    try {
      await bus.publish(topic, Array.from({ length: TOTAL }, (_, i) => ({ key: `key-${i % 40}`, value: { seq: i } })));

      const hungAfterCommit = await killMidBatch(topic, group, 'after-commit', 3, 'A');
      const hungInTx = await killMidBatch(topic, group, 'in-tx', 2, 'B');
      expect(hungAfterCommit.length).toBeGreaterThan(0);
      expect(hungInTx.length).toBeGreaterThan(0);

      const effects = async () => Number((await sql`SELECT count(*) FROM crash_effects`)[0]!.count);
      const progress = new Collector();
      const sub = await bus.subscribe({
        group, topics: [topic], maxBatchSize: 25,
        handler: async (messages) => {
          await apply(sql, 'C', messages);
          if ((await effects()) === TOTAL) progress.add(messages);
        },
      });
      await progress.until(1, 60_000);
      await sub.stop();

      const rows = await sql`SELECT count(*)::int AS n, count(DISTINCT message_id)::int AS ids, count(DISTINCT seq)::int AS seqs FROM crash_effects`;
      expect(rows[0]).toEqual({ n: TOTAL, ids: TOTAL, seqs: TOTAL });
      const log = await sql<{ message_id: string; duplicate: boolean; consumer: string }[]>`SELECT * FROM crash_log`;
      const dupes = new Set(log.filter((r) => r.duplicate).map((r) => r.message_id));
      // B may also finish a batch whose offset commit it never reached before its own kill.
      const doneBefore = new Set(log.filter((r) => r.consumer !== 'C' && !r.duplicate).map((r) => r.message_id));
      // A committed the effects of its hung batch, the bus never committed the offset: redelivered, caught.
      for (const id of hungAfterCommit) expect(dupes.has(id), id).toBe(true);
      // Only what a killed consumer had really done can come back as a duplicate.
      for (const id of dupes) expect(doneBefore.has(id), id).toBe(true);
      // B died inside its transaction: nothing of B's hung batch was recorded.
      expect(log.filter((r) => r.consumer === 'B' && hungInTx.includes(r.message_id))).toEqual([]);
      expect((await bus.lag(group, [topic])).reduce((s, p) => s + p.lag, 0)).toBe(0);
    } finally {
      await bus.close();
    }
  }, 180_000);
});
