/**
 * Brings the embedded PostgreSQL databases to the current schema and seeds the demo set.
 * ClickHouse migrations run in the worker, which owns the chDB directory.
 *
 * Data residency: each region has its own CRM and telemetry databases
 * ({@link prepareRegionDatabases}), seeded only with the demo customers placed in that region;
 * the central CRM holds the shared catalogue of models and no customers.
 */
import postgres from 'postgres';
import { migrateAll } from '../../workers/db/migrate.ts';
import { seedDemoIfEmpty, upsertModels } from '../../workers/seed/generate.ts';

type Progress = (message: string) => void;
const open = (url: string) => postgres(url, { max: 2, onnotice: () => {} });

/** One line per seeding phase, not per tick. */
function phases(onProgress: Progress | undefined, prefix = '') {
  let lastPhase = '';
  return (done: number, total: number, phase: string) => {
    if (phase === lastPhase && done < total) return;
    lastPhase = phase;
    onProgress?.(`${prefix}seeding ${phase}: ${done}/${total}`);
  };
}

/**
 * The central databases: migrated; with `seed`, the CRM gets the shared catalogue of prosthesis
 * models. Customers, devices, orders and telemetry live in the regions' databases (data
 * residency), so the central CRM and telemetry hold none.
 */
export async function prepareDatabases(urls: { crm: string; telemetry: string; platform: string }, opts: { seed: boolean }): Promise<string> {
  const crm = open(urls.crm), telemetry = open(urls.telemetry), platform = open(urls.platform);
  try {
    const applied = await migrateAll({ crm, telemetry, platform });
    const seeded = opts.seed ? `, catalogue: ${(await upsertModels(crm)).length} prosthesis models (customers live in their regions)` : '';
    return `${applied.length} migrations applied${seeded}`;
  } finally {
    await Promise.all([crm.end(), telemetry.end(), platform.end()]);
  }
}

/** One region's personal-data databases. */
export interface RegionDatabases { id: string; crm: string; telemetry: string }

/**
 * Migrates every region's CRM and telemetry databases and, with `seed`, fills an empty one with
 * the demo customers `regionOf` places in that region (and only those). Regions run one after
 * another: the machine is small and seeding is CPU-bound.
 */
export async function prepareRegionDatabases(
  regions: readonly RegionDatabases[],
  opts: { seed: boolean; regionOf: (username: string) => string; onProgress?: Progress },
): Promise<string> {
  const parts: string[] = [];
  for (const region of regions) {
    const crm = open(region.crm), telemetry = open(region.telemetry);
    try {
      await migrateAll({ crm, telemetry });
      const r = opts.seed
        ? await seedDemoIfEmpty({ crm, telemetry, regionOf: opts.regionOf, onlyRegion: region.id, onProgress: phases(opts.onProgress, `${region.id}: `) })
        : null;
      const [row] = await crm<{ n: number }[]>`SELECT count(*)::int AS n FROM customers`;
      parts.push(`${region.id} ${row!.n} customers${r ? ' (seeded)' : ''}`);
    } finally {
      await Promise.all([crm.end(), telemetry.end()]);
    }
  }
  return parts.join(', ');
}
