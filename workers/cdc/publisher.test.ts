import { describe, expect, it } from 'vitest';
import type { BionicTopics } from '../../shared/bus/topics.ts';
import type { Bus, PartitionLag } from '../../shared/ports/bus.ts';
import { AckTracker } from './acks.ts';
import type { CdcMessage } from './envelopes.ts';
import { Publisher } from './publisher.ts';

/** A bus whose publishes wait for `release()` and whose lag the test sets. */
function fakeBus() {
  const published: { topic: string; keys: string[] }[] = [];
  let gate: { promise: Promise<void>; open: () => void } | null = null;
  let lag: PartitionLag[] = [];
  const bus = {
    async publish(topic: string, messages: readonly CdcMessage[]) {
      if (gate) await gate.promise;
      published.push({ topic, keys: messages.map((m) => m.key) });
    },
    async lag() { return lag; },
  } as unknown as Bus<BionicTopics>;
  return {
    bus, published,
    hold() { let open!: () => void; gate = { promise: new Promise<void>((r) => (open = r)), open }; },
    release() { const g = gate; gate = null; g?.open(); },
    setLag(rows: [string, number, number, number][]) {
      lag = rows.map(([topic, partition, end, committed]) => ({ group: 'g', topic, partition, committedOffset: String(committed), endOffset: String(end), lag: end - committed }));
    },
  };
}

const msg = (key: string): CdcMessage => ({ key, value: null as never });
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('Publisher', () => {
  it('groups what arrives during a flight into the next publish and marks only finished transactions published', async () => {
    const f = fakeBus();
    const p = new Publisher(f.bus, { batchMax: 2, lingerMs: 1 });
    f.hold();
    p.add('t', [msg('a'), msg('b')]); // batch full: flight 1 starts
    p.endTx({ lsn: 10n, commitTimeMs: 1 });
    p.add('t', [msg('c')]); // mid-transaction 20, behind the flight
    expect(p.published).toBeNull();
    f.release();
    await tick();
    expect(p.published?.lsn).toBe(10n);
    p.add('t', [msg('d')]);
    p.endTx({ lsn: 20n, commitTimeMs: 2 });
    await p.drain();
    expect(f.published.map((x) => x.keys)).toEqual([['a', 'b'], ['c'], ['d']]);
    expect(p.published?.lsn).toBe(20n);
  });

  it('marks an empty transaction published at once when nothing is pending, and fails loudly after a publish error', async () => {
    const f = fakeBus();
    const p = new Publisher(f.bus, { batchMax: 10, lingerMs: 1 });
    p.endTx({ lsn: 5n, commitTimeMs: 1 });
    expect(p.published?.lsn).toBe(5n);
    (f.bus as { publish: unknown }).publish = async () => { throw new Error('bus down'); };
    p.add('t', [msg('x')]);
    await expect(p.drain()).rejects.toThrow('bus down');
    await expect(p.ready()).rejects.toThrow('bus down');
  });
});

describe('AckTracker', () => {
  it('acknowledges a transaction only once the sink has committed past every partition end seen after it was published', async () => {
    const f = fakeBus();
    const acks = new AckTracker(f.bus, 'g', () => ['t']);
    f.setLag([['t', 0, 5, 5], ['t', 1, 3, 3]]);
    expect((await acks.tick({ lsn: 10n, commitTimeMs: 1 }))?.lsn).toBe(10n); // nothing pending
    f.setLag([['t', 0, 8, 5], ['t', 1, 4, 3]]);
    expect(await acks.tick({ lsn: 20n, commitTimeMs: 2 })).toBeNull(); // mark: ends 8 and 4
    f.setLag([['t', 0, 9, 8], ['t', 1, 6, 3]]);
    expect(await acks.tick({ lsn: 30n, commitTimeMs: 3 })).toBeNull(); // partition 1 still behind 4
    f.setLag([['t', 0, 9, 8], ['t', 1, 6, 5]]);
    expect((await acks.tick({ lsn: 30n, commitTimeMs: 3 }))?.lsn).toBe(20n); // 20 reached, 30 needs 9 and 6
    f.setLag([['t', 0, 9, 9], ['t', 1, 6, 6]]);
    expect((await acks.tick({ lsn: 30n, commitTimeMs: 3 }))?.lsn).toBe(30n);
    expect(acks.acked?.lsn).toBe(30n);
  });

  it('waits for the sink in a barrier', async () => {
    const f = fakeBus();
    const acks = new AckTracker(f.bus, 'g', () => ['t']);
    f.setLag([['t', 0, 4, 1]]);
    let done = false;
    const wait = acks.waitSunk(new AbortController().signal, 1).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(false);
    f.setLag([['t', 0, 7, 4]]);
    await wait;
    expect(done).toBe(true);
  });
});
