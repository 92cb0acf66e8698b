/**
 * SIGTERM under load, against the real worker and edge run as child processes: while HTTP calls
 * flow through the edge to the worker and orders keep the worker's saga consumers busy, the worker
 * gets SIGTERM — every request sent before the signal is answered successfully, the process exits
 * 0 within the grace period, and no bus batch is half-applied: the orchestrator's committed effects
 * (its dedupe records, written in the same transaction as the saga changes) are exactly the
 * messages below its committed offsets. Then the edge gets SIGTERM under load, with the same
 * promise for its requests.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/dev/free-port.ts';
import { bionicCodec, type BionicTopics } from '../../shared/bus/topics.ts';
import { createBus, loadTopicSpecs, type WorkerBus } from '../../workers/bus/index.ts';
import { createOrdersService } from '../../workers/saga/orders-service.ts';
import { spawnApp, startOpsStack, type AppProcess, type OpsStack } from '../support/ops-stack.ts';
import { eventually } from '../support/saga-stack.ts';

let stack: OpsStack;
let worker: AppProcess;
let edge: AppProcess;
let crm: postgres.Sql;
let platform: postgres.Sql;
let bus: WorkerBus<BionicTopics>;

beforeAll(async () => {
  stack = await startOpsStack('ops-shutdown');
  const [workerPort, edgePort] = [await freePort(), await freePort()];
  worker = await spawnApp('worker', 'workers/main.ts', stack.workerEnv(workerPort, { SHUTDOWN_GRACE_MS: '20000', CDC_ENABLED: 'false' }));
  edge = await spawnApp('edge', 'edge/main.node.ts', stack.edgeEnv(edgePort, worker.url, { SHUTDOWN_GRACE_MS: '20000', RATE_LIMIT_API_PER_MINUTE: '1000000' }));
  crm = postgres(stack.pg.databaseUrl('crm'), { max: 4, onnotice: () => {} });
  platform = postgres(stack.pg.databaseUrl('platform'), { max: 2, onnotice: () => {} });
  bus = await createBus({ defaultPartitions: 8, retentionMinAgeMs: 3_600_000 }, { platformUrl: stack.pg.databaseUrl('platform'), codec: bionicCodec, topics: await loadTopicSpecs() });
}, 240_000);

afterAll(async () => {
  for (const p of [worker, edge]) if (p && p.child.exitCode === null && p.child.signalCode === null) { p.child.kill('SIGKILL'); await p.exited; }
  await bus?.close();
  await Promise.allSettled([crm?.end(), platform?.end()]);
  await stack?.stop();
}, 120_000);

interface Call { start: number; end: number; status: number | null; error?: string }

/** `concurrency` closed loops on `url` until `done()`; each stops after its first failure once `signalled()`. */
function drive(url: string, concurrency: number, done: () => boolean, signalled: () => boolean): { calls: Call[]; finished: Promise<void> } {
  const calls: Call[] = [];
  const loop = async () => {
    while (!done()) {
      const start = performance.now();
      let status: number | null = null;
      let error: string | undefined;
      try {
        const res = await fetch(url);
        await res.text();
        status = res.status;
      } catch (err) {
        error = String((err as Error).cause ?? err);
      }
      calls.push({ start, end: performance.now(), status, error });
      if (signalled() && status !== 200) return;
    }
  };
  return { calls, finished: Promise.all(Array.from({ length: concurrency }, loop)).then(() => {}) };
}

/** Calls sent before the signal must all have succeeded; some of them must have been in flight at the signal. */
function checkBefore(calls: Call[], signalAt: number) {
  const before = calls.filter((c) => c.start < signalAt);
  expect(before.length).toBeGreaterThan(10);
  expect(before.filter((c) => c.status !== 200)).toEqual([]);
  expect(before.filter((c) => c.end > signalAt).length).toBeGreaterThan(0);
}

describe('graceful shutdown', () => {
  it('the worker finishes requests and bus batches in hand on SIGTERM', async () => {
    const [model] = await crm<{ id: number }[]>`INSERT INTO prosthesis_models (name, kind, manufacturer, price) VALUES ('Shutdown Hand', 'hand', 'BionicPRO', 10.00) RETURNING id`;
    const [customer] = await crm<{ id: string }[]>`INSERT INTO customers (username, full_name, email) VALUES ('shutdown', 'Shut Down', 'sd@example.test') RETURNING id::text`;
    await crm`INSERT INTO customer_accounts (customer_id, balance) VALUES (${customer!.id}, 1000000)`;
    const orders = createOrdersService({ crm, platform, bus });

    let signalAt = Infinity;
    let exitedAt = Infinity;
    const signalled = () => performance.now() >= signalAt;
    const done = () => performance.now() > exitedAt;
    // Bus work: orders keep the saga consumers busy until the worker is gone.
    let created = 0;
    const making = (async () => {
      for (let i = 0; !done(); i++) {
        await orders.create({ customerId: customer!.id, modelId: model!.id, idempotencyKey: `shutdown-${i}` }, { username: 'operator1' });
        created++;
      }
    })();
    const load = drive(`${edge.url}/trpc/worker.health`, 6, done, signalled);
    await eventually(() => load.calls.length >= 20 && created >= 10, 'load to build up before the signal', 90_000);

    signalAt = performance.now();
    worker.child.kill('SIGTERM');
    const exit = await worker.exited;
    exitedAt = performance.now();
    await Promise.all([load.finished, making]);

    expect(exit).toEqual({ code: 0, signal: null });
    expect(exitedAt - signalAt).toBeLessThan(20_000);
    expect(worker.lines.some((l) => l.includes('"worker stopped"'))).toBe(true);
    expect(worker.lines.filter((l) => l.includes('were cut'))).toEqual([]);
    checkBefore(load.calls, signalAt);
    expect(created).toBeGreaterThan(5);

    // Effects committed by the orchestrator ⇔ messages below its committed offsets.
    const committed = await platform<{ id: string }[]>`
      SELECT DISTINCT (m.value::jsonb)->>'messageId' AS id
      FROM bus_messages m JOIN bus_topics t ON t.id = m.topic_id
      JOIN bus_offsets o ON o.topic_id = m.topic_id AND o.partition = m.partition
      JOIN bus_groups g ON g.id = o.group_id
      WHERE t.name = 'saga.events' AND g.name = 'saga-orchestrator' AND m.msg_offset < o.next_offset`;
    const applied = await platform<{ id: string }[]>`SELECT message_id AS id FROM bus_processed WHERE consumer = 'saga-orchestrator'`;
    expect(applied.length).toBeGreaterThan(5);
    expect(new Set(applied.map((r) => r.id))).toEqual(new Set(committed.map((r) => r.id)));
  }, 180_000);

  it('the edge finishes requests in flight on SIGTERM', async () => {
    let signalAt = Infinity;
    let exitedAt = Infinity;
    const load = drive(`${edge.url}/trpc/health.ping`, 6, () => performance.now() > exitedAt, () => performance.now() >= signalAt);
    await eventually(() => load.calls.length >= 50, 'load to build up before the signal', 60_000);
    signalAt = performance.now();
    edge.child.kill('SIGTERM');
    const exit = await edge.exited;
    exitedAt = performance.now();
    await load.finished;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(edge.lines.some((l) => l.includes('"edge stopped"'))).toBe(true);
    checkBefore(load.calls, signalAt);
  }, 120_000);
});
