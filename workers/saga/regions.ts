/**
 * Which CRM database a saga acts on (data residency). An order lives in its customer's region's
 * CRM; its saga carries the region in its context (REGISTER's `region`, copied into every command),
 * so each participant opens that region's CRM and nothing else. A saga without a region — implicit
 * mode, or one started before regions were configured — acts on the central CRM.
 */
import type postgres from 'postgres';
import type { RegionPorts } from '../../shared/regions/ports.ts';
import type { SagaCommand } from '../../shared/bus/topics.ts';
import { REGION_ID } from '../../shared/regions/config.ts';
import type { WorkerRegionStores } from '../regions/stores.ts';

export interface SagaCrms {
  /** The CRM of `region`; none: the central CRM. Unknown regions throw (ResidencyError). */
  of(region: string | undefined): postgres.Sql;
  /** Every CRM sagas write to (each region's, and the central one), each once. */
  all(): { region: string | undefined; sql: postgres.Sql }[];
  /** The region new orders of a caller in `region` carry: none in implicit mode. */
  sagaRegion(region: string | undefined): string | undefined;
}

/** The saga CRMs from the central one and, when configured, each region's. */
export function sagaCrms(central: postgres.Sql, regions?: RegionPorts<WorkerRegionStores>): SagaCrms {
  const regional = regions && !regions.config.implicit ? regions : undefined;
  return {
    of: (region) => (region && regional ? regional.get(region).crm.sql : central),
    all: () => [{ region: undefined, sql: central }, ...(regional?.all().map((r) => ({ region: r.id, sql: r.crm.sql })) ?? [])],
    sagaRegion: (region) => (regional ? region : undefined),
  };
}

/** A participant given one database: everything on it. */
export const asSagaCrms = (crm: postgres.Sql | SagaCrms): SagaCrms => (typeof crm === 'function' ? sagaCrms(crm) : crm);

/** The region a saga message names in its payload (the saga's context), if any. */
export function regionOfMessage(m: Pick<SagaCommand, 'payload'>): string | undefined {
  const r = (m.payload as { region?: unknown } | undefined)?.region;
  return typeof r === 'string' && REGION_ID.test(r) ? r : undefined;
}
