/**
 * Brings the embedded PostgreSQL databases to the current schema and seeds the demo set into an
 * empty CRM. ClickHouse migrations run in the worker, which owns the chDB directory.
 */
import postgres from 'postgres';
import { migrateAll } from '../../workers/db/migrate.ts';
import { seedDemoIfEmpty } from '../../workers/seed/generate.ts';

export async function prepareDatabases(
  urls: { crm: string; telemetry: string; platform: string },
  opts: { seed: boolean; onProgress?: (message: string) => void },
): Promise<string> {
  const open = (url: string) => postgres(url, { max: 2, onnotice: () => {} });
  const crm = open(urls.crm), telemetry = open(urls.telemetry), platform = open(urls.platform);
  try {
    const applied = await migrateAll({ crm, telemetry, platform });
    let seeded = '';
    if (opts.seed) {
      let lastPhase = '';
      const r = await seedDemoIfEmpty({
        crm, telemetry,
        onProgress: (done, total, phase) => {
          if (phase === lastPhase && done < total) return; // one line per phase, not per tick
          lastPhase = phase;
          opts.onProgress?.(`seeding ${phase}: ${done}/${total}`);
        },
      });
      seeded = r ? `, demo data: ${r.customers} customers, ${r.prostheses} prostheses, ${r.events} telemetry events` : ', demo data present';
    }
    return `${applied.length} migrations applied${seeded}`;
  } finally {
    await Promise.all([crm.end(), telemetry.end(), platform.end()]);
  }
}
