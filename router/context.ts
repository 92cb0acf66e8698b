/**
 * CONTEXT — what every procedure receives. Built by each host (edge, worker) from the ports it
 * owns; the router never constructs adapters.
 */
import type { HealthReport } from '../shared/health.ts';
import type { Logger } from '../shared/log.ts';
import type { ProcedureMetrics } from '../shared/metrics/ops-metrics.ts';
import type { BionicTopics } from '../shared/bus/topics.ts';
import type { Bus, Kv, ObjectStore, Olap, Oltp } from '../shared/ports/index.ts';
import type { EtlService } from '../shared/etl/port.ts';
import type { AnalyticsService } from '../shared/analytics/port.ts';
import type { CdcControl } from '../shared/ports/cdc.ts';
import type { ReportBuilder, ReportDelivery } from '../shared/reports/ports.ts';
import type { OrdersPort } from '../shared/saga/api.ts';
import type { NotificationFeed } from '../shared/notifications/feed.ts';
import type { EdgeRegionStores, RegionPorts } from '../shared/regions/ports.ts';

export type Role = 'prosthesis_user' | 'crm_operator' | 'ml_engineer' | 'admin';

/** A verified identity (from the edge session or a worker-verified JWT). */
export interface Identity {
  userId: string;
  username: string;
  roles: Role[];
  region?: string;
}

export interface Ports {
  kv?: Kv;
  objectStore?: ObjectStore;
  olap?: Olap;
  oltp?: { crm: Oltp; telemetry: Oltp; platform: Oltp };
  bus?: Bus<BionicTopics>;
  /** The ETL (worker-served `etl.*`, workers/etl). */
  etl?: EtlService;
  /** Workers: pseudonymised cross-region analytics (worker-served `analytics.*`, workers/analytics). */
  analytics?: AnalyticsService;
  /** Workers: orders and their sagas (workers/saga). */
  orders?: OrdersPort;
  /** Edge: the signed-in user's live notifications from KV (shared/notifications). */
  notifications?: NotificationFeed;
  /** Edge: report delivery bound to the current request (edge/reports). */
  reports?: ReportDelivery;
  /** Workers: the report builder (workers/reports). */
  reportBuilder?: ReportBuilder;
  /** Workers: change data capture's status (workers/cdc), where CDC runs. */
  cdc?: CdcControl;
  /**
   * Data residency: the regions and their stores (shared/regions/ports.ts). Procedures take the
   * caller's region from here (`regionOf(identity, regions.config)`) and pass it to the services,
   * which hold the regional databases themselves; the edge holds only report buckets.
   */
  regions?: RegionPorts<EdgeRegionStores>;
}

export interface RouterContext {
  requestId: string;
  /** `null` until an identity source verifies the caller; `authedProcedure` refuses then. */
  identity: Identity | null;
  log: Logger;
  ports: Ports;
  /** The host's dependency check (edge or worker). */
  health(): Promise<HealthReport>;
  /** Which host serves this call. */
  host: 'edge' | 'worker';
  /** Procedure durations and error codes (router/trpc.ts); absent: not measured. */
  metrics?: ProcedureMetrics;
}
