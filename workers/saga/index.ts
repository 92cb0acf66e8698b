/**
 * The order saga in a worker: the orchestrator and the three participants as bus consumers, the
 * sweeper (timeouts, orphans, dedupe pruning) and the orders API. Every worker runs all of them;
 * consumer groups share the partitions, so adding workers adds throughput. Each consumer merges the
 * partition batches that pile up while it works into one transaction (coalesce.ts).
 *
 * ```ts
 * const saga = await startSaga({ crm: oltp.crm.sql, platform: oltp.platform.sql, bus, kv, log, config: config.saga });
 * // ports.orders = saga.orders; … on shutdown, before bus.close():
 * await saga.stop();
 * ```
 */
import type postgres from 'postgres';
import type { BionicTopics } from '../../shared/bus/topics.ts';
import type { Logger } from '../../shared/log.ts';
import type { Kv } from '../../shared/ports/kv.ts';
import type { RetryPolicy, Subscription } from '../../shared/ports/bus.ts';
import type { SagaConfig } from '../../shared/saga/config.ts';
import type { WorkerBus } from '../bus/index.ts';
import { coalescing } from './coalesce.ts';
import { ORCHESTRATOR_GROUP, orchestratorHandler } from './orchestrator.ts';
import { createOrdersService, type OrdersService } from './orders-service.ts';
import { DEALS_GROUP, dealsHandler } from './participants/deals.ts';
import { NOTIFICATION_GROUP, notificationHandler } from './participants/notification.ts';
import { PROFILE_GROUP, profileHandler } from './participants/profile.ts';
import { startSweeper, type Sweeper } from './sweeper.ts';
import { sagaCrms } from './regions.ts';
import type { RegionPorts } from '../../shared/regions/ports.ts';
import type { WorkerRegionStores } from '../regions/stores.ts';

export type SagaComponent = 'orchestrator' | 'profile' | 'deals' | 'notification' | 'sweeper';
export const SAGA_COMPONENTS: readonly SagaComponent[] = ['orchestrator', 'profile', 'deals', 'notification', 'sweeper'];

export interface SagaDeps {
  /** The central CRM: sagas without a region (implicit mode, or started before regions were configured). */
  crm: postgres.Sql;
  /** Each region's CRM (data residency): a saga acts on its customer's region's (saga/regions.ts). */
  regions?: RegionPorts<WorkerRegionStores>;
  platform: postgres.Sql;
  bus: WorkerBus<BionicTopics>;
  /** Where notifications are pushed for the edge (a region's own KV, if it has one, takes its sagas'); without it they are only stored. */
  kv?: Kv;
  log: Logger;
  config: SagaConfig;
  /** Which parts run here (default: all). Tests leave some out to stall a saga on purpose. */
  components?: readonly SagaComponent[];
  /** Called with the number of sagas each committed orchestrator batch finished. */
  onFinished?: (count: number) => void;
}

export interface SagaRuntime {
  orders: OrdersService;
  /** Present when the sweeper runs here. */
  sweeper?: Sweeper;
  /** Stops consuming (batches in hand finish and commit) and the sweeper. */
  stop(): Promise<void>;
}

// Conflicts (optimistic locking, deadlock victims) are transient and usually clear at once.
const RETRY: Partial<RetryPolicy> = { maximumAttempts: 12, initialIntervalMs: 25, backoffCoefficient: 2, maximumIntervalMs: 10_000 };

export async function startSaga(deps: SagaDeps): Promise<SagaRuntime> {
  const on = new Set(deps.components ?? SAGA_COMPONENTS);
  const log = deps.log.child({ component: 'saga' });
  const { platform, bus } = deps;
  const crm = sagaCrms(deps.crm, deps.regions);
  const orders = createOrdersService({ crm, platform, bus, log });
  const apply = { bus, stepTimeoutMs: deps.config.stepTimeoutMs };
  const subs: Subscription[] = [];
  try {
    if (on.has('orchestrator')) {
      subs.push(await bus.subscribe({
        group: ORCHESTRATOR_GROUP, topics: ['saga.events'], retry: RETRY,
        handler: coalescing(orchestratorHandler({ ...apply, platform, log, onFinished: deps.onFinished })),
      }));
    }
    if (on.has('profile')) {
      subs.push(await bus.subscribe({ group: PROFILE_GROUP, topics: ['profile.commands'], retry: RETRY, handler: coalescing(profileHandler({ crm, bus, log })) }));
    }
    if (on.has('deals')) {
      subs.push(await bus.subscribe({ group: DEALS_GROUP, topics: ['deals.commands'], retry: RETRY, handler: coalescing(dealsHandler({ crm, bus, log })) }));
    }
    if (on.has('notification')) {
      subs.push(await bus.subscribe({
        group: NOTIFICATION_GROUP, topics: ['notification.commands'], retry: RETRY,
        handler: coalescing(notificationHandler({ platform, crm, bus, kv: deps.kv, regionKv: (region) => deps.regions?.get(region).kv, log })),
      }));
    }
  } catch (err) {
    await Promise.allSettled(subs.map((s) => s.stop()));
    throw err;
  }
  const sweeper = on.has('sweeper')
    ? startSweeper({ ...apply, platform, crm, log, intervalMs: deps.config.sweepIntervalMs, registerOrphans: (ms) => orders.registerOrphans(ms) })
    : undefined;
  log.info('order saga running', { components: [...on] });
  return {
    orders,
    sweeper,
    async stop() {
      await sweeper?.stop();
      await Promise.all(subs.map((s) => s.stop()));
    },
  };
}
