/**
 * The PostgreSQL bus: publish throughput, end-to-end consume throughput and publish→handler latency
 * at batch sizes 1, 100 and 1000, against a baseline of plain batched INSERTs (unnest, same columns,
 * same primary key, same values) into an equivalent table, in the same database in the same run.
 * One publisher publishes sequentially while one consumer (all partitions) handles; the RESULT line
 * carries the batch-1000 figures.
 *
 * Relay: 100 keys in flight, each message handed on through four 12-partition topics by four groups
 * of one bus (as a saga worker's consumers hand a saga on), so the load is moderate and spread thin
 * over many partitions — where the fixed cost per batch (fetches, offset commits, wake-ups) shows.
 * It reports hops/s and the CPU per hop of this process and of PostgreSQL (every backend, /proc).
 * `--quick` runs a tenth of the messages.
 */
import type postgres from 'postgres';
import { z } from 'zod';
import { defineCodec } from '../../shared/bus/codec.ts';
import { createPostgresBus } from '../../workers/bus/postgres-bus.ts';
import { startPlatformDb } from '../support/platform-db.ts';
import { cpuMeter, parentOf, treeCpuS } from '../support/saga-cpu.ts';

type BenchTopics = { [t: `bench.${string}`]: { seq: number; t: number; body: string } };
const codec = defineCodec<BenchTopics>([{ topic: /^bench\./, schema: z.object({ seq: z.number().int(), t: z.number(), body: z.string() }) }]);
const scale = process.argv.includes('--quick') ? 0.1 : 1;
const RUNS = [
  { batch: 1, total: Math.round(3_000 * scale) },
  { batch: 100, total: Math.round(50_000 * scale) },
  { batch: 1000, total: Math.round(200_000 * scale) },
];
const PARTITIONS = 8;
const body = 'telemetry '.repeat(10);
const key = (i: number) => `device-${i % 1000}`;

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function baseline(sql: postgres.Sql, batch: number, total: number): Promise<number> {
  await sql`TRUNCATE bench_baseline`;
  const t0 = performance.now();
  for (let start = 0; start < total; start += batch) {
    const n = Math.min(batch, total - start);
    const seqs = Array.from({ length: n }, (_, i) => start + i);
    await sql`INSERT INTO bench_baseline (topic_id, partition, msg_offset, key, value, headers)
      SELECT 1, s % ${PARTITIONS}, s, k, v, NULL FROM unnest(${seqs}::bigint[], ${seqs.map(key)}::text[],
        ${seqs.map((s) => JSON.stringify({ seq: s, t: performance.now(), body }))}::text[]) AS x(s, k, v)`;
  }
  return total / ((performance.now() - t0) / 1000);
}

async function busRun(url: string, batch: number, total: number) {
  const bus = await createPostgresBus<BenchTopics>({ url, codec, defaultPartitions: PARTITIONS, retention: false, poolMax: 12 });
  const topic = `bench.b${batch}` as const;
  const latencies: number[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await bus.subscribe({
    group: `bench-${batch}`, topics: [topic], maxBatchSize: 1000,
    handler: async (messages) => {
      const now = performance.now();
      for (const m of messages) latencies.push(now - m.value.t);
      if (latencies.length >= total) done();
    },
  });
  const t0 = performance.now();
  for (let start = 0; start < total; start += batch) {
    const t = performance.now();
    const n = Math.min(batch, total - start);
    await bus.publish(topic, Array.from({ length: n }, (_, i) => ({ key: key(start + i), value: { seq: start + i, t, body } })));
  }
  const published = performance.now();
  await finished;
  const ended = performance.now();
  await sub.stop();
  await bus.close();
  latencies.sort((a, b) => a - b);
  return {
    publish: total / ((published - t0) / 1000),
    e2e: total / ((ended - t0) / 1000),
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
  };
}

const RELAY = { topics: 4, partitions: 12, chains: 100, hops: Math.round(30_000 * scale) };

async function relayRun(url: string, postmaster: number) {
  const bus = await createPostgresBus<BenchTopics>({ url, codec, defaultPartitions: RELAY.partitions, retention: false, poolMax: 4 });
  const topic = (i: number) => `bench.relay${i % RELAY.topics}` as const;
  let hops = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const subs = await Promise.all(Array.from({ length: RELAY.topics }, (_, i) => bus.subscribe({
    group: `relay-${i}`, topics: [topic(i)],
    handler: async (messages) => {
      hops += messages.length;
      if (hops >= RELAY.hops) return done();
      await bus.publish(topic(i + 1), messages.map((m) => ({ key: m.key, value: { ...m.value, seq: m.value.seq + 1 } })));
    },
  })));
  const meter = cpuMeter({ node: () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; }, postgres: () => treeCpuS(postmaster) });
  const before = meter.read();
  const t0 = performance.now();
  await bus.publish(topic(0), Array.from({ length: RELAY.chains }, (_, c) => ({ key: `chain-${c}`, value: { seq: 0, t: 0, body } })));
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = meter.since(before);
  await Promise.all(subs.map((s) => s.stop()));
  await bus.close();
  return { hopsPerS: hops / seconds, nodeUs: (cpu.node! * 1e6) / hops, postgresUs: (cpu.postgres! * 1e6) / hops };
}

const db = await startPlatformDb('bench-bus');
try {
  const { sql, url } = db;
  await sql`CREATE TABLE bench_baseline (LIKE bus_messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)`;
  const cols = ['batch', 'msgs', 'baseline ins/s', 'publish msg/s', 'e2e msg/s', 'p50 ms', 'p99 ms', 'e2e/base'];
  console.log(cols.map((c, i) => c.padStart(i < 2 ? 8 : 15)).join(''));
  let last = { e2e: 0, p99: 0, base: 0 };
  for (const { batch, total } of RUNS) {
    const base = await baseline(sql, batch, total);
    const r = await busRun(url, batch, total);
    const cells = [batch, total, base.toFixed(0), r.publish.toFixed(0), r.e2e.toFixed(0), r.p50.toFixed(1), r.p99.toFixed(1), (r.e2e / base).toFixed(2)];
    console.log(cells.map((c, i) => String(c).padStart(i < 2 ? 8 : 15)).join(''));
    last = { e2e: r.e2e, p99: r.p99, base };
  }
  const [{ pid }] = await sql<[{ pid: number }]>`SELECT pg_backend_pid() AS pid`;
  const relay = await relayRun(url, parentOf(pid));
  const relayCpu = relay.nodeUs + relay.postgresUs;
  console.log(`\nrelay: ${RELAY.chains} keys in flight through ${RELAY.topics} topics × ${RELAY.partitions} partitions, ${RELAY.hops} hops`);
  console.log(`${relay.hopsPerS.toFixed(0)} hops/s; CPU per hop ${relayCpu.toFixed(0)} µs (bus process ${relay.nodeUs.toFixed(0)} + PostgreSQL ${relay.postgresUs.toFixed(0)})`);
  console.log(`RESULT bus e2e_msgs_per_s=${last.e2e.toFixed(0)} p99_ms=${last.p99.toFixed(1)} baseline_inserts_per_s=${last.base.toFixed(0)} ratio=${(last.e2e / last.base).toFixed(2)} ` +
    `relay_hops_per_s=${relay.hopsPerS.toFixed(0)} relay_cpu_us_per_hop=${relayCpu.toFixed(0)}`);
} finally {
  await db.stop();
}
