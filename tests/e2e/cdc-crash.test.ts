/**
 * Zero loss under kill -9: CDC runs in a child process (tests/support/cdc-child.ts) while a random
 * workload writes to the CRM without pause. The child is killed with SIGKILL at a random one of its
 * progress reports (table loaded, streaming started, published, sunk, acknowledged) at least ten
 * times, each new child replaying from the slot. Then the workload stops, a last child catches up and
 * stops cleanly, and every CRM table must equal its ClickHouse replica (FINAL) row for row.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CdcStatus } from '../../shared/ports/cdc.ts';
import { parseLsn } from '../../workers/cdc/lsn.ts';
import { diffReplica, openOlap, startCdcDatabases, type CdcDatabases } from '../support/cdc-stack.ts';
import { RandomWorkload, rng, seedCrm } from '../support/cdc-workload.ts';

const ROOT = join(import.meta.dirname, '../..');
const KILLS = 12;
// The bus stores batches of 16 KiB and more with COPY (about 40 envelopes), so crashes hit COPY publishes too.
const OPTIONS = { heartbeatMs: 100, ackIntervalMs: 50, batchMax: 500, statusIntervalMs: 60_000, bus: { copyMinBytes: 16 * 1024 } };
const KINDS = ['streaming', 'published', 'sunk', 'acknowledged', 'acknowledged'] as const;
type Line = { event: string; type?: string; lsn?: string; table?: string; copies?: number } & Partial<CdcStatus>;

let db: CdcDatabases;
const children = new Set<ChildProcess>();

class Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: { test: (l: Line) => boolean; resolve: (l: Line) => void }[] = [];
  private watchers = new Set<(l: Line) => void>();
  private stderr: string[] = [];
  /** Batches this child's bus stored with COPY, as of its last line. */
  copies = 0;

  constructor() {
    this.proc = spawn(process.execPath, ['--import', 'tsx', 'tests/support/cdc-child.ts', db.crmUrl, db.platformUrl, db.chdbPath, JSON.stringify(OPTIONS)], {
      cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.add(this.proc);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => { children.delete(this.proc); resolve({ code, signal }); }));
    this.proc.stderr!.on('data', (d) => { this.stderr.push(String(d)); if (this.stderr.length > 50) this.stderr.shift(); });
    createInterface({ input: this.proc.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as Line;
      this.copies = Math.max(this.copies, line.copies ?? 0);
      for (const w of this.watchers) w(line);
      this.waiters = this.waiters.filter((w) => (w.test(line) ? (w.resolve(line), false) : true));
    });
  }

  /**
   * The first line (from now on) that passes `test`; fails if the child exits or time runs out. With
   * `progress`, the time limit counts from the last line that shows progress (a busy machine catches
   * up slowly; a stalled child still fails).
   */
  next(test: (l: Line) => boolean, what: string, timeoutMs = 90_000, progress?: (l: Line) => boolean): Promise<Line> {
    return new Promise((resolve, reject) => {
      const fail = (why: string) => reject(new Error(`${why} waiting for ${what}; child stderr:\n${this.stderr.join('')}`));
      let timer = setTimeout(() => fail(`no progress for ${timeoutMs} ms`), timeoutMs);
      const watch = progress && ((l: Line) => {
        if (!progress(l)) return;
        clearTimeout(timer);
        timer = setTimeout(() => fail(`no progress for ${timeoutMs} ms`), timeoutMs);
      });
      if (watch) this.watchers.add(watch);
      const done = () => { clearTimeout(timer); if (watch) this.watchers.delete(watch); };
      void this.exited.then(() => { done(); fail('the child exited'); });
      this.waiters.push({ test, resolve: (l) => { done(); resolve(l); } });
    });
  }

  status(): Promise<Line> {
    const reply = this.next((l) => l.event === 'status', 'status');
    this.proc.stdin!.write('status\n');
    return reply;
  }
}

beforeAll(async () => {
  db = await startCdcDatabases('cdc-crash');
  await seedCrm(db.crm, { customers: 400, orders: 800 });
}, 180_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL'); // only when a test failed before its own kill
  await db?.stop();
}, 60_000);

describe('CDC under kill -9', () => {
  it('loses nothing and duplicates nothing: ClickHouse equals the CRM after twelve crashes', async () => {
    const r = rng(20_240_501);
    const workload = new RandomWorkload(db.crm, 7, { truncates: true });
    const stopWorkload = new AbortController();
    const writing = workload.run(stopWorkload.signal, 3);
    const killedAt: string[] = [];
    const spawned: Child[] = [];
    try {
      for (let i = 0; i < KILLS; i++) {
        const child = new Child();
        spawned.push(child);
        // Each kind of moment in turn, at a random occurrence: the first child dies when its first
        // table finished loading (the others are still loading), later ones right after start-up, after a
        // publish (not yet sunk), after an insert into ClickHouse (not yet committed on the bus), after an ack.
        const kind = i === 0 ? 'snapshot' : r.pick(KINDS);
        let left = kind === 'streaming' || kind === 'snapshot' ? 1 : r.int(1, 30);
        const at = await child.next((l) => l.event === 'cdc' && l.type === kind && --left === 0, `kill point ${i + 1} (${kind})`);
        child.proc.kill('SIGKILL');
        expect((await child.exited).signal).toBe('SIGKILL');
        killedAt.push(at.type ?? at.event);
      }
    } finally {
      stopWorkload.abort();
      await writing;
    }
    const target = await db.walPosition();
    const last = new Child();
    spawned.push(last);
    let acknowledged = 0n;
    const advances = (l: Line) => {
      if (l.type !== 'acknowledged' || parseLsn(l.lsn!) <= acknowledged) return false;
      acknowledged = parseLsn(l.lsn!);
      return true;
    };
    await last.next((l) => l.type === 'acknowledged' && parseLsn(l.lsn!) >= target, 'the last child to catch up', 90_000, advances);
    for (;;) {
      const s = await last.status();
      if (s.tables!.every((t) => t.status === 'streaming')) break;
      await last.next((l) => l.type === 'snapshot', 'a snapshot to finish');
    }
    last.proc.kill('SIGTERM');
    expect((await last.exited).code).toBe(0);

    const copies = spawned.reduce((n, c) => n + c.copies, 0);
    console.log(`cdc-crash: ${workload.transactions} transactions, ${copies} COPY publishes, killed at: ${killedAt.join(', ')}`);
    expect(killedAt.length).toBeGreaterThanOrEqual(10);
    expect(copies).toBeGreaterThan(0);
    expect(workload.transactions).toBeGreaterThan(200);
    const olap = await openOlap(db.chdbPath);
    try {
      for (const table of ['customers', 'customer_accounts', 'orders', 'prosthesis_models', 'audit_log', 'prostheses', 'order_reservations']) {
        const d = await diffReplica(db.crm, olap, table);
        expect({ table, missing: d.missing, extra: d.extra, different: d.different }).toEqual({ table, missing: [], extra: [], different: [] });
      }
    } finally {
      await olap.close();
    }
  }, 600_000);
});
