/**
 * CDC for every configured region: one {@link startCdc} per region on the region's CRM, writing the
 * replicas into the region's ClickHouse database, all in this process on one bus and one metrics
 * registry. Each region has its own slot, publication, consumer group and topics
 * (shared/cdc/regions.ts), so a region's slot moves only by what its own sink made durable, and one
 * region's changes never reach another's database. Without `REGIONS`, this is the one CDC of old.
 * The worker (workers/worker.ts) and `cdc start` run it.
 */
import { Registry } from 'prom-client';
import { cdcTopicSpecsFor, type BionicTopics } from '../../shared/bus/topics.ts';
import type { CdcOptions } from '../../shared/cdc/config.ts';
import { cdcRegionsOf, chooseCdcRegion } from '../../shared/cdc/regions.ts';
import type { Logger } from '../../shared/log.ts';
import type { Bus, TopicSpec } from '../../shared/ports/bus.ts';
import type { CdcControl } from '../../shared/ports/cdc.ts';
import type { Olap } from '../../shared/ports/olap.ts';
import type { RegionsConfig } from '../../shared/regions/config.ts';
import { startCdc, type CdcEvent, type CdcHandle } from './index.ts';

export interface RegionalCdcDeps<Tx = unknown> {
  /** The regions and each one's ClickHouse database: the worker's `regions.ports` fits. */
  regions: { config: RegionsConfig; get(id: string): { olap: Olap } };
  bus: Bus<BionicTopics, Tx>;
  log: Logger;
  /** The configured options; each region's names are derived from them. */
  options: CdcOptions;
  registry?: Registry;
  /**
   * The platform's topic list (infra/kafka/topics.json): each region's topics are created with the
   * partitions and retention of the matching `crm.public.<table>` entry.
   */
  topics?: readonly TopicSpec[];
  onEvent?: (region: string, e: CdcEvent) => void;
}

export interface RegionalCdcHandle extends CdcControl {
  /** Stops every region's CDC. */
  stop(): Promise<void>;
  readonly registry: Registry;
  /** Each region's CDC, in `REGIONS` order. */
  readonly byRegion: ReadonlyMap<string, CdcHandle>;
}

/**
 * Starts every region's CDC; resolves once all run. If one cannot start, the others are stopped.
 * @throws ConfigError when a region's CDC is misconfigured (shared/cdc/regions.ts)
 */
export async function startRegionalCdc<Tx>(deps: RegionalCdcDeps<Tx>): Promise<RegionalCdcHandle> {
  const plans = cdcRegionsOf(deps.options, deps.regions.config);
  const registry = deps.registry ?? new Registry();
  const started = await Promise.allSettled(plans.map(async (plan) => {
    if (!deps.regions.config.implicit && deps.topics) await deps.bus.ensureTopics(cdcTopicSpecsFor(deps.topics, plan.options.topicPrefix));
    const onEvent = deps.onEvent;
    return startCdc({
      crmUrl: plan.crmUrl, region: plan.region, olap: deps.regions.get(plan.region).olap, bus: deps.bus, log: deps.log,
      options: plan.options, registry, onEvent: onEvent && ((e) => onEvent(plan.region, e)),
    });
  }));
  const handles = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(handles.map((h) => h.stop()));
    throw failed.reason;
  }
  const byRegion = new Map(plans.map((p, i) => [p.region, handles[i]!] as const));
  const regions = [...byRegion.keys()];
  return {
    regions,
    status: async (requested) => byRegion.get(chooseCdcRegion(regions, requested))!.status(),
    async stop() {
      await Promise.all(handles.map((h) => h.stop()));
    },
    registry,
    byRegion,
  };
}
