/**
 * Stopping the order saga once it has gone idle: every consumer asleep on LISTEN/NOTIFY, the
 * sweeper between passes. `SagaRuntime.stop()` must resolve promptly and close its consumer
 * sessions, and a saga worker process (tests/support/saga-worker.ts, which stops like
 * workers/worker.ts) must exit 0 on SIGTERM by itself — nothing left holding its event loop.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/dev/free-port.ts';
import { createBionicClient } from '../../router/client.ts';
import { createOrdersService } from '../../workers/saga/orders-service.ts';
import { FINISHED_CHANNEL } from '../../workers/saga/store.ts';
import { eventually, startSagaStack, type SagaStack } from '../support/saga-stack.ts';

const ROOT = join(import.meta.dirname, '../..');
let stack: SagaStack;
let customer: string;

beforeAll(async () => {
  stack = await startSagaStack('saga-stop');
  customer = (await stack.customers([{ username: 'stopper', balance: '100000.00' }])).stopper!;
}, 120_000);
afterAll(async () => { await stack?.stop(); }, 60_000);

const finished = async (sagaIds: string[]) =>
  Number((await stack.platform`SELECT count(*) FROM saga_instances WHERE id = ANY(${sagaIds}::text[]) AND state = 'FINISHED'`)[0]!.count);
// Group membership and partition ownership are session advisory locks (workers/bus/pg-session.ts):
// a consumer that left its group holds none. Nothing else in this stack takes advisory locks.
const consumerLocks = async () => Number((await stack.platform`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`)[0]!.count);

/** Rejects with `what` if `p` takes longer than `ms`. */
const within = <T>(p: Promise<T>, ms: number, what: string) => Promise.race([
  p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms).unref()),
]);

describe('stopping an idle order saga', () => {
  it('SagaRuntime.stop() resolves promptly after the sagas finished and leaves its consumer groups', async () => {
    expect(await consumerLocks()).toBe(0);
    const runtime = await stack.runtime();
    // Four members, and the 12 partitions of each of the four topics (infra/kafka/topics.json).
    expect(await consumerLocks()).toBeGreaterThanOrEqual(4 + 4 * 12);
    const orders = createOrdersService({ crm: stack.crm, platform: stack.platform, bus: stack.bus });
    // The orchestrator announces finished sagas at commit; waiting on that needs no polling.
    const announced = new Set<string>();
    let allAnnounced!: () => void;
    const heard = new Promise<void>((resolve) => { allAnnounced = resolve; });
    const sagaIds: string[] = [];
    const check = () => { if (sagaIds.length === 5 && sagaIds.every((id) => announced.has(id))) allAnnounced(); };
    const listening = await stack.platform.listen(FINISHED_CHANNEL, (ids) => {
      for (const id of ids.split(',')) announced.add(id);
      check();
    });
    for (let i = 0; i < 5; i++) {
      const { order } = await orders.create({ customerId: customer, modelId: stack.model.id, idempotencyKey: `stop-in-process-${i}` }, { username: 'operator1' });
      sagaIds.push(order.sagaId!);
    }
    check(); // in case the last one was announced before its create call returned
    await within(heard, 60_000, 'every finished saga to be announced');
    await listening.unlisten();
    expect(await finished(sagaIds)).toBe(sagaIds.length);
    await stack.quiet();
    await within(runtime.stop(), 5_000, 'stopping the idle saga runtime');
    expect(await consumerLocks()).toBe(0);
  }, 120_000);

  it('a saga worker process exits 0 on SIGTERM, by itself, after going idle', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [
      '--import', 'tsx', 'tests/support/saga-worker.ts', stack.crmUrl, stack.platformUrl, stack.kvUrl, stack.kvToken, '60000', '--http', String(port),
    ], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr: string[] = [];
    child.stderr!.on('data', (d) => stderr.push(String(d)));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const lines: string[] = [];
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => { lines.push(line); if (line.includes('"ready"')) resolve(); });
      void exited.then(() => reject(new Error(`saga worker exited before it was ready:\n${stderr.join('')}`)));
    });
    try {
      await ready;
      const api = createBionicClient({ url: `http://127.0.0.1:${port}/trpc`, headers: () => ({ 'x-test-operator': 'operator1' }) });
      const sagaIds: string[] = [];
      for (let i = 0; i < 5; i++) {
        const { order } = await api.orders.create.mutate({ customerId: customer, modelId: stack.model.id, idempotencyKey: `stop-child-${i}` });
        sagaIds.push(order.sagaId!);
      }
      await eventually(async () => (await finished(sagaIds)) === sagaIds.length, 'the sagas to finish');
      await stack.quiet();
      child.kill('SIGTERM');
      // The worker's own grace period is 10 s (then it exits 1): a clean stop is far quicker.
      expect(await within(exited, 15_000, 'the saga worker to exit after SIGTERM'), stderr.join('')).toEqual({ code: 0, signal: null });
      expect(lines).toContain('{"event":"stopped"}');
      expect(await consumerLocks()).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});
