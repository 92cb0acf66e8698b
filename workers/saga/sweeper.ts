/**
 * Background upkeep of the order saga, run by every worker (they coordinate through row locks):
 *
 * - **Timeouts.** Sagas past their deadline (states with a TIMEOUT transition: DRAFT, APPROVED) get a
 *   TIMEOUT event, which rejects them and sends the compensation (RELEASE_FUNDS, REJECT_DEAL). The
 *   sweep locks the sagas it takes (`FOR UPDATE SKIP LOCKED`, so workers never take the same ones)
 *   and applies the event in the same transaction; an orchestrator that read a saga before the
 *   timeout then fails its optimistic version check and retries on the rejected saga.
 * - **Orphans.** An order committed in the CRM whose REGISTER never reached the bus (the API process
 *   died in between) is registered again once it is older than the step timeout.
 * - **Dedupe records** older than {@link SweeperOptions.keepProcessedMs} are pruned in both databases.
 */
import type postgres from 'postgres';
import type { Logger } from '../../shared/log.ts';
import { pruneProcessed } from '../bus/index.ts';
import { asSagaCrms, type SagaCrms } from './regions.ts';
import type { SagaContext } from './messages.ts';
import { applyEvents, type ApplyDeps } from './store.ts';
import type { SagaRecord } from './transitions.ts';
import type { SagaState } from '../../shared/saga/api.ts';

export interface SweeperOptions extends ApplyDeps {
  platform: postgres.Sql;
  /** The CRM, or every region's: dedupe records and stored replies are pruned in each. */
  crm: postgres.Sql | SagaCrms;
  log: Logger;
  intervalMs: number;
  /** Re-publishes REGISTER for orders without a saga older than the given age; returns how many. */
  registerOrphans?: (olderThanMs: number) => Promise<number>;
  /** Keep dedupe records this long (default 7 days: far beyond any redelivery). */
  keepProcessedMs?: number;
  /** Sagas per sweep transaction (default 100). */
  batchSize?: number;
}

export interface Sweeper {
  /** One pass over expired sagas; resolves with how many timed out. */
  sweepTimeouts(): Promise<number>;
  stop(): Promise<void>;
}

const ORPHAN_EVERY = 10;
const PRUNE_EVERY_MS = 3_600_000;

export function startSweeper(opts: SweeperOptions): Sweeper {
  const batchSize = opts.batchSize ?? 100;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  let round = 0;
  let lastPrune = Date.now();

  async function sweepTimeouts(): Promise<number> {
    return opts.platform.begin(async (tx) => {
      const rows = await tx<{ id: string; state: SagaState; version: number; context: SagaContext; awaiting: string | null }[]>`
        SELECT id, state, version, context, awaiting FROM saga_instances
        WHERE deadline_at < clock_timestamp() ORDER BY deadline_at LIMIT ${batchSize} FOR UPDATE SKIP LOCKED`;
      if (rows.length === 0) return 0;
      const locked = new Map<string, SagaRecord>(rows.map((r) => [r.id, { ...r, timeoutMs: null }]));
      const summary = await applyEvents(tx, rows.map((r) => ({
        messageId: `${r.id}/v${r.version}/TIMEOUT`, sagaId: r.id, type: 'TIMEOUT',
        payload: { reason: `no answer within ${opts.stepTimeoutMs} ms in state ${r.state}` },
      })), opts, locked);
      opts.log.warn('sagas timed out and were rejected', { count: summary.applied });
      return summary.applied;
    });
  }

  async function pass() {
    while ((await sweepTimeouts()) === batchSize && !stopped);
    if (opts.registerOrphans && ++round % ORPHAN_EVERY === 0) {
      const n = await opts.registerOrphans(opts.stepTimeoutMs);
      if (n) opts.log.warn('orders without a saga registered again', { count: n });
    }
    if (Date.now() - lastPrune > PRUNE_EVERY_MS) {
      lastPrune = Date.now();
      const keep = opts.keepProcessedMs ?? 7 * 24 * 3_600_000;
      const crms = asSagaCrms(opts.crm).all().map((c) => c.sql);
      await Promise.all([pruneProcessed(opts.platform, keep), ...crms.map((crm) => pruneProcessed(crm, keep))]);
      for (const crm of crms) await crm`DELETE FROM saga_replies WHERE created_at < now() - make_interval(secs => ${keep / 1000})`;
    }
  }

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = pass().catch((err) => opts.log.warn('saga sweep failed; next pass retries', { err })).finally(schedule);
    }, opts.intervalMs);
  };
  schedule();

  return {
    sweepTimeouts,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
