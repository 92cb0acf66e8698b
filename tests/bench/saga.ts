/**
 * The order saga end to end on the embedded stack: completed sagas per second and the latency from
 * calling `orders.create` (tRPC over HTTP to a worker process) to the saga committing FINISHED —
 * through REGISTER, profile (reserve), deals (order update), notification (stored and pushed to
 * KV) and the four orchestrator transitions — at 1, 10 and 100 concurrent creators. Each creator
 * registers an order, waits for its saga to finish, and registers the next (a closed loop, so the
 * creators count is the number of sagas in flight). Latency is measured to the saga's `finished_at`
 * (PostgreSQL's clock, same machine), so how often the benchmark looks does not count.
 * Baselines, measured in the same run at the same concurrencies: `orders.create` alone (the saga's
 * first step, against a worker whose saga consumers are not running), and bare PostgreSQL: as many
 * single-row INSERT transactions as a saga's steps commit when each goes alone
 * ({@link COMMITS_PER_SAGA}), on the same server — the floor any durable saga over it stands on.
 * A second table says where the time goes: CPU milliseconds per saga of the saga worker process,
 * PostgreSQL (every backend), this process (tRPC client, KV gateway, finish watcher) and redis, read
 * from /proc, and how busy the whole machine was (others' work shows as the difference).
 *
 * Options: `--quick` (a fifth of the sagas), `--workers N` (saga worker processes, default 1),
 * `--partitions N` (create the four saga topics with N partitions instead of infra/kafka/topics.json's 12),
 * `--profile DIR` (each saga worker process writes a V8 CPU profile into DIR when it stops).
 * Ends with `RESULT saga sagas_per_s=… p50_ms=… p99_ms=…` (the 100-creator figures).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../../infra/dev/free-port.ts';
import postgres from 'postgres';
import { createBionicClient, type BionicClient } from '../../router/client.ts';
import { FINISHED_CHANNEL } from '../../workers/saga/store.ts';
import { cpuMeter, machineBusyS, parentOf, processCpuS, treeCpuS } from '../support/saga-cpu.ts';
import { startSagaStack, type SagaStack } from '../support/saga-stack.ts';

const ROOT = join(import.meta.dirname, '../..');
const args = process.argv.slice(2);
const scale = args.includes('--quick') ? 0.2 : 1;
const option = (name: string) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) || undefined : undefined);
const WORKERS = option('--workers') ?? 1;
const PARTITIONS = option('--partitions');
// `--profile DIR`: the saga worker processes write V8 CPU profiles there (open in Chrome DevTools).
const PROFILE_DIR = args.includes('--profile') ? args[args.indexOf('--profile') + 1] : undefined;
const LEVELS = [
  { creators: 1, sagas: Math.round(150 * scale) },
  { creators: 10, sagas: Math.round(1000 * scale) },
  { creators: 100, sagas: Math.round(3000 * scale) },
];
/**
 * Durable commits of one saga when nothing is batched: the order (CRM), REGISTER, four orchestrator
 * transitions, profile's and deals' CRM transactions and their two replies, the notification.
 */
const COMMITS_PER_SAGA = 11;
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const ms = (v: number) => v.toFixed(1);

async function startWorker(stack: SagaStack, apiOnly = false): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [
    ...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []), '--import', 'tsx', 'tests/support/saga-worker.ts', stack.crmUrl, stack.platformUrl, stack.kvUrl, stack.kvToken, '600000',
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

/** Resolves waiters as their sagas finish: the orchestrator NOTIFYs their ids when it commits FINISHED. */
async function finishWatcher(stack: SagaStack) {
  const waiting = new Map<string, () => void>();
  // A saga may finish before its creator starts waiting (its create answer was slow to arrive).
  const early = new Set<string>();
  const listening = await stack.platform.listen(FINISHED_CHANNEL, (ids) => {
    for (const id of ids.split(',')) {
      const resolve = waiting.get(id);
      if (resolve) { waiting.delete(id); resolve(); } else early.add(id);
    }
  });
  return {
    until: (sagaId: string) => new Promise<void>((resolve) => {
      if (early.delete(sagaId)) resolve(); else waiting.set(sagaId, resolve);
    }),
    stop: () => listening.unlisten(),
  };
}

