/**
 * Gauges read at scrape time from what the worker's components already know, so none of them has
 * to push numbers: CDC's status (lag, retained WAL), the bus's lag per consumer group running here,
 * and sagas past their state's deadline. Each read has a timeout; a failed read drops that gauge's
 * series for the scrape (absent data, not stale data) and is logged.
 */
import type postgres from 'postgres';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../shared/log.ts';
import type { Bus } from '../../shared/ports/bus.ts';
import type { CdcControl, CdcStatus } from '../../shared/ports/cdc.ts';

export interface CollectorSources {
  /** CDC, where it runs in this worker. */
  cdc?: CdcControl;
  bus: Pick<Bus, 'lag'>;
  /** Consumer groups (and their topics) subscribed in this process. */
  groups(): ReadonlyMap<string, readonly string[]>;
  /** The platform database (saga instances). */
  platform: postgres.Sql;
  log: Logger;
  timeoutMs?: number;
}

/** States that have a deadline (a TIMEOUT transition): their series exist even at zero. */
const TIMED_STATES = ['DRAFT', 'APPROVED'];

export function addWorkerCollectors(registry: Registry, src: CollectorSources): void {
  const registers = [registry];
  const timeoutMs = src.timeoutMs ?? 2_000;
  const read = async <T>(what: string, gauge: Gauge, fn: () => Promise<T>, apply: (v: T) => void) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const v = await Promise.race([fn(), new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs); })]);
      gauge.reset();
      apply(v);
    } catch (err) {
      gauge.reset();
      src.log.warn('metrics: reading state failed', { what, err });
    } finally {
      clearTimeout(timer);
    }
  };

  if (src.cdc) {
    const cdc = src.cdc;
    // One status read per region serves the three CDC gauges of a scrape; each region has its own slot.
    let pending: { at: number; status: Promise<CdcStatus[]> } | null = null;
    const status = () => {
      if (!pending || Date.now() - pending.at > 1_000) pending = { at: Date.now(), status: Promise.all(cdc.regions.map((r) => cdc.status(r))) };
      return pending.status;
    };
    const cdcGauge = (name: string, help: string, pick: (s: CdcStatus) => number) => new Gauge({
      name, help, labelNames: ['slot'], registers,
      async collect() { await read(name, this, status, (all) => { for (const s of all) this.set({ slot: s.slot.name }, pick(s)); }); },
    });
    cdcGauge('bionic_cdc_lag_seconds', 'Age of the oldest committed CRM change not yet in ClickHouse', (s) => s.lagSeconds);
    cdcGauge('bionic_cdc_lag_bytes', 'WAL between the current position and the slot\'s confirmed position', (s) => s.lagBytes);
    cdcGauge('bionic_cdc_retained_wal_bytes', 'WAL the replication slot keeps on the source', (s) => s.retainedWalBytes);
  }

  new Gauge({
    name: 'bionic_bus_consumer_lag', help: 'Messages a consumer group has not committed yet, per topic (groups running in this worker)',
    labelNames: ['group', 'topic'], registers,
    async collect() {
      const groups = [...src.groups()];
      await read('bus lag', this, () => Promise.all(groups.map(([g, topics]) => src.bus.lag(g, topics))), (lags) => {
        const sums = new Map<string, { group: string; topic: string; lag: number }>();
        for (const p of lags.flat()) {
          const k = `${p.group}\n${p.topic}`;
          const s = sums.get(k) ?? { group: p.group, topic: p.topic, lag: 0 };
          s.lag += p.lag;
          sums.set(k, s);
        }
        for (const s of sums.values()) this.set({ group: s.group, topic: s.topic }, s.lag);
      });
    },
  });

  new Gauge({
    name: 'bionic_saga_stuck', help: 'Order sagas past their state\'s deadline that the sweeper has not timed out yet',
    labelNames: ['state'], registers,
    async collect() {
      await read('stuck sagas', this, () => src.platform<{ state: string; n: number }[]>`
        SELECT state, count(*)::int AS n FROM saga_instances WHERE deadline_at < clock_timestamp() GROUP BY state`, (rows) => {
        for (const s of TIMED_STATES) this.set({ state: s }, 0);
        for (const r of rows) this.set({ state: r.state }, r.n);
      });
    },
  });
}

interface Subscribes { subscribe(opts: { group: string; topics: readonly string[] }): Promise<unknown> }

/**
 * Wraps `bus.subscribe` to remember which groups (and topics) this process consumes, for the lag
 * gauge. Returns the same bus object, so everything it is handed to shares the record.
 */
export function trackConsumerGroups<B extends Subscribes>(bus: B): B & { consumerGroups(): ReadonlyMap<string, readonly string[]> } {
  const groups = new Map<string, readonly string[]>();
  const subscribe = bus.subscribe.bind(bus);
  bus.subscribe = (async (o: { group: string; topics: readonly string[] }) => {
    const sub = await subscribe(o);
    groups.set(o.group, [...new Set([...(groups.get(o.group) ?? []), ...o.topics])]);
    return sub;
  }) as B['subscribe'];
  return Object.assign(bus, { consumerGroups: () => groups });
}
