/**
 * The shape shared by the participants that act on the CRM database (profile, deals). Per batch,
 * one CRM transaction records the commands as processed (`bus_processed` in the CRM, through
 * `firstDeliveries`), applies their effects and stores each reply. Replies are published to
 * `saga.events` only after that commit — the bus lives in another database, so no transaction
 * spans both. A crash in between means the batch comes back: its commands are then duplicates,
 * nothing is applied twice, and the stored replies are published again under the same message
 * ids, which the orchestrator deduplicates. Effects exactly once; replies at least once.
 * Round trips per batch: BEGIN + dedupe, one per command, the stored replies, COMMIT, the publish.
 *
 * Data residency: each command acts on its saga's region's CRM (saga/regions.ts) — dedupe records
 * and stored replies included — so a batch holding several regions' commands runs one such
 * transaction per region. The notification participant uses this shape for sagas with a region.
 */
import type postgres from 'postgres';
import type { BatchHandler } from '../../../shared/ports/bus.ts';
import type { BionicTopics, SagaCommand } from '../../../shared/bus/topics.ts';
import type { Logger } from '../../../shared/log.ts';
import { firstDeliveries, type WorkerBus } from '../../bus/index.ts';
import { outgoing } from '../messages.ts';
import { pipelinedTx, type SagaTx } from '../pipelined-tx.ts';
import { asSagaCrms, regionOfMessage, type SagaCrms } from '../regions.ts';

export interface CrmParticipantOptions {
  /** Consumer group and dedupe consumer name. */
  name: string;
  /** The CRM (one database), or each region's (the command's saga names its region). */
  crm: postgres.Sql | SagaCrms;
  bus: WorkerBus<BionicTopics>;
  log: Logger;
  /** Applies one command inside the batch's transaction; returns the reply, or null for none. */
  handle(tx: SagaTx, command: SagaCommand): Promise<SagaCommand | null>;
  /** Orders a batch's fresh commands before handling (stable: one saga's commands keep their order). */
  order?(commands: SagaCommand[]): SagaCommand[];
  /**
   * Effects outside the CRM (a KV push), run after the replies are out with every command of one
   * region's share of the batch, fresh or delivered again. Must be idempotent: when it fails, the
   * batch comes back as duplicates and it runs again.
   */
  afterCommit?(crm: postgres.Sql, region: string | undefined, commands: SagaCommand[]): Promise<void>;
}

export function crmParticipant(opts: CrmParticipantOptions): BatchHandler<SagaCommand> {
  const crms = asSagaCrms(opts.crm);
  return async (messages) => {
    const byRegion = new Map<string | undefined, SagaCommand[]>();
    for (const m of messages) {
      const region = regionOfMessage(m.value);
      byRegion.set(region, [...(byRegion.get(region) ?? []), m.value]);
    }
    const replies: SagaCommand[] = [];
    for (const [region, values] of byRegion) replies.push(...await inRegion(crms.of(region), values));
    if (replies.length) await opts.bus.publish('saga.events', replies.map(outgoing));
    if (opts.afterCommit) for (const [region, values] of byRegion) await opts.afterCommit(crms.of(region), region, values);
  };

  function inRegion(crm: postgres.Sql, values: SagaCommand[]): Promise<SagaCommand[]> {
    const commands = values.map((v) => ({ id: v.messageId, ...v }));
    return pipelinedTx(crm, async (tx) => {
      const { fresh, duplicates } = await firstDeliveries(tx, opts.name, commands);
      const out: SagaCommand[] = [];
      const stored: { command_id: string; saga_id: string; value: SagaCommand }[] = [];
      for (const { id, ...command } of opts.order ? opts.order(fresh) as typeof fresh : fresh) {
        const reply = await opts.handle(tx, command);
        if (!reply) continue;
        out.push(reply);
        stored.push({ command_id: id, saga_id: command.sagaId, value: reply });
      }
      // Both in one round trip (independent: the duplicates' replies were stored by earlier batches).
      const [, again] = await Promise.all([
        stored.length ? tx`INSERT INTO saga_replies (command_id, saga_id, value)
          SELECT command_id, saga_id, value FROM jsonb_to_recordset(${tx.json(stored as never)}) AS r(command_id text, saga_id text, value jsonb)` : null,
        duplicates.length ? tx<{ value: SagaCommand }[]>`
          SELECT value FROM saga_replies WHERE command_id = ANY(${duplicates.map((d) => d.id)}::text[])` : [],
      ]);
      if (duplicates.length) {
        opts.log.debug('saga commands delivered again; replies re-sent', { participant: opts.name, duplicates: duplicates.length, replies: again.length });
        out.push(...again.map((r) => r.value));
      }
      return out;
    });
  }
}
