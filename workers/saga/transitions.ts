/**
 * The MANUAL_CREATE_ORDER saga as data (seed 004's transition table, statuses spelled correctly),
 * and {@link step}, the pure function that applies one event to one saga. The orchestrator
 * (orchestrator.ts) only loads sagas, calls `step`, and stores what it returns.
 *
 * | event          | from              | to           | commands                                      |
 * |----------------|-------------------|--------------|-----------------------------------------------|
 * | REGISTER       | —                 | DRAFT        | APPROVE_ORDER → profile                       |
 * | ORDER_APPROVED | DRAFT             | APPROVED     | APPROVE_DEAL → deals                          |
 * | ORDER_REJECTED | DRAFT             | REJECTED     | REJECT_DEAL → deals                           |
 * | DEAL_UPDATED   | APPROVED/REJECTED | NOTIFICATION | NOTIFY → notification                         |
 * | NOTIFIED       | NOTIFICATION      | FINISHED     | —                                             |
 * | TIMEOUT        | DRAFT/APPROVED    | REJECTED     | RELEASE_FUNDS → profile, REJECT_DEAL → deals  |
 *
 * A reply fits only if it answers the command the saga is waiting for (`causationId` = `awaiting`),
 * so a late reply to a superseded command — say ORDER_APPROVED after the saga timed out — is
 * recorded and ignored like any other event that does not fit.
 */
import type { SagaCommand } from '../../shared/bus/topics.ts';
import type { SagaState } from '../../shared/saga/api.ts';
import { COMMAND_TOPICS, eventPayloads, type CommandTopic, type CommandType, type SagaContext, type SagaEventType } from './messages.ts';

export interface Transition {
  on: SagaEventType;
  /** `null`: the event starts a saga. */
  from: SagaState | null;
  to: SagaState;
  /** Sent in the transition's transaction; the saga then waits for the reply to the one marked `awaitReply`. */
  send: readonly { command: CommandType; awaitReply?: true }[];
  /** Facts the transition adds to the context. */
  set?: Partial<SagaContext>;
}

export const TRANSITIONS: readonly Transition[] = [
  { on: 'REGISTER', from: null, to: 'DRAFT', send: [{ command: 'APPROVE_ORDER', awaitReply: true }] },
  { on: 'ORDER_APPROVED', from: 'DRAFT', to: 'APPROVED', send: [{ command: 'APPROVE_DEAL', awaitReply: true }], set: { outcome: 'APPROVED' } },
  { on: 'ORDER_REJECTED', from: 'DRAFT', to: 'REJECTED', send: [{ command: 'REJECT_DEAL', awaitReply: true }], set: { outcome: 'REJECTED' } },
  { on: 'DEAL_UPDATED', from: 'APPROVED', to: 'NOTIFICATION', send: [{ command: 'NOTIFY', awaitReply: true }] },
  { on: 'DEAL_UPDATED', from: 'REJECTED', to: 'NOTIFICATION', send: [{ command: 'NOTIFY', awaitReply: true }] },
  { on: 'NOTIFIED', from: 'NOTIFICATION', to: 'FINISHED', send: [] },
  // Compensation: profile may have reserved funds (or may still do so: its queue is ordered per
  // saga, so RELEASE_FUNDS is handled after any APPROVE_ORDER); deals records the rejection.
  { on: 'TIMEOUT', from: 'DRAFT', to: 'REJECTED', send: [{ command: 'RELEASE_FUNDS' }, { command: 'REJECT_DEAL', awaitReply: true }], set: { outcome: 'REJECTED' } },
  { on: 'TIMEOUT', from: 'APPROVED', to: 'REJECTED', send: [{ command: 'RELEASE_FUNDS' }, { command: 'REJECT_DEAL', awaitReply: true }], set: { outcome: 'REJECTED' } },
];

/** States a saga may not stay in longer than the step timeout: those a TIMEOUT leads out of. */
export const TIMED_STATES: ReadonlySet<SagaState> = new Set(TRANSITIONS.filter((t) => t.on === 'TIMEOUT' && t.from).map((t) => t.from!));

/** A saga as the orchestrator holds it. */
export interface SagaRecord {
  id: string;
  state: SagaState;
  version: number;
  context: SagaContext;
  awaiting: string | null;
  /** Deadline of the current state, relative to when it is stored; `null`: none. */
  timeoutMs: number | null;
}

/** An event as the orchestrator receives it (the bus envelope, or a TIMEOUT it makes itself). */
export interface SagaEventIn {
  messageId: string;
  sagaId: string;
  type: string;
  payload: Record<string, unknown>;
  causationId?: string;
}

export type OutgoingCommand = SagaCommand & { topic: CommandTopic };

export type StepResult =
  | { outcome: 'applied'; transition: Transition; saga: SagaRecord; commands: OutgoingCommand[] }
  | { outcome: 'ignored'; reason: string };

const ignore = (reason: string): StepResult => ({ outcome: 'ignored', reason });

/** Applies `event` to `saga` (null: none exists yet). Pure: the caller stores the result. */
export function step(saga: SagaRecord | null, event: SagaEventIn, opts: { stepTimeoutMs: number; now?: number }): StepResult {
  if (!(event.type in eventPayloads)) return ignore(`unknown event type ${event.type}`);
  const type = event.type as SagaEventType;
  const parsed = eventPayloads[type].safeParse(event.payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return ignore(`invalid ${type} payload: ${issue ? `${issue.path.join('.') || '(root)'} ${issue.message}` : 'unreadable'}`);
  }
  if (!saga && type !== 'REGISTER') return ignore(`no saga ${event.sagaId}`);
  if (saga && type === 'REGISTER') return ignore(`saga ${saga.id} is already registered (state ${saga.state})`);
  const from = saga?.state ?? null;
  const transition = TRANSITIONS.find((t) => t.on === type && t.from === from);
  if (!transition) return ignore(`${type} does not fit state ${from}`);
  if (saga && type !== 'TIMEOUT' && event.causationId !== saga.awaiting) {
    return ignore(`${type} answers ${event.causationId ?? 'no command'}, but the saga awaits ${saga.awaiting ?? 'nothing'}`);
  }

  const version = (saga?.version ?? 0) + 1;
  const context = { ...(saga?.context ?? {}), ...(parsed.data as Partial<SagaContext>), ...transition.set } as SagaContext;
  const ts = opts.now ?? Date.now();
  const commands: OutgoingCommand[] = transition.send.map(({ command }) => ({
    topic: COMMAND_TOPICS[command],
    messageId: `${event.sagaId}/v${version}/${command}`,
    sagaId: event.sagaId,
    type: command,
    payload: context,
    ts,
    causationId: event.messageId,
  }));
  const awaited = transition.send.findIndex((s) => s.awaitReply);
  return {
    outcome: 'applied',
    transition,
    commands,
    saga: {
      id: event.sagaId,
      state: transition.to,
      version,
      context,
      awaiting: awaited >= 0 ? commands[awaited]!.messageId : null,
      timeoutMs: TIMED_STATES.has(transition.to) ? opts.stepTimeoutMs : null,
    },
  };
}
