/**
 * `node --import tsx workers/seed/cli.ts --customers N --days D [...]`: migrates the CRM and telemetry
 * databases, then fills them with synthetic data. Exit codes: 0 done, 1 failed, 2 bad usage.
 */
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { regionVariable } from '../../shared/regions/config.ts';
import { MIGRATION_DIRS, migratePostgres } from '../db/migrate.ts';
import { SeedError, generate, validateGenerateOptions, type GenerateOptions } from './generate.ts';

const HELP = `Usage: node --import tsx workers/seed/cli.ts --customers N --days D [options]

Fills the CRM and telemetry databases with realistic synthetic data (migrating them first).
Customers are named user1, user2, … (the demo logins). The same seed and --end give the same data.

Options:
  --customers N        number of customers (1 to 10000000), required
  --days D             days of telemetry ending today (1 to 3650), required
  --events-per-day E   average actions per device per day (default 200)
  --seed S             random seed, an integer (default 1)
  --regions LIST       comma-separated regions, e.g. eu,us,asia (default eu); not with REGIONS set
  --region ID          with REGIONS set (data residency): fill that region's databases with its
                       share of the data set (customers are placed over REGIONS; ids and user
                       names stay unique across regions when each region is seeded alike)
  --end ISO-DATE       last instant of telemetry (default now)
  --reset              replace existing customers and telemetry instead of refusing
  -h, --help           show this help

Environment:
  CRM_DATABASE_URL, TELEMETRY_DATABASE_URL   postgres:// URLs of the two databases (without REGIONS)
  REGIONS, REGION_<ID>_CRM_DATABASE_URL, REGION_<ID>_TELEMETRY_DATABASE_URL
                       with regions, customers go to their region's databases only: the central
                       CRM holds no customers
`;

function usage(message: string): never {
  process.stderr.write(`error: ${message}\n\n${HELP}`);
  process.exit(2);
}

function intArg(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) usage(`--${name} must be an integer, got "${v}"`);
  return Number(v);
}

function progress(): (done: number, total: number, phase: string) => void {
  const tty = process.stderr.isTTY;
  const started = Date.now();
  let last = 0;
  return (done, total, phase) => {
    const now = Date.now();
    const finished = done === total;
    if (!finished && now - last < (tty ? 100 : 5_000)) return;
    last = now;
    const frac = total > 0 ? done / total : 1;
    const secs = ((now - started) / 1000).toFixed(1);
    if (tty) {
      const width = 30;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      process.stderr.write(`\r${phase.padEnd(9)} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${total}  ${secs}s\x1b[K`);
      if (finished) process.stderr.write('\n');
    } else {
      process.stderr.write(`${phase}: ${done}/${total} (${(frac * 100).toFixed(0)}%) after ${secs}s\n`);
    }
  };
}

/**
 * Which databases to fill. Without `REGIONS`, the global ones. With it (data residency), one
 * region's, named by `--region`: personal data never goes to the central CRM.
 */
function targetOf(region: string | undefined, regionsArg: string | undefined): {
  crmUrl: string; telemetryUrl: string; regions?: string[]; onlyRegion?: string;
} {
  const listed = process.env.REGIONS?.split(',').map((r) => r.trim()).filter(Boolean);
  if (!listed?.length) {
    if (region !== undefined) usage('--region needs REGIONS (and the region\'s REGION_<ID>_… variables) to be set');
    const crmUrl = process.env.CRM_DATABASE_URL, telemetryUrl = process.env.TELEMETRY_DATABASE_URL;
    if (!crmUrl || !telemetryUrl) usage('CRM_DATABASE_URL and TELEMETRY_DATABASE_URL must be set');
    return { crmUrl, telemetryUrl };
  }
  if (regionsArg !== undefined) usage(`--regions cannot be used with REGIONS set (${listed.join(',')}): customers are placed over REGIONS`);
  if (region === undefined) usage(`REGIONS is set (${listed.join(',')}): name the region whose databases to fill with --region; the central CRM holds no customers`);
  if (!listed.includes(region)) usage(`--region ${region} is not listed in REGIONS (${listed.join(',')})`);
  const variable = (suffix: 'CRM_DATABASE_URL' | 'TELEMETRY_DATABASE_URL') => regionVariable(region, suffix);
  const crmUrl = process.env[variable('CRM_DATABASE_URL')], telemetryUrl = process.env[variable('TELEMETRY_DATABASE_URL')];
  if (!crmUrl || !telemetryUrl) usage(`${variable('CRM_DATABASE_URL')} and ${variable('TELEMETRY_DATABASE_URL')} must be set`);
  return { crmUrl, telemetryUrl, regions: listed, onlyRegion: region };
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        customers: { type: 'string' }, days: { type: 'string' }, 'events-per-day': { type: 'string' },
        seed: { type: 'string' }, regions: { type: 'string' }, region: { type: 'string' }, end: { type: 'string' },
        reset: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const customers = intArg('customers', values.customers) ?? usage('--customers is required');
  const days = intArg('days', values.days) ?? usage('--days is required');
  const end = values.end === undefined ? undefined : new Date(values.end);
  if (end && Number.isNaN(end.getTime())) usage(`--end must be an ISO date, got "${values.end}"`);
  const target = targetOf(values.region, values.regions);
  const opts: Omit<GenerateOptions, 'crm' | 'telemetry'> = {
    customers, days, end, reset: values.reset,
    eventsPerDay: intArg('events-per-day', values['events-per-day']), seed: intArg('seed', values.seed),
    regions: target.regions ?? values.regions?.split(',').map((s) => s.trim()),
    onlyRegion: target.onlyRegion,
    onProgress: progress(),
  };
  try {
    validateGenerateOptions(opts);
  } catch (err) {
    usage((err as Error).message);
  }
  const { crmUrl, telemetryUrl } = target;

  const pgOptions = { onnotice: () => {}, connection: { application_name: 'bionicpro-seed' }, max: 2 };
  const crm = postgres(crmUrl, pgOptions);
  const telemetry = postgres(telemetryUrl, pgOptions);
  try {
    const applied = [
      ...(await migratePostgres(crm, MIGRATION_DIRS.crm)).map((n) => `crm/${n}`),
      ...(await migratePostgres(telemetry, MIGRATION_DIRS.telemetry)).map((n) => `telemetry/${n}`),
    ];
    if (applied.length > 0) process.stderr.write(`applied migrations: ${applied.join(', ')}\n`);
    const started = performance.now();
    const r = await generate({ crm, telemetry, ...opts });
    const secs = (performance.now() - started) / 1000;
    const n = (x: number) => x.toLocaleString('en-US');
    process.stdout.write(
      `Generated ${n(r.customers)} customers, ${n(r.prostheses)} prostheses and ${n(r.events)} telemetry events ` +
        `in ${secs.toFixed(1)} s (${n(Math.round(r.events / secs))} events/s).\n`,
    );
  } catch (err) {
    if (err instanceof SeedError) {
      process.stderr.write(`error: ${err.message.replace('the reset option', '--reset')}\n`);
      process.exitCode = err.code === 'INVALID_OPTIONS' ? 2 : 1;
      return;
    }
    throw err;
  } finally {
    await Promise.allSettled([crm.end({ timeout: 5 }), telemetry.end({ timeout: 5 })]);
  }
}

main().catch((err) => {
  process.stderr.write(`seed failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
