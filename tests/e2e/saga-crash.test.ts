/**
 * Crash safety of the order saga: 500 orders are registered while worker processes running the saga
 * (tests/support/saga-worker.ts) are killed with SIGKILL, one after another, each in the middle of
 * its work; a last worker finishes. Every saga must end FINISHED exactly once, every order must be
 * decided exactly once, every customer notified once per order, and no money may drift: each
 * customer's reserved amount equals the sum of their approved orders.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recentNotifications } from '../../shared/notifications/stream.ts';
import { createOrdersService } from '../../workers/saga/orders-service.ts';
import { eventually, startSagaStack, type SagaStack } from '../support/saga-stack.ts';

const ROOT = join(import.meta.dirname, '../..');
const CUSTOMERS = 50;
const ORDERS_EACH = 10;
const TOTAL = CUSTOMERS * ORDERS_EACH;
// Each order costs 1000.00: every customer can afford exactly 7 of their 10, whichever come first.
const BALANCE = '7000.00';
const KILLS = 4;

let stack: SagaStack;
const children = new Set<ChildProcess>();

beforeAll(async () => { stack = await startSagaStack('saga-crash', { poolMax: 6 }); }, 120_000);
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await stack?.stop();
}, 60_000);

/** Starts a saga worker process; resolves once it consumes. */
async function startWorker(): Promise<{ child: ChildProcess; exited: Promise<NodeJS.Signals | null>; stderr: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/support/saga-worker.ts', stack.crmUrl, stack.platformUrl, stack.kvUrl, stack.kvToken, '300000'], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const stderr: string[] = [];
  child.stderr!.on('data', (d) => stderr.push(String(d)));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, signal) => { children.delete(child); resolve(signal); }));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => { if (line.includes('"ready"')) resolve(); });
    void exited.then(() => reject(new Error(`saga worker exited before it was ready:\n${stderr.join('')}`)));
  });
  return { child, exited, stderr };
}

const finished = async () => Number((await stack.platform`SELECT count(*) FROM saga_instances WHERE state = 'FINISHED'`)[0]!.count);

