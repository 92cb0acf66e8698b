/**
 * Synthetic data generator: realistic CRM and telemetry volumes for demos, tests and benchmarks.
 * Deterministic for a seed and an `end` date; bulk-loads with COPY. Expects migrated databases.
 *
 * The CRM part commits in one transaction, the telemetry part in another. A CRM advisory lock makes
 * concurrent generators (two workers seeding a demo at once) take turns: the second finds the data.
 */
import type postgres from 'postgres';
import { MODELS } from './catalogue.ts';
import { BulkWriter } from './bulk.ts';
import { planCrm } from './crm-data.ts';
import { batchBuffer, deviceTelemetry, eventBuffer } from './telemetry-data.ts';

const DAY = 86_400_000;
// Big enough to amortise a statement, small enough to keep a few in flight without much memory.
const ROWS_PER_STATEMENT = 20_000;

/** The generator was asked for something it cannot do (bad options, non-empty databases). */
export class SeedError extends Error {
  override readonly name = 'SeedError';
  constructor(readonly code: 'INVALID_OPTIONS' | 'NOT_EMPTY', message: string) {
    super(message);
  }
}

export interface GenerateOptions {
  crm: postgres.Sql;
  telemetry: postgres.Sql;
  customers: number;
  /** Days of telemetry, ending with the UTC day that contains `end`. */
  days: number;
  /** Average actions per device per day (default 200); real days vary around it. */
  eventsPerDay?: number;
  seed?: number;
  /** Regions customers are spread over (default `['eu']`): sets phone formats and daily rhythm. */
  regions?: string[];
  /** Places customer `username` in a region instead of drawing it from `regions` (the demo's directories decide). */
  regionOf?: (username: string) => string;
  /**
   * Loads only this region's customers (with their devices, orders and telemetry) — data residency:
   * each region's databases get their own people. Ids stay those of the whole plan, so they never
   * collide across regions.
   */
  onlyRegion?: string;
  /** Last instant of generated telemetry (default: now). */
  end?: Date;
  /** Replace existing customers (and every row referencing them) and telemetry instead of refusing to run. */
  reset?: boolean;
  /** Called as work proceeds; phases are `crm` and `telemetry` (units: devices). */
  onProgress?: (done: number, total: number, phase: string) => void;
}

export interface GenerateResult { customers: number; prostheses: number; events: number }

/** Checks the options without touching a database; throws {@link SeedError} `INVALID_OPTIONS`. */
export function validateGenerateOptions(o: Omit<GenerateOptions, 'crm' | 'telemetry'>): void {
  const int = (name: string, v: number | undefined, min: number, max: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) throw new SeedError('INVALID_OPTIONS', `${name} must be an integer from ${min} to ${max}, got ${v}`);
  };
  int('customers', o.customers, 1, 10_000_000);
  int('days', o.days, 1, 3650);
  int('eventsPerDay', o.eventsPerDay, 1, 100_000);
  int('seed', o.seed, -(2 ** 31), 2 ** 32 - 1);
  if (o.regions && (o.regions.length === 0 || o.regions.some((r) => !/^[a-z]{2,16}$/.test(r)))) {
    throw new SeedError('INVALID_OPTIONS', 'regions must be a non-empty list of lower-case region codes');
  }
  if (o.end && Number.isNaN(o.end.getTime())) throw new SeedError('INVALID_OPTIONS', 'end must be a valid date');
}

/** Generates and loads the data set; throws {@link SeedError} if the databases already hold data (unless `reset`). */
export async function generate(opts: GenerateOptions): Promise<GenerateResult> {
  return (await run(opts, false))!;
}

/** Seeds a small demo set (20 customers × 14 days by default) only when CRM has no customers; `null` when it had. */
export async function seedDemoIfEmpty(
  opts: Omit<GenerateOptions, 'customers' | 'days' | 'reset'> & { customers?: number; days?: number },
): Promise<GenerateResult | null> {
  return run({ customers: 20, days: 14, eventsPerDay: 150, ...opts, reset: false }, true);
}

async function run(opts: GenerateOptions, onlyIfEmpty: boolean): Promise<GenerateResult | null> {
  validateGenerateOptions(opts);
  const { crm, telemetry, customers, days, reset = false, onProgress = () => {} } = opts;
  const seed = opts.seed ?? 1;
  const eventsPerDay = opts.eventsPerDay ?? 200;
  const endMs = (opts.end ?? new Date()).getTime();
  const startMs = Math.floor(endMs / DAY) * DAY - (days - 1) * DAY;

  if (!reset && !onlyIfEmpty && (await telemetry`SELECT 1 FROM telemetry_events LIMIT 1`).length > 0) {
    throw new SeedError('NOT_EMPTY', 'the telemetry database already has events (the reset option replaces them)');
  }
  onProgress(0, 1, 'crm');
  const plan = await crm.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext('bionicpro:seed'))`;
    if (reset) {
      // CASCADE: rows of later tables that point at customers or orders (reservations, …) go too.
      await tx`TRUNCATE orders, customer_accounts, prostheses, customers RESTART IDENTITY CASCADE`;
    } else if ((await tx`SELECT 1 FROM customers LIMIT 1`).length > 0) {
      if (onlyIfEmpty) return null;
      throw new SeedError('NOT_EMPTY', 'the CRM database already has customers (the reset option replaces them)');
    }
    const models = await upsertModels(tx);
    const p = planCrm({
      seed, customers, regions: opts.regions ?? ['eu'], regionOf: opts.regionOf, onlyRegion: opts.onlyRegion, start: new Date(startMs), end: new Date(endMs),
      eventsPerDay, modelIds: new Map(models.map((m) => [m.name, m.id])),
    });
    await p.load(tx);
    return p;
  });
  if (!plan) return null;
  onProgress(1, 1, 'crm');

  let events = 0;
  const devices = plan.devices;
  await telemetry.begin(async (tx) => {
    if (reset) await tx`TRUNCATE telemetry_events, telemetry_batches`;
    const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    await tx`SELECT telemetry_ensure_partitions(${iso(startMs - DAY)}::date, ${iso(endMs + DAY)}::date)`;
    const o = { seed, startMs, endMs, days, eventsPerDay };
    const ev = eventBuffer();
    const bt = batchBuffer();
    const w = new BulkWriter(tx);
    onProgress(0, devices.length, 'telemetry');
    for (let i = 0; i < devices.length; i++) {
      const days = deviceTelemetry(devices[i]!, o, ev, bt);
      for (let r = days.next(); ; r = days.next()) {
        if (r.done) {
          events += r.value;
          break;
        }
        if (ev.length >= ROWS_PER_STATEMENT) await w.flush(ev);
        if (bt.length >= ROWS_PER_STATEMENT) await w.flush(bt);
      }
      onProgress(i + 1, devices.length, 'telemetry');
      // Generation is synchronous: let the event loop move the sent statements' bytes and replies.
      await new Promise((r) => setImmediate(r));
    }
    await w.flush(ev);
    await w.flush(bt);
    await w.drain();
  });
  return { customers: plan.customers.length, prostheses: devices.length, events };
}

/**
 * Writes the catalogue of prosthesis models (shared, non-personal: what a central CRM holds when
 * customers live in regional ones) and returns their ids. Safe to repeat.
 */
export async function upsertModels(sql: postgres.Sql | postgres.TransactionSql): Promise<{ id: number; name: string }[]> {
  return sql<{ id: number; name: string }[]>`
    INSERT INTO prosthesis_models ${sql(MODELS.map(({ name, kind, manufacturer, price }) => ({ name, kind, manufacturer, price })))}
    ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind
    RETURNING id, name`;
}