interface Run { sagasPerS: number; p50: number; p99: number; createP50: number }

async function run(
  stack: SagaStack, clients: BionicClient[], customers: string[], creators: number, total: number,
  opts: { waitForSaga: boolean; watcher?: Awaited<ReturnType<typeof finishWatcher>> },
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

/** Sagas/s if a saga were nothing but {@link COMMITS_PER_SAGA} bare INSERT transactions, `creators` at a time. */
async function bareCommits(stack: SagaStack, creators: number, sagas: number): Promise<number> {
  const sql = postgres(stack.platformUrl, { max: Math.min(creators, 32), onnotice: () => {} });
  try {
    await sql`CREATE TABLE IF NOT EXISTS bench_commits (id bigserial PRIMARY KEY, v text NOT NULL)`;
    await Promise.all(Array.from({ length: Math.min(creators, 32) }, () => sql`SELECT 1`)); // connect first
    const total = sagas * COMMITS_PER_SAGA;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: creators }, async () => {
      for (let i = next++; i < total; i = next++) await sql`INSERT INTO bench_commits (v) VALUES (${`saga-step-${i}`})`;
    }));
    return sagas / ((performance.now() - t0) / 1000);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function main() {
  const stack = await startSagaStack('saga-bench', { poolMax: 4, partitions: PARTITIONS });
  const children: ChildProcess[] = [];
  try {
    await stack.crm`DELETE FROM prosthesis_models`;
    await stack.crm`INSERT INTO prosthesis_models (id, name, kind, manufacturer, price) VALUES (1, 'Bench Hand', 'hand', 'BionicPRO', 1000.00)`;
    // Nine in ten customers can pay; the rest are declined, so both paths run.
    const ids = Object.values(await stack.customers(Array.from({ length: 1000 }, (_, i) => ({ username: `bench${i}`, balance: i % 10 === 9 ? '0.00' : '1000000000.00' }))));

    const workers: Awaited<ReturnType<typeof startWorker>>[] = [];
    for (let w = 0; w < WORKERS; w++) workers.push(await startWorker(stack));
    children.push(...workers.map((w) => w.child));
    const clients = workers.map((w) => createBionicClient({ url: w.url, headers: () => ({ 'x-test-operator': 'bench' }) }));
    const [{ pid: backend }] = await stack.platform<[{ pid: number }]>`SELECT pg_backend_pid() AS pid`;
    const postmaster = parentOf(backend);
    const meter = cpuMeter({
      worker: () => workers.reduce((sum, w) => sum + processCpuS(w.child.pid!), 0),
      postgres: () => treeCpuS(postmaster),
      bench: () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; },
      redis: () => (stack.redisPid ? processCpuS(stack.redisPid) : 0),
      machine: machineBusyS,
    });
    const watcher = await finishWatcher(stack);
    await run(stack, clients, ids, 10, Math.round(100 * scale), { waitForSaga: true, watcher }); // warm-up
    const results = new Map<number, Run & { cpu: Record<string, number>; busyCores: number }>();
    for (const { creators, sagas } of LEVELS) {
      const before = meter.read();
      const t0 = performance.now();
      const r = await run(stack, clients, ids, creators, sagas, { waitForSaga: true, watcher });
      const wallS = (performance.now() - t0) / 1000;
      const used = meter.since(before);
      results.set(creators, { ...r, busyCores: used.machine! / wallS, cpu: Object.fromEntries(Object.entries(used).map(([k, v]) => [k, (v * 1000) / sagas])) });
    }
    await watcher.stop();
    await Promise.all(workers.map((w) => stopWorker(w.child)));

    // Baseline, same run: orders.create alone, on a worker with no saga consumers (nothing runs the sagas it registers).
    const bare = await startWorker(stack, true);
    children.push(bare.child);
    const bareClient = createBionicClient({ url: bare.url, headers: () => ({ 'x-test-operator': 'bench' }) });
    await run(stack, [bareClient], ids, 10, Math.round(100 * scale), { waitForSaga: false }); // warm-up
    const baseline = new Map<number, Run>();
    for (const { creators, sagas } of LEVELS) baseline.set(creators, await run(stack, [bareClient], ids, creators, sagas, { waitForSaga: false }));
    await stopWorker(bare.child);
    // Baseline, same run: bare PostgreSQL commits, as many per saga as its steps commit one by one.
    const commits = new Map<number, number>();
    for (const { creators, sagas } of LEVELS) commits.set(creators, await bareCommits(stack, creators, sagas));

    console.log(`\nOrder saga, embedded stack, ${WORKERS} saga worker process(es), ${PARTITIONS ?? 'topics.json'} partitions per saga topic; closed loop: each creator waits for FINISHED\n`);
    console.log(`creators | sagas | sagas/s | p50 ms | p99 ms | create p50 ms | baseline create-only calls/s | baseline bare PostgreSQL (${COMMITS_PER_SAGA} commits) sagas/s | ratio saga ÷ bare`);
    console.log('---------|-------|---------|--------|--------|---------------|------------------------------|-------------------------------------------|------------------');
    for (const { creators, sagas } of LEVELS) {
      const r = results.get(creators)!;
      const b = baseline.get(creators)!;
      const c = commits.get(creators)!;
      console.log(`${String(creators).padStart(8)} | ${String(sagas).padStart(5)} | ${r.sagasPerS.toFixed(0).padStart(7)} | ${ms(r.p50).padStart(6)} | ${ms(r.p99).padStart(6)} | ${ms(r.createP50).padStart(13)} | ${b.sagasPerS.toFixed(0).padStart(28)} | ${c.toFixed(0).padStart(41)} | ${(r.sagasPerS / c).toFixed(2).padStart(16)}`);
    }
    console.log('\nWhere the time goes: CPU ms per completed saga (from /proc), and how busy the machine was');
    console.log('creators | saga worker | postgres | bench: client + KV gateway | redis | all of these | machine busy cores | ceiling on 2 idle cores (sagas/s)');
    console.log('---------|-------------|----------|---------------------------|-------|--------------|--------------------|----------------------------------');
    for (const { creators } of LEVELS) {
      const { cpu, busyCores: busy } = results.get(creators)!;
      const ours = cpu.worker! + cpu.postgres! + cpu.bench! + cpu.redis!;
      console.log(`${String(creators).padStart(8)} | ${ms(cpu.worker!).padStart(11)} | ${ms(cpu.postgres!).padStart(8)} | ${ms(cpu.bench!).padStart(25)} | ${ms(cpu.redis!).padStart(5)} | ${ms(ours).padStart(12)} | ${busy.toFixed(2).padStart(18)} | ${(2000 / ours).toFixed(0).padStart(32)}`);
    }
    const top = results.get(100)!;
    const topCpu = top.cpu.worker! + top.cpu.postgres! + top.cpu.bench! + top.cpu.redis!;
    console.log("\nTargets (DESIGN.md): ≥ 500 sagas/s, p50 ≤ 50 ms. Anchor: the seed project's end-to-end test waited 20 s per saga.");
    console.log('With 100 creators each waiting for its saga, p50 ≈ 100 / (sagas/s) (Little\'s law): 50 ms there needs 2000 sagas/s.');
    console.log(`RESULT saga sagas_per_s=${top.sagasPerS.toFixed(0)} p50_ms=${ms(top.p50)} p99_ms=${ms(top.p99)} ` +
      `cpu_ms_per_saga=${ms(topCpu)} bare_pg_sagas_per_s=${commits.get(100)!.toFixed(0)} ratio_to_bare=${(top.sagasPerS / commits.get(100)!).toFixed(2)}`);
  } finally {
    await Promise.all(children.map(stopWorker));
    await stack.stop();
  }
}

await main();
