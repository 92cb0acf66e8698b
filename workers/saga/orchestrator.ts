/**
 * The saga orchestrator: consumes `saga.events` (group `saga-orchestrator`) and moves sagas along the
 * transition table. One platform-database transaction per batch holds the dedupe record of every
 * event, the saga changes, their history and the commands they send — so a redelivered event is a
 * duplicate that changes nothing, and a crash anywhere leaves either all of it or none.
 *
 * Three round trips per batch (pipelined-tx.ts): BEGIN + dedupe + load; sagas + history + commands;
 * COMMIT. Loading every saga of the batch, duplicates' too, costs nothing extra and needs no wait.
 */
import type postgres from 'postgres';
import type { BatchHandler } from '../../shared/ports/bus.ts';
import type { SagaEvent } from '../../shared/bus/topics.ts';
import type { Logger } from '../../shared/log.ts';
import { firstDeliveries } from '../bus/index.ts';
import { pipelinedTx } from './pipelined-tx.ts';
import { applyEvents, loadSagas, type ApplyDeps } from './store.ts';

export const ORCHESTRATOR_GROUP = 'saga-orchestrator';

export interface OrchestratorDeps extends ApplyDeps {
  platform: postgres.Sql;
  log: Logger;
  /** Called after each committed batch with the sagas it finished (metrics, tests). */
  onFinished?: (count: number) => void;
}

export function orchestratorHandler(deps: OrchestratorDeps): BatchHandler<SagaEvent> {
  return async (messages) => {
    const summary = await pipelinedTx(deps.platform, async (tx) => {
      // The envelope's own id names an event, whatever headers a producer (or a replay) set.
      const events = messages.map((m) => ({ id: m.value.messageId, ...m.value }));
      // Dedupe first (it waits for a concurrent first delivery to commit), then the load sees its effects.
      const [{ fresh, duplicates }, sagas] = await Promise.all([
        firstDeliveries(tx, ORCHESTRATOR_GROUP, events),
        loadSagas(tx, [...new Set(events.map((e) => e.sagaId))]),
      ]);
      if (duplicates.length) deps.log.debug('saga events delivered again, skipped', { count: duplicates.length });
      return applyEvents(tx, fresh, deps, sagas);
    });
    if (summary.ignored) deps.log.info('saga events ignored (did not fit their saga)', { count: summary.ignored });
    if (summary.finished) deps.onFinished?.(summary.finished);
  };
}
