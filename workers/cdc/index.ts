/**
 * CDC: CRM PostgreSQL → bus → ClickHouse. `startCdc` runs the capture (slot holder, publisher) and the
 * sink (consumer group writing the replicas) in this process, either or both (`options.capture`,
 * `options.sink`), and reports status for `cdc.status`, metrics and alerts. See the README section "Change data capture".
 * One `startCdc` captures one CRM; `startRegionalCdc` (regions.ts) starts one per configured region.
 */
import type { Registry } from 'prom-client';
import { cdcTopic, type BionicTopics } from '../../shared/bus/topics.ts';
import type { Logger } from '../../shared/log.ts';
import type { Bus } from '../../shared/ports/bus.ts';
import type { CdcControl, CdcStatus } from '../../shared/ports/cdc.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import { Capture } from './capture.ts';
import { CDC_DEFAULTS, type CdcOptions } from '../../shared/cdc/config.ts';
import { chooseCdcRegion } from '../../shared/cdc/regions.ts';
import { DEFAULT_REGION_ID } from '../../shared/regions/config.ts';
import { formatLsn } from './lsn.ts';
import { createCdcMetrics, type CdcMetrics } from './metrics.ts';
import { pgAddressOf, Replica } from './replica.ts';
import { errorText, sleep, type CdcEvent } from './runtime.ts';
import { Sink } from './sink.ts';
import { Snapshotter } from './snapshots.ts';
import { CrmSource } from './source.ts';

export { cdcConfigOf, cdcEnv, cdcEnvSchema, CDC_DEFAULTS, type CdcOptions } from '../../shared/cdc/config.ts';
export type { CdcEvent } from './runtime.ts';

export interface CdcDeps<Tx = unknown> {
  /** The CRM database (`wal_level=logical`; a role with REPLICATION). */
  crmUrl: string;
  /** The region whose CRM this is: `status().region` and the metrics' `region` label (default `default`). */
  region?: string;
  olap: Olap;
  /** The platform's bus, with the platform codec (`bionicCodec`). */
  bus: Bus<BionicTopics, Tx>;
  log: Logger;
  options?: Partial<CdcOptions>;
  /** Where the metrics go (prom-client); a private registry when absent. */
  registry?: Registry;
  /** Progress as it happens (tests, benchmarks, a CLI's output). */
  onEvent?: (e: CdcEvent) => void;
}

export interface CdcHandle extends CdcControl {
  /** Stops publishing, lets the sink finish its batches, closes CDC's own connections. */
  stop(): Promise<void>;
  readonly registry: Registry;
}

