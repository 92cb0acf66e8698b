/**
 * Saga instances and their history in the platform database (infra/migrations/platform/003_saga.sql),
 * and {@link applyEvents}: load the sagas a batch of events touches, run each event through the
 * transition table, then write instances, history and outgoing commands in the caller's transaction.
 * The commands go through the bus's in-transaction publish, so a transition and the command it sends
 * commit together or not at all (the transactional outbox).
 *
 * Sagas are read without locks and written with `WHERE version = <version read>` (optimistic
 * locking). If anyone changed a saga meanwhile — a timeout sweep, or a consumer that lost its
 * partition but is still finishing — the write finds no row and {@link SagaConflictError} rolls the
 * whole transaction back, to be retried by the bus on fresh state.
 */
import type postgres from 'postgres';
import type { SagaState } from '../../shared/saga/api.ts';
import { opsEvents } from '../../shared/metrics/events.ts';
import type { WorkerBus } from '../bus/index.ts';
import type { BionicTopics } from '../../shared/bus/topics.ts';
import { outgoing, type SagaContext } from './messages.ts';
import type { SagaTx } from './pipelined-tx.ts';
import { step, type OutgoingCommand, type SagaEventIn, type SagaRecord } from './transitions.ts';

/** A saga changed between read and write; retry on fresh state. */
export class SagaConflictError extends Error {
  override readonly name = 'SagaConflictError';
}

export interface ApplyDeps {
  bus: WorkerBus<BionicTopics>;
  stepTimeoutMs: number;
}

/** NOTIFY channel: ids (comma-separated) of sagas that reached FINISHED, sent when their batch commits. */
export const FINISHED_CHANNEL = 'saga_finished';

export interface ApplySummary { applied: number; ignored: number; finished: number }

interface Row { id: string; state: SagaState; version: number; context: SagaContext; awaiting: string | null }

/** Loads sagas by id (no lock). */
export async function loadSagas(tx: postgres.Sql | SagaTx, ids: readonly string[]): Promise<Map<string, SagaRecord>> {
  const rows = await tx<Row[]>`SELECT id, state, version, context, awaiting FROM saga_instances WHERE id = ANY(${ids as string[]}::text[])`;
  return new Map(rows.map((r) => [r.id, { ...r, timeoutMs: null }]));
}

/**
 * Applies `events` in order inside `tx`. `preloaded` sagas (read by the caller, or locked by the
 * timeout sweep) are used instead of reading them again. The saga write and the commands' publishes
 * go out together (one round trip); a conflict found in the write's counts then rolls all back.
 */
