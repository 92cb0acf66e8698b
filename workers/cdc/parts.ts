/** The collaborators the capture works with, built once by startCdc (index.ts). */
import type { BionicTopics } from '../../shared/bus/topics.ts';
import type { Logger } from '../../shared/log.ts';
import type { Bus } from '../../shared/ports/bus.ts';
import type { CdcOptions } from '../../shared/cdc/config.ts';
import type { CdcMetrics } from './metrics.ts';
import type { Replica } from './replica.ts';
import type { EventSink } from './runtime.ts';
import type { Snapshotter } from './snapshots.ts';
import type { CrmSource } from './source.ts';

export interface CdcParts {
  crmUrl: string;
  /** The CRM database's name, for `source.db`. */
  db: string;
  source: CrmSource;
  replica: Replica;
  bus: Bus<BionicTopics, any>;
  snapshots: Snapshotter;
  log: Logger;
  metrics: CdcMetrics;
  events: EventSink;
  options: CdcOptions;
}
