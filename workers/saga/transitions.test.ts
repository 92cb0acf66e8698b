import { describe, expect, it } from 'vitest';
import { SAGA_STATES } from '../../shared/saga/api.ts';
import { step, TIMED_STATES, TRANSITIONS, type SagaEventIn, type SagaRecord, type StepResult } from './transitions.ts';

const register: SagaEventIn = {
  messageId: 'order-7/REGISTER', sagaId: 'order-7', type: 'REGISTER',
  payload: { orderId: '7', customerId: '3', recipient: 'user3', modelId: 2, modelName: 'Grip 2', price: '1200.00' },
};
const opts = { stepTimeoutMs: 5000, now: 1_700_000_000_000 };

function applied(r: StepResult) {
  if (r.outcome !== 'applied') throw new Error(`expected applied, got ignored: ${r.reason}`);
  return r;
}
/** The participant's reply to the command the saga awaits. */
const reply = (saga: SagaRecord, type: string, payload: Record<string, unknown>): SagaEventIn => ({
  messageId: `${saga.awaiting}/reply`, sagaId: saga.id, type, payload, causationId: saga.awaiting ?? undefined,
});

describe('saga transition table', () => {
  it('has one transition per (event, state), one awaited reply per step, and no way out of FINISHED', () => {
    const keys = TRANSITIONS.map((t) => `${t.on}@${t.from}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const t of TRANSITIONS) {
      if (t.to !== 'FINISHED') expect(t.send.filter((s) => s.awaitReply)).toHaveLength(1);
      expect(SAGA_STATES).toContain(t.to);
    }
    expect(TRANSITIONS.some((t) => t.from === 'FINISHED')).toBe(false);
    for (const s of SAGA_STATES.filter((s) => s !== 'FINISHED')) expect(TRANSITIONS.some((t) => t.from === s), s).toBe(true);
    expect([...TIMED_STATES].sort()).toEqual(['APPROVED', 'DRAFT']);
  });

  it('walks the approval path REGISTER → DRAFT → APPROVED → NOTIFICATION → FINISHED', () => {
    const r1 = applied(step(null, register, opts));
    expect(r1.saga).toMatchObject({ state: 'DRAFT', version: 1, timeoutMs: 5000 });
    expect(r1.commands).toEqual([expect.objectContaining({
      topic: 'profile.commands', type: 'APPROVE_ORDER', messageId: 'order-7/v1/APPROVE_ORDER', causationId: 'order-7/REGISTER', sagaId: 'order-7',
    })]);
    expect(r1.commands[0]!.payload).toMatchObject({ orderId: '7', price: '1200.00', recipient: 'user3' });
    expect(r1.saga.awaiting).toBe('order-7/v1/APPROVE_ORDER');

    const r2 = applied(step(r1.saga, reply(r1.saga, 'ORDER_APPROVED', { reserved: '1200.00' }), opts));
    expect(r2.saga).toMatchObject({ state: 'APPROVED', version: 2, timeoutMs: 5000 });
    expect(r2.saga.context).toMatchObject({ outcome: 'APPROVED', reserved: '1200.00', orderId: '7' });
    expect(r2.commands.map((c) => [c.topic, c.type])).toEqual([['deals.commands', 'APPROVE_DEAL']]);

    const r3 = applied(step(r2.saga, reply(r2.saga, 'DEAL_UPDATED', { orderStatus: 'APPROVED', orderVersion: 2 }), opts));
    expect(r3.saga).toMatchObject({ state: 'NOTIFICATION', version: 3, timeoutMs: null });
    expect(r3.commands.map((c) => [c.topic, c.type])).toEqual([['notification.commands', 'NOTIFY']]);

    const r4 = applied(step(r3.saga, reply(r3.saga, 'NOTIFIED', { notificationId: '41' }), opts));
    expect(r4.saga).toMatchObject({ state: 'FINISHED', version: 4, awaiting: null, timeoutMs: null });
    expect(r4.commands).toEqual([]);
  });

  it('walks the rejection path DRAFT → REJECTED → NOTIFICATION', () => {
    const draft = applied(step(null, register, opts)).saga;
    const rejected = applied(step(draft, reply(draft, 'ORDER_REJECTED', { reason: 'insufficient funds' }), opts));
    expect(rejected.saga).toMatchObject({ state: 'REJECTED', timeoutMs: null });
    expect(rejected.saga.context).toMatchObject({ outcome: 'REJECTED', reason: 'insufficient funds' });
    expect(rejected.commands.map((c) => c.type)).toEqual(['REJECT_DEAL']);
    const notifying = applied(step(rejected.saga, reply(rejected.saga, 'DEAL_UPDATED', { orderStatus: 'REJECTED', orderVersion: 2 }), opts));
    expect(notifying.saga.state).toBe('NOTIFICATION');
  });

  it('times out DRAFT and APPROVED into REJECTED with compensation, and nothing else', () => {
    const draft = applied(step(null, register, opts)).saga;
    const timeout = (s: SagaRecord): SagaEventIn => ({ messageId: `${s.id}/v${s.version}/TIMEOUT`, sagaId: s.id, type: 'TIMEOUT', payload: { reason: 'slow' } });
    const r = applied(step(draft, timeout(draft), opts));
    expect(r.saga).toMatchObject({ state: 'REJECTED', version: 2 });
    expect(r.saga.context).toMatchObject({ outcome: 'REJECTED', reason: 'slow' });
    expect(r.commands.map((c) => [c.topic, c.type])).toEqual([['profile.commands', 'RELEASE_FUNDS'], ['deals.commands', 'REJECT_DEAL']]);
    expect(r.saga.awaiting).toBe(r.commands[1]!.messageId);
    // The late approval answers a command the saga no longer waits for.
    const late = step(r.saga, reply(draft, 'ORDER_APPROVED', { reserved: '1200.00' }), opts);
    expect(late).toEqual({ outcome: 'ignored', reason: expect.stringContaining('does not fit state REJECTED') });
    const approved = applied(step(draft, reply(draft, 'ORDER_APPROVED', { reserved: '1.00' }), opts)).saga;
    expect(applied(step(approved, timeout(approved), opts)).saga.state).toBe('REJECTED');
    expect(step(r.saga, timeout(r.saga), opts).outcome).toBe('ignored');
  });

  it('ignores events that do not fit, saying why', () => {
    const draft = applied(step(null, register, opts)).saga;
    const reason = (r: StepResult) => (r.outcome === 'ignored' ? r.reason : 'applied');
    expect(reason(step(null, { ...register, type: 'ORDER_APPROVED', payload: { reserved: '1.00' } }, opts))).toBe('no saga order-7');
    expect(reason(step(draft, register, opts))).toMatch(/already registered/);
    expect(reason(step(draft, reply(draft, 'NOTIFIED', { notificationId: '1' }), opts))).toBe('NOTIFIED does not fit state DRAFT');
    expect(reason(step(draft, { ...reply(draft, 'ORDER_APPROVED', { reserved: '1.00' }), causationId: 'order-7/v9/APPROVE_ORDER' }, opts)))
      .toMatch(/answers order-7\/v9\/APPROVE_ORDER, but the saga awaits order-7\/v1\/APPROVE_ORDER/);
    expect(reason(step(draft, reply(draft, 'ORDER_APPROVED', { reserved: 'lots' }), opts))).toMatch(/invalid ORDER_APPROVED payload: reserved/);
    expect(reason(step(draft, reply(draft, 'SOMETHING_ELSE', {}), opts))).toBe('unknown event type SOMETHING_ELSE');
  });
});