/** Starts CDC; resolves once the publication, slot and replicas are set up and both halves run. */
export async function startCdc<Tx>(deps: CdcDeps<Tx>): Promise<CdcHandle> {
  const options: CdcOptions = { ...CDC_DEFAULTS, ...deps.options };
  const region = deps.region ?? DEFAULT_REGION_ID;
  const log = deps.log.child({ component: 'cdc', region });
  const metrics = createCdcMetrics(deps.registry, region);
  const events = deps.onEvent ?? (() => {});
  const source = new CrmSource(deps.crmUrl, options);
  const replica = new Replica(deps.olap);
  const stopping = new AbortController();
  let capture: Capture | null = null;
  let sink: Sink | null = null;
  const snapshots = new Snapshotter({
    source, replica, address: pgAddressOf(options.snapshotSourceUrl ?? deps.crmUrl), log, metrics, events,
    runtime: (t) => capture?.tables.get(t),
    complete: (t, floor, rows) => capture!.completeSnapshot(t, floor, rows),
  });
  const db = decodeURIComponent(new URL(deps.crmUrl).pathname.replace(/^\//, ''));
  const bus = deps.bus as Bus<BionicTopics, any>;

  async function stop() {
    stopping.abort();
    await capture?.stop();
    await sink?.stop();
    await snapshots.stop();
    await source.close();
  }

  try {
    if (options.capture) {
      capture = new Capture({ crmUrl: deps.crmUrl, db, source, replica, bus, snapshots, log, metrics, events, options });
      await capture.start();
    }
    if (options.sink) {
      await replica.init();
      sink = new Sink({ bus, replica, log, metrics, events, group: options.sinkGroup, batchMax: options.batchMax, topicPrefix: options.topicPrefix });
      await sink.start(capture ? [...capture.tables.keys()] : await sinkTables(replica, options, stopping.signal));
    }
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }

  const tablesOf = async () => (capture ? [...capture.tables.values()] : [...(await replica.states()).values()].map((state) => ({ state, changes: 0, skipped: 0 })));

  async function status(): Promise<CdcStatus> {
    const tables = await tablesOf();
    const topics = tables.map((t) => cdcTopic(t.state.table, options.topicPrefix));
    const [slot, lag] = await Promise.all([
      source.slot(),
      sink ? bus.lag(options.sinkGroup, topics).catch(() => null) : Promise.resolve(null),
    ]);
    const lagSeconds = capture?.lagSeconds() ?? 0;
    const reasons: string[] = [];
    if (!slot) reasons.push(`replication slot ${options.slot} does not exist`);
    if (slot?.walStatus === 'lost') reasons.push('the slot lost WAL it needed: drop it and let every table load again');
    if (lagSeconds > options.lagAlertSeconds) reasons.push(`lag ${lagSeconds.toFixed(1)} s is above ${options.lagAlertSeconds} s`);
    if (slot && options.lagAlertBytes !== null && slot.retainedBytes > options.lagAlertBytes) {
      reasons.push(`the slot retains ${slot.retainedBytes} bytes of WAL, above ${options.lagAlertBytes}`);
    }
    for (const t of tables) if (t.state.status === 'quarantined') reasons.push(`${t.state.table} is quarantined: ${t.state.reason}`);
    const lsn = (v: bigint | null | undefined) => (v === null || v === undefined ? null : formatLsn(v));
    return {
      region,
      // This process's capture; without one here, whether another process holds the slot.
      state: capture?.state ?? (slot?.active ? 'standby' : 'stopped'),
      slot: {
        name: options.slot, exists: !!slot, active: slot?.active ?? false, activePid: slot?.activePid ?? null,
        confirmedFlushLsn: slot?.confirmedFlushLsn ?? null, restartLsn: slot?.restartLsn ?? null, walStatus: slot?.walStatus ?? null,
        currentLsn: slot?.currentLsn ?? (await source.currentLsn()),
      },
      lagSeconds, lagBytes: slot?.lagBytes ?? 0, retainedWalBytes: slot?.retainedBytes ?? 0,
      alert: { lagging: reasons.length > 0, thresholdSeconds: options.lagAlertSeconds, thresholdBytes: options.lagAlertBytes, reasons },
      capture: {
        receivedLsn: lsn(capture?.receivedLsn), publishedLsn: lsn(capture?.publishedLsn), acknowledgedLsn: lsn(capture?.acks.acked?.lsn),
        transactions: capture?.transactions ?? 0, changes: capture?.changes ?? 0,
        lastHeartbeatAt: capture?.lag.lastHeartbeatAt ? new Date(capture.lag.lastHeartbeatAt).toISOString() : null,
      },
      sink: {
        rows: sink?.rows ?? 0, pendingMessages: lag ? lag.reduce((s, p) => s + p.lag, 0) : null,
        lastWriteAt: sink?.lastWriteAt ? new Date(sink.lastWriteAt).toISOString() : null,
      },
      tables: tables.map((t) => ({
        table: t.state.table, status: t.state.status, reason: t.state.reason, snapshotRows: t.state.snapshotRows,
        changes: t.changes, skipped: t.skipped,
      })),
      lastError: capture?.lastError ?? null,
      checkedAt: new Date().toISOString(),
    };
  }

  void watch(status, options, log, metrics, stopping.signal);
  const regions = [region];
  return {
    regions,
    status: async (requested) => {
      chooseCdcRegion(regions, requested);
      return status();
    },
    stop,
    registry: metrics.registry,
  };
}

/** Refreshes the gauges and logs alert transitions, every `statusIntervalMs`. */
async function watch(status: () => Promise<CdcStatus>, options: CdcOptions, log: Logger, metrics: CdcMetrics, signal: AbortSignal) {
  let alerting = false;
  while (!signal.aborted) {
    await sleep(options.statusIntervalMs, signal);
    if (signal.aborted) return;
    try {
      const s = await status();
      metrics.lagSeconds.set(s.lagSeconds);
      metrics.lagBytes.set(s.lagBytes);
      metrics.retainedWalBytes.set(s.retainedWalBytes);
      metrics.alert.set(s.alert.lagging ? 1 : 0);
      if (s.alert.lagging !== alerting) {
        alerting = s.alert.lagging;
        if (alerting) log.warn('cdc: alert', { reasons: s.alert.reasons, lagSeconds: s.lagSeconds, lagBytes: s.lagBytes });
        else log.notice('cdc: alert cleared', { lagSeconds: s.lagSeconds });
      }
    } catch (err) {
      log.warn('cdc: status check failed', { err: errorText(err) });
    }
  }
}

/** The sink's tables when no capture runs here: configured, or those the capture has set up. */
async function sinkTables(replica: Replica, options: CdcOptions, signal: AbortSignal): Promise<string[]> {
  if (options.tables) return options.tables;
  for (;;) {
    await replica.init();
    const names = [...(await replica.states()).keys()];
    if (names.length || signal.aborted) return names;
    await sleep(2_000, signal);
  }
}
