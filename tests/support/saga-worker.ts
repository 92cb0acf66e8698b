/**
 * A worker process running the whole order saga (orchestrator, participants, sweeper) and nothing
 * else, for tests/e2e/saga-crash.test.ts (which kills it with SIGKILL) and tests/bench/saga.ts.
 * Prints `{"event":"ready"}` once consuming (and serving, with `--http`). On SIGTERM it stops like a
 * production worker (workers/worker.ts): HTTP server, saga, bus, pools — and exits 0 only if all of
 * that finished and nothing is left holding the event loop (exit 1 after a 10 s grace period).
 *
 * Usage: node --import tsx tests/support/saga-worker.ts <crmUrl> <platformUrl> <kvUrl> <kvToken> <stepTimeoutMs> [--http <port>] [--api-only]
 *
 * `--api-only` runs no saga component (sagas registered through it wait on the bus).
 * `--http` also serves the worker's tRPC API with the orders port. It trusts the header
 * `x-test-operator: <name>` as a signed-in crm_operator — a benchmark stand-in for bearer tokens,
 * which tests/e2e/saga-flow.test.ts covers for real. Never use it outside tests.
 */
import { serve } from '@hono/node-server';
import postgres from 'postgres';
import { createUpstashKv } from '../../edge/adapters/kv-upstash.ts';
import { bionicCodec } from '../../shared/bus/topics.ts';
import { createLogger } from '../../shared/log.ts';
import { createWorkerApp } from '../../workers/app.ts';
import { createBus } from '../../workers/bus/index.ts';
import { startSaga } from '../../workers/saga/index.ts';

const [crmUrl, platformUrl, kvUrl, kvToken, timeout, ...flags] = process.argv.slice(2);
const httpPort = flags.includes('--http') ? flags[flags.indexOf('--http') + 1] : undefined;
if (!crmUrl || !platformUrl || !kvUrl || !kvToken || !timeout || (flags.includes('--http') && !httpPort)) {
  console.error('usage: saga-worker <crmUrl> <platformUrl> <kvUrl> <kvToken> <stepTimeoutMs> [--http <port>] [--api-only]');
  process.exit(2);
}
const log = createLogger({ level: 'warn', base: { pid: process.pid }, write: (line) => process.stderr.write(line + '\n') });
const crm = postgres(crmUrl, { max: 10, onnotice: () => {} });
const platform = postgres(platformUrl, { max: 10, onnotice: () => {} });
const bus = await createBus({ defaultPartitions: 8, retentionMinAgeMs: 3_600_000 }, { platformUrl, codec: bionicCodec, log });
const saga = await startSaga({
  crm, platform, bus, log, kv: createUpstashKv({ url: kvUrl, token: kvToken }),
  config: { stepTimeoutMs: Number(timeout), sweepIntervalMs: 500 },
  components: flags.includes('--api-only') ? [] : undefined,
});
let server: ReturnType<typeof serve> | undefined;
if (httpPort) {
  const app = createWorkerApp({
    ports: { orders: saga.orders }, log, health: async () => ({ status: 'ok', dependencies: {} }),
    authenticate: async (req) => {
      const name = req.headers.get('x-test-operator');
      return name ? { userId: name, username: name, roles: ['crm_operator'] } : null;
    },
  });
  await new Promise<void>((resolve) => { server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: Number(httpPort) }, () => resolve()); });
}
process.once('SIGTERM', async () => {
  const force = setTimeout(() => {
    log.error('saga worker did not stop within 10 s', { handles: (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles().map((h) => h.constructor.name) });
    process.exit(1);
  }, 10_000);
  force.unref();
  if (server) await new Promise((resolve) => server!.close(resolve));
  await saga.stop();
  await bus.close();
  await Promise.all([crm.end({ timeout: 5 }), platform.end({ timeout: 5 })]);
  // No process.exit(): the process ends by itself once nothing is left running, which is the point.
  process.stdout.write(JSON.stringify({ event: 'stopped' }) + '\n');
});
process.stdout.write(JSON.stringify({ event: 'ready' }) + '\n');
