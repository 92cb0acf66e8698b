/**
 * Load for the CDC benchmark, in its own process so it does not share CDC's event loop. Prints JSON
 * lines on stdout.
 *
 *   burst <url> <transactions> <rowsPerTx> <connections>
 *     updates `rowsPerTx` orders per transaction as fast as it can; prints {"event":"burst","firstCommitAt","lastCommitAt","changes"}
 *   steady <url> <txPerSecond> <seconds> <connections>
 *     one single-row update per transaction at a steady rate, each stamping `note` with the statement's
 *     clock (`lag:<epoch ms>`); prints {"event":"steady","transactions","seconds"}
 */
import postgres from 'postgres';

const [mode, url, a, b, c] = process.argv.slice(2);
const say = (e: Record<string, unknown>) => process.stdout.write(JSON.stringify(e) + '\n');
if (!url || !a || !b || !c || (mode !== 'burst' && mode !== 'steady')) {
  console.error('usage: cdc-load burst|steady <url> …');
  process.exit(2);
}
const connections = Number(c);
const sql = postgres(url, { max: connections, onnotice: () => {} });
const [{ lo, hi }] = (await sql`SELECT min(id)::int8 AS lo, max(id)::int8 AS hi FROM orders`) as unknown as [{ lo: string; hi: string }];
const first = Number(lo);
const span = Number(hi) - first + 1;

if (mode === 'burst') {
  const transactions = Number(a);
  const rows = Number(b);
  let next = 0;
  let firstCommitAt = 0;
  let lastCommitAt = 0;
  await Promise.all(Array.from({ length: connections }, async () => {
    for (let i = next++; i < transactions; i = next++) {
      const from = first + ((i * rows) % Math.max(1, span - rows));
      await sql`UPDATE orders SET version = version + 1, status = ${i % 2 ? 'APPROVED' : 'NOTIFICATION'} WHERE id >= ${from} AND id < ${from + rows}`;
      lastCommitAt = Date.now();
      if (!firstCommitAt) firstCommitAt = lastCommitAt;
    }
  }));
  say({ event: 'burst', firstCommitAt, lastCommitAt, changes: transactions * rows });
} else {
  const rate = Number(a);
  const seconds = Number(b);
  const started = Date.now();
  let sent = 0;
  let done = 0;
  const inflight = new Set<Promise<unknown>>();
  while (Date.now() - started < seconds * 1000) {
    // Issue what the schedule says is due by now, never more than the connections can carry.
    const due = Math.floor(((Date.now() - started) / 1000) * rate);
    while (sent < due && inflight.size < connections * 4) {
      const id = first + ((sent * 7919) % span);
      const p = sql`UPDATE orders SET note = 'lag:' || (extract(epoch FROM clock_timestamp()) * 1000)::bigint WHERE id = ${id}`
        .then(() => { done++; inflight.delete(p); });
      inflight.add(p);
      sent++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inflight);
  say({ event: 'steady', transactions: done, seconds: (Date.now() - started) / 1000 });
}
await sql.end();
