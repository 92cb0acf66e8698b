/**
 * CDC per region (data residency): each configured region's CRM is captured on its own into its own
 * ClickHouse database, under its own names — slot and publication `<CDC_SLOT>_<id>` /
 * `<CDC_PUBLICATION>_<id>`, sink group `<CDC_SINK_GROUP>-<id>`, topics `crm_<id>.public.<table>` —
 * so one region's changes never share a slot, a topic or a replica with another's. Without
 * `REGIONS` the one implicit region keeps today's names and the central CRM. With `REGIONS`, the
 * central CRM is not captured: it holds pseudonyms only and the regions' databases are the truth.
 *
 * `CDC_SNAPSHOT_SOURCE_URL` names one database, so it applies without `REGIONS` only; with regions,
 * ClickHouse loads each region from its `REGION_<ID>_CRM_DATABASE_URL`.
 */
import { cdcTopicPrefix } from '../bus/topics.ts';
import { ConfigError } from '../config-fields.ts';
import { regionVariable, type RegionsConfig } from '../regions/config.ts';
import type { CdcOptions } from './config.ts';

/** PostgreSQL truncates longer identifiers (NAMEDATALEN − 1). */
const MAX_IDENTIFIER = 63;

/** One region's CDC: the CRM it captures and its options (names already made per region). */
export interface RegionCdc {
  region: string;
  crmUrl: string;
  options: CdcOptions;
}

type NamingOptions = Pick<CdcOptions, 'slot' | 'publication' | 'snapshotSourceUrl'>;

/**
 * What is wrong with CDC's variables for these regions (`undefined`: no `REGIONS`), by variable:
 * per-region names too long for PostgreSQL, or a single-database override with several databases.
 */
export function cdcRegionProblems(options: NamingOptions, regionIds: readonly string[] | undefined): { variable: string; message: string }[] {
  if (!regionIds) return [];
  const problems: { variable: string; message: string }[] = [];
  const longest = regionIds.reduce((a, b) => (b.length > a.length ? b : a), '');
  for (const [variable, name] of [['CDC_SLOT', options.slot], ['CDC_PUBLICATION', options.publication]] as const) {
    const full = `${name}_${longest}`;
    if (full.length > MAX_IDENTIFIER) problems.push({ variable, message: `is too long for region ${longest}: ${full} exceeds ${MAX_IDENTIFIER} characters` });
  }
  if (options.snapshotSourceUrl) {
    problems.push({
      variable: 'CDC_SNAPSHOT_SOURCE_URL',
      message: 'applies without REGIONS only (it names one CRM database); with regions each region is loaded from its REGION_<ID>_CRM_DATABASE_URL',
    });
  }
  return problems;
}

/**
 * Each region's CDC, in `REGIONS` order. Implicit mode: one, `default`, on the central CRM with
 * `options` as they are.
 * @throws ConfigError when a region has no CRM database or {@link cdcRegionProblems} finds a problem
 */
export function cdcRegionsOf(options: CdcOptions, regions: RegionsConfig): RegionCdc[] {
  const problems = cdcRegionProblems(options, regions.implicit ? undefined : regions.regions.map((r) => r.id));
  const plans = regions.regions.map((r): RegionCdc => {
    if (!r.crmDatabaseUrl) {
      problems.push({ variable: regions.implicit ? 'CRM_DATABASE_URL' : regionVariable(r.id, 'CRM_DATABASE_URL'), message: 'is required by CDC' });
    }
    const crmUrl = r.crmDatabaseUrl ?? '';
    if (regions.implicit) return { region: r.id, crmUrl, options };
    return {
      region: r.id,
      crmUrl,
      options: {
        ...options,
        slot: `${options.slot}_${r.id}`,
        publication: `${options.publication}_${r.id}`,
        sinkGroup: `${options.sinkGroup}-${r.id}`,
        topicPrefix: cdcTopicPrefix(r.id),
        snapshotSourceUrl: null,
      },
    };
  });
  if (problems.length) throw new ConfigError(problems);
  return plans;
}

/** A request did not say which region's CDC it means, or named one CDC does not run for. */
export class CdcRegionError extends Error {
  override readonly name = 'CdcRegionError';
  constructor(readonly reason: 'REGION_REQUIRED' | 'UNKNOWN_REGION', readonly regions: readonly string[], readonly requested?: string) {
    super(reason === 'REGION_REQUIRED'
      ? `CDC runs for several regions (${regions.join(', ')}): name one`
      : `CDC does not run for region ${JSON.stringify(requested)} (regions: ${regions.join(', ')})`);
  }
}

/**
 * The region a status request or a command means: `requested`, which must be one of `regions`; may
 * be left out when there is only one.
 * @throws CdcRegionError
 */
export function chooseCdcRegion(regions: readonly string[], requested?: string): string {
  if (requested === undefined) {
    if (regions.length === 1) return regions[0]!;
    throw new CdcRegionError('REGION_REQUIRED', regions);
  }
  if (!regions.includes(requested)) throw new CdcRegionError('UNKNOWN_REGION', regions, requested);
  return requested;
}
