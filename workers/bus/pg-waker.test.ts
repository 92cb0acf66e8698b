import type postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { Waker } from './pg-waker.ts';

/** A stand-in for postgres.js's `listen`: the test delivers notifications and (re)connections itself. */
async function fakeListening() {
  let notify: (payload: string) => void = () => {};
  let relisten: () => void = () => {};
  const sql = {
    listen: async (_channel: string, fn: (payload: string) => void, onlisten: () => void) => {
      notify = fn;
      relisten = onlisten;
      onlisten();
      return { unlisten: async () => {} };
    },
  } as unknown as postgres.Sql;
  const waker = await Waker.listen(sql, 'bus');
  return { waker, notify: (key: string) => notify(key), relisten: () => relisten() };
}

const settled = async (p: Promise<void>) => Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), 20))]);

describe('Waker', () => {
  it('wakes the waiters of a key, and a wait that starts after a wake-up since returns at once', async () => {
    const { waker, notify } = await fakeListening();
    const since = waker.seq('1:0');
    const waiting = waker.wait('1:0', since, 60_000);
    const other = waker.wait('1:1', waker.seq('1:1'), 60_000);
    notify('1:0');
    expect(await settled(waiting)).toBe(true);
    expect(await settled(other)).toBe(false);
    expect(await settled(waker.wait('1:0', since, 60_000))).toBe(true);
    notify('1:1');
    await other;
  });

  it('after a reconnect, also a key nobody was waiting on counts as woken (its notifications may be lost)', async () => {
    const { waker, relisten } = await fakeListening();
    const since = waker.seq('2:5'); // a partition loop busy with a batch, not waiting yet
    const waiting = waker.wait('2:6', waker.seq('2:6'), 60_000);
    relisten();
    expect(await settled(waiting)).toBe(true);
    expect(await settled(waker.wait('2:5', since, 60_000))).toBe(true);
    expect(await settled(waker.wait('2:5', waker.seq('2:5'), 30))).toBe(false);
  });
});
