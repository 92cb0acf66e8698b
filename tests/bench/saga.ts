/**
 * The order saga end to end on the embedded stack: completed sagas per second and the latency from
 * calling `orders.create` (tRPC over HTTP to a worker process) to the saga committing FINISHED —
 * through REGISTER, profile (reserve), deals (order update), notification (stored and pushed to
 * KV) and the four orchestrator transitions — at 1, 10 and 100 concurrent creators. Each creator
 * registers an order, waits for its saga to finish, and registers the next (a closed loop, so the
 * creators count is the number of sagas in flight). Latency is measured to the saga's `finished_at`
 * (PostgreSQL's clock, same machine), so how often the benchmark looks does not count.
 * Baseline, measured in the same run at the same concurrency: `orders.create` alone (the saga's
 * first step, against a worker whose saga consumers are not running).
 *
 * Options: `--quick` (a fifth of the sagas), `--workers N` (saga worker processes, default 1),
 * `--partitions N` (create the four saga topics with N partitions instead of infra/kafka/topics.json's 12).
 * Ends with `RESULT saga sagas_per_s=… p50_ms=… p99_ms=…` (the 100-creator figures).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../../infra/dev/free-port.ts';
import { createBionicClient, type BionicClient } from '../../router/client.ts';
import { startSagaStack, type SagaStack } from '../support/saga-stack.ts';

const ROOT = join(import.meta.dirname, '../..');
const args = process.argv.slice(2);
const scale = args.includes('--quick') ? 0.2 : 1;
const option = (name: string) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) || undefined : undefined);
const WORKERS = option('--workers') ?? 1;
const PARTITIONS = option('--partitions');
const LEVELS = [
  { creators: 1, sagas: Math.round(150 * scale) },
  { creators: 10, sagas: Math.round(1000 * scale) },
  { creators: 100, sagas: Math.round(3000 * scale) },
];
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const ms = (v: number) => v.toFixed(1);

async function startWorker(stack: SagaStack, apiOnly = false): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [
    '--import', 'tsx', 'tests/support/saga-worker.ts', stack.crmUrl, stack.platformUrl, stack.kvUrl, stack.kvToken, '600000',
    '--http', String(port), ...(apiOnly ? ['--api-only'] : []),
  ], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => { if (l.includes('"ready"')) resolve(); });
    child.once('exit', (code) => reject(new Error(`saga worker exited with ${code}`)));
  });
  return { child, url: `http://127.0.0.1:${port}/trpc` };
}

const stopWorker = async (child: ChildProcess) => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
};

/** Resolves waiters as their sagas finish; one query every few ms for everything in flight. */
function finishWatcher(stack: SagaStack) {
  const waiting = new Map<string, () => void>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      if (waiting.size) {
        const done = await stack.platform<{ id: string }[]>`SELECT id FROM saga_instances WHERE id = ANY(${[...waiting.keys()]}::text[]) AND state = 'FINISHED'`;
        for (const { id } of done) { waiting.get(id)?.(); waiting.delete(id); }
      }
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  return {
    until: (sagaId: string) => new Promise<void>((resolve) => waiting.set(sagaId, resolve)),
    stop: async () => { stopped = true; await loop; },
  };
}

interface Run { sagasPerS: number; p50: number; p99: number; createP50: number }

async function run(
  stack: SagaStack, clients: BionicClient[], customers: string[], creators: number, total: number,
  opts: { waitForSaga: boolean; watcher?: ReturnType<typeof finishWatcher> },
): Promise<Run> {
  const started = new Map<string, number>();
  const createMs: number[] = [];
  let next = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: creators }, async (_, c) => {
    const api = clients[c % clients.length]!;
    for (let i = next++; i < total; i = next++) {
      const at = Date.now();
      const { order } = await api.orders.create.mutate({
        customerId: customers[(i * 7919) % customers.length]!, modelId: 1, idempotencyKey: `bench-${process.pid}-${t0}-${i}`,
      });
      createMs.push(Date.now() - at);
      started.set(order.sagaId!, at);
      if (opts.waitForSaga) await opts.watcher!.until(order.sagaId!);
    }
  }));
  const elapsedCreate = Date.now() - t0;
  createMs.sort((a, b) => a - b);
  if (!opts.waitForSaga) return { sagasPerS: total / (elapsedCreate / 1000), p50: NaN, p99: NaN, createP50: pct(createMs, 50) };
  const rows = await stack.platform<{ id: string; finished_at: Date }[]>`SELECT id, finished_at FROM saga_instances WHERE id = ANY(${[...started.keys()]}::text[])`;
  const latencies = rows.map((r) => r.finished_at.getTime() - started.get(r.id)!).sort((a, b) => a - b);
  const last = Math.max(...rows.map((r) => r.finished_at.getTime()));
  return { sagasPerS: total / ((last - t0) / 1000), p50: pct(latencies, 50), p99: pct(latencies, 99), createP50: pct(createMs, 50) };
}