describe('order saga under kill -9', () => {
  it(`finishes ${TOTAL} sagas exactly once across ${KILLS} SIGKILLed workers, without balance drift`, async () => {
    const ids = Object.values(await stack.customers(Array.from({ length: CUSTOMERS }, (_, i) => ({ username: `crash${i}`, balance: BALANCE }))));
    const orders = createOrdersService({ crm: stack.crm, platform: stack.platform, bus: stack.bus });

    // Orders arrive while the workers live and die: an API that stays up, workers that do not.
    let created = 0;
    const creating = (async () => {
      const queue = Array.from({ length: TOTAL }, (_, i) => ids[i % CUSTOMERS]!);
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let c = queue.shift(); c; c = queue.shift()) {
          await orders.create({ customerId: c, modelId: stack.model.id, idempotencyKey: `crash-${created}-${c}-${Math.random()}` }, { username: 'operator1' });
          created++;
        }
      }));
    })();

    const killedAt: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const w = await startWorker();
      const from = await finished();
      // Kill it in full stride: after it finished a few dozen sagas more, with more in flight.
      // Leave a wide margin before the end: batched transitions can finish dozens of sagas at once.
      await eventually(async () => (await finished()) >= Math.min(from + 40, TOTAL - 150), `worker ${k} to make progress`, 120_000, 10);
      // Not waiting for anything: a random moment, so kills land in different phases of the work.
      await new Promise((r) => setTimeout(r, Math.random() * 150));
      w.child.kill('SIGKILL');
      expect(await w.exited).toBe('SIGKILL');
      killedAt.push(await finished());
    }
    await creating;
    expect(created).toBe(TOTAL);
    expect(killedAt.at(-1)!).toBeLessThan(TOTAL);

    const last = await startWorker();
    await eventually(async () => (await finished()) === TOTAL, `all ${TOTAL} sagas to finish`, 240_000, 100);
    await stack.quiet();
    last.child.kill('SIGTERM');
    await last.exited;

    const { platform, crm } = stack;
    expect(await platform`SELECT state, version, count(*)::int AS n FROM saga_instances GROUP BY state, version`).toEqual([{ state: 'FINISHED', version: 4, n: TOTAL }]);
    // Exactly once: four applied transitions per saga, one of them into FINISHED, nothing ignored.
    expect(await platform`SELECT outcome, to_state, count(*)::int AS n, count(DISTINCT saga_id)::int AS sagas
      FROM saga_history GROUP BY outcome, to_state ORDER BY to_state`).toEqual([
      { outcome: 'applied', to_state: 'APPROVED', n: CUSTOMERS * 7, sagas: CUSTOMERS * 7 },
      { outcome: 'applied', to_state: 'DRAFT', n: TOTAL, sagas: TOTAL },
      { outcome: 'applied', to_state: 'FINISHED', n: TOTAL, sagas: TOTAL },
      { outcome: 'applied', to_state: 'NOTIFICATION', n: TOTAL, sagas: TOTAL },
      { outcome: 'applied', to_state: 'REJECTED', n: CUSTOMERS * 3, sagas: CUSTOMERS * 3 },
    ]);
    // Each order decided once (one deals update: version 2), matching its saga's outcome.
    const decided = await crm<{ id: string; status: string; version: number }[]>`SELECT id, status, version FROM orders`;
    expect(decided).toHaveLength(TOTAL);
    expect(new Set(decided.map((o) => o.version))).toEqual(new Set([2]));
    const outcomes = new Map((await platform<{ id: string; outcome: string }[]>`SELECT id, context->>'outcome' AS outcome FROM saga_instances`).map((s) => [s.id, s.outcome]));
    for (const o of decided) expect(outcomes.get(`order-${o.id}`), o.id).toBe(o.status);
    // No drift: balances untouched, reserved = the approved orders' prices = the held reservations.
    const drift = await crm`
      SELECT a.customer_id, a.balance::text, a.reserved::text,
             (SELECT coalesce(sum(price), 0)::text FROM orders o WHERE o.customer_id = a.customer_id AND o.status = 'APPROVED') AS approved,
             (SELECT coalesce(sum(amount), 0)::text FROM order_reservations r WHERE r.customer_id = a.customer_id AND r.status = 'held') AS held
      FROM customer_accounts a WHERE a.customer_id = ANY(${ids}::bigint[])`;
    for (const row of drift) expect(row).toMatchObject({ balance: BALANCE, reserved: '7000.00', approved: '7000.00', held: '7000.00' });
    // Notified once per order, in the database and on each customer's live stream.
    expect(await platform`SELECT count(*)::int AS n, count(DISTINCT data->>'orderId')::int AS orders FROM notifications`).toEqual([{ n: TOTAL, orders: TOTAL }]);
    for (const i of [0, 17, CUSTOMERS - 1]) {
      const stream = await recentNotifications(stack.kv, `crash${i}`, 100);
      expect(stream.items.length).toBe(ORDERS_EACH);
      expect(new Set(stream.items.map((e) => e.data.orderId)).size).toBe(ORDERS_EACH);
    }
    // Nothing gave up: no dead letters. Replies re-sent after a crash are the redeliveries the dedupe absorbed.
    const perTopic = await platform<{ name: string; n: number }[]>`
      SELECT t.name, count(m.*)::int AS n FROM bus_topics t LEFT JOIN bus_messages m ON m.topic_id = t.id
      WHERE t.name LIKE 'saga.events%' OR t.name LIKE '%.commands%' GROUP BY t.name ORDER BY t.name`;
    const count = (name: string) => perTopic.find((t) => t.name === name)?.n ?? 0;
    for (const t of perTopic.filter((t) => t.name.endsWith('.dlq'))) expect(t, t.name).toMatchObject({ n: 0 });
    expect(count('saga.events')).toBeGreaterThanOrEqual(4 * TOTAL);
    console.log(`saga crash: killed at ${killedAt.join(', ')} finished sagas; ${TOTAL} finished exactly once; ` +
      `${count('saga.events') - 4 * TOTAL} replies re-sent after crashes were deduplicated`);
  }, 600_000);
});