export async function applyEvents(
  tx: SagaTx, events: readonly SagaEventIn[], deps: ApplyDeps, preloaded?: Map<string, SagaRecord>,
): Promise<ApplySummary> {
  if (events.length === 0) return { applied: 0, ignored: 0, finished: 0 };
  const sagas = preloaded ?? (await loadSagas(tx, [...new Set(events.map((e) => e.sagaId))]));
  const baseVersion = new Map([...sagas].map(([id, s]) => [id, s.version]));
  const history: Record<string, unknown>[] = [];
  const commands: OutgoingCommand[] = [];
  const summary: ApplySummary = { applied: 0, ignored: 0, finished: 0 };

  for (const event of events) {
    const saga = sagas.get(event.sagaId) ?? null;
    const result = step(saga, event, { stepTimeoutMs: deps.stepTimeoutMs });
    const entry = {
      saga_id: event.sagaId, event_id: event.messageId, event_type: event.type, causation_id: event.causationId ?? null,
      from_state: saga?.state ?? null, payload: event.payload,
    };
    if (result.outcome === 'ignored') {
      summary.ignored++;
      history.push({ ...entry, to_state: null, outcome: 'ignored', reason: result.reason, version: saga?.version ?? null, commands: [] });
      continue;
    }
    summary.applied++;
    if (result.saga.state === 'FINISHED') summary.finished++;
    sagas.set(event.sagaId, result.saga);
    commands.push(...result.commands);
    history.push({
      ...entry, to_state: result.saga.state, outcome: 'applied', reason: null, version: result.saga.version,
      commands: result.commands.map((c) => ({ messageId: c.messageId, type: c.type, topic: c.topic })),
    });
  }

  const changed = [...sagas.values()].filter((s) => s.version !== baseVersion.get(s.id));
  const rows = changed.map((s) => ({
    id: s.id, base: baseVersion.get(s.id) ?? null, state: s.state, version: s.version, context: s.context,
    awaiting: s.awaiting, timeout_ms: s.timeoutMs,
  }));
  // New sagas, changed sagas and the history in one statement; the counts tell whether every
  // write found its row (a missing one means someone else got there first).
  const written = tx<[{ created: number; updated: number }]>`
    WITH r AS (
      SELECT * FROM jsonb_to_recordset(${tx.json(rows as never)})
        AS r(id text, base int, state text, version int, context jsonb, awaiting text, timeout_ms float8)),
    ins AS (
      INSERT INTO saga_instances (id, state, version, context, awaiting, deadline_at, finished_at)
      SELECT r.id, r.state, r.version, r.context, r.awaiting,
             clock_timestamp() + make_interval(secs => r.timeout_ms / 1000.0),
             CASE WHEN r.state = 'FINISHED' THEN clock_timestamp() END
      FROM r WHERE r.base IS NULL
      ON CONFLICT (id) DO NOTHING RETURNING id),
    upd AS (
      UPDATE saga_instances s
      SET state = r.state, version = r.version, context = r.context, awaiting = r.awaiting,
          deadline_at = clock_timestamp() + make_interval(secs => r.timeout_ms / 1000.0),
          updated_at = clock_timestamp(),
          finished_at = CASE WHEN r.state = 'FINISHED' THEN clock_timestamp() END
      FROM r WHERE r.base IS NOT NULL AND s.id = r.id AND s.version = r.base
      RETURNING s.id),
    hist AS (
      INSERT INTO saga_history (saga_id, event_id, event_type, causation_id, from_state, to_state, outcome, reason, version, commands, payload)
      SELECT h.saga_id, h.event_id, h.event_type, h.causation_id, h.from_state, h.to_state, h.outcome, h.reason, h.version, h.commands, h.payload
      FROM jsonb_to_recordset(${tx.json(history as never)}) AS h(
        saga_id text, event_id text, event_type text, causation_id text, from_state text, to_state text,
        outcome text, reason text, version int, commands jsonb, payload jsonb)),
    -- Whoever waits for sagas to end hears it at commit, not by polling; ids in chunks, as a
    -- NOTIFY payload must stay under 8000 bytes.
    finished AS (
      SELECT pg_notify(${FINISHED_CHANNEL}, string_agg(id, ',')) FROM (
        SELECT id, (row_number() OVER ()) / 200 AS chunk FROM r WHERE state = 'FINISHED') f GROUP BY chunk)
    SELECT (SELECT count(*) FROM ins)::int AS created, (SELECT count(*) FROM upd)::int AS updated,
           (SELECT count(*) FROM finished)::int AS notified`.execute(); // first on the wire, before the publishes
  const byTopic = new Map<OutgoingCommand['topic'], OutgoingCommand[]>();
  for (const c of commands) byTopic.set(c.topic, [...(byTopic.get(c.topic) ?? []), c]);
  // Topics in a fixed order: publishing locks partitions, and concurrent batches must take them alike.
  const published = [...byTopic].sort(([a], [b]) => a.localeCompare(b))
    .map(([topic, list]) => deps.bus.publish(topic, list.map(({ topic: _t, ...command }) => outgoing(command)), { tx }));
  // Sent together, run in order; the write's error (if any) is the one that explains the others.
  const [write, ...rest] = await Promise.allSettled([written, ...published]);
  if (write!.status === 'rejected') throw write!.reason;
  const failed = rest.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const [counts] = write!.value;
  const wanted = { created: rows.filter((r) => r.base === null).length, updated: rows.filter((r) => r.base !== null).length };
  if (counts.created !== wanted.created) throw new SagaConflictError(`${wanted.created - counts.created} saga(s) were registered concurrently`);
  if (counts.updated !== wanted.updated) throw new SagaConflictError(`${wanted.updated - counts.updated} saga(s) changed since they were read`);
  for (const h of history) if (h.outcome === 'applied') opsEvents.sagaTransition(String(h.from_state ?? 'NONE'), String(h.to_state));
  return summary;
}