async function main() {
  const stack = await startSagaStack('saga-bench', { poolMax: 4, partitions: PARTITIONS });
  const children: ChildProcess[] = [];
  try {
    await stack.crm`DELETE FROM prosthesis_models`;
    await stack.crm`INSERT INTO prosthesis_models (id, name, kind, manufacturer, price) VALUES (1, 'Bench Hand', 'hand', 'BionicPRO', 1000.00)`;
    // Nine in ten customers can pay; the rest are declined, so both paths run.
    const ids = Object.values(await stack.customers(Array.from({ length: 1000 }, (_, i) => ({ username: `bench${i}`, balance: i % 10 === 9 ? '0.00' : '1000000000.00' }))));

    const workers = [];
    for (let w = 0; w < WORKERS; w++) workers.push(await startWorker(stack));
    children.push(...workers.map((w) => w.child));
    const clients = workers.map((w) => createBionicClient({ url: w.url, headers: () => ({ 'x-test-operator': 'bench' }) }));
    const watcher = finishWatcher(stack);
    await run(stack, clients, ids, 10, Math.round(100 * scale), { waitForSaga: true, watcher }); // warm-up
    const results = new Map<number, Run>();
    for (const { creators, sagas } of LEVELS) results.set(creators, await run(stack, clients, ids, creators, sagas, { waitForSaga: true, watcher }));
    await watcher.stop();
    await Promise.all(workers.map((w) => stopWorker(w.child)));

    // Baseline, same run: orders.create alone, on a worker with no saga consumers (nothing runs the sagas it registers).
    const bare = await startWorker(stack, true);
    children.push(bare.child);
    const bareClient = createBionicClient({ url: bare.url, headers: () => ({ 'x-test-operator': 'bench' }) });
    await run(stack, [bareClient], ids, 10, Math.round(100 * scale), { waitForSaga: false }); // warm-up
    const baseline = new Map<number, Run>();
    for (const { creators, sagas } of LEVELS) baseline.set(creators, await run(stack, [bareClient], ids, creators, sagas, { waitForSaga: false }));

    console.log(`\nOrder saga, embedded stack, ${WORKERS} saga worker process(es), ${PARTITIONS ?? 'topics.json'} partitions per saga topic; closed loop: each creator waits for FINISHED\n`);
    console.log('creators | sagas | sagas/s | p50 ms | p99 ms | create p50 ms | baseline: create-only calls/s | create-only p50 ms');
    console.log('---------|-------|---------|--------|--------|---------------|-------------------------------|-------------------');
    for (const { creators, sagas } of LEVELS) {
      const r = results.get(creators)!;
      const b = baseline.get(creators)!;
      console.log(`${String(creators).padStart(8)} | ${String(sagas).padStart(5)} | ${r.sagasPerS.toFixed(0).padStart(7)} | ${ms(r.p50).padStart(6)} | ${ms(r.p99).padStart(6)} | ${ms(r.createP50).padStart(13)} | ${b.sagasPerS.toFixed(0).padStart(29)} | ${ms(b.createP50).padStart(18)}`);
    }
    const top = results.get(100)!;
    console.log("\nTargets (DESIGN.md): ≥ 500 sagas/s, p50 ≤ 50 ms. Anchor: the seed project's end-to-end test waited 20 s per saga.");
    console.log(`RESULT saga sagas_per_s=${top.sagasPerS.toFixed(0)} p50_ms=${ms(top.p50)} p99_ms=${ms(top.p99)}`);
  } finally {
    await Promise.all(children.map(stopWorker));
    await stack.stop();
  }
}

await main();
