/**
 * Synthetic CRM rows: customers (`user1`, `user2`, … — the demo logins), their accounts, devices
 * (a quarter own two) with a per-chip behaviour profile the telemetry generator follows, and the
 * orders that bought those devices.
 */
import type postgres from 'postgres';
import { ERROR_CODES, FIRST_NAMES, LAST_NAMES, MODELS, type ModelSpec } from './catalogue.ts';
import { BulkWriter, ColumnBuffer, type Cell, type ColumnSpec } from './bulk.ts';
import { Rng } from './random.ts';

const DAY = 86_400_000;

/** How one chip behaves; drawn once per device so some chips are busier or flakier than others. */
export interface ChipProfile {
  /** Multiplies the average number of actions per day (median 1). */
  usage: number;
  errorRate: number;
  latencyMedianMs: number;
  /** Battery percent lost per waking hour, and per action. */
  idleDrain: number;
  actionDrain: number;
  errorCodes: (readonly [string, number])[];
}

export interface Customer { id: number; username: string; region: string; createdAt: Date }
export interface Device {
  id: number; chipId: string; customerId: number; region: string; model: ModelSpec; modelId: number;
  installedAt: Date; profile: ChipProfile;
}

export interface CrmPlan { customers: Customer[]; devices: Device[]; load(tx: postgres.TransactionSql): Promise<void> }

const phone = (rng: Rng, region: string) => {
  const d = (n: number) => Array.from({ length: n }, () => rng.int(0, 9)).join('');
  if (region === 'us') return `+1 ${rng.int(201, 989)} ${d(3)} ${d(4)}`;
  if (region === 'uk') return `+44 7${d(3)} ${d(6)}`;
  if (region === 'ru') return `+7 9${d(2)} ${d(3)}-${d(2)}-${d(2)}`;
  if (region === 'asia') return `+65 ${rng.int(8, 9)}${d(3)} ${d(4)}`;
  return `+49 15${rng.int(1, 9)} ${d(7)}`;
};

/** Chip ids: a bijection of the device id (so unique) that does not look sequential. */
const chipId = (id: number, seed: number) =>
  'BP-' + ((Math.imul(id, 0x9e3779b1) ^ Math.imul(seed | 0, 0x27d4eb2d)) >>> 0).toString(16).toUpperCase().padStart(8, '0');

function profile(rng: Rng, eventsPerDay: number): ChipProfile {
  // Most chips err 1–4 % of the time; one in seven is noticeably worse and has a dominant failure.
  const bad = rng.chance(0.15);
  const codes = ERROR_CODES.map(([c, w]) => [c, w * rng.uniform(0.5, 1.5)] as const);
  if (bad) {
    const i = rng.int(0, codes.length - 1);
    codes[i] = [codes[i]![0], codes[i]![1] * 6];
  }
  return {
    usage: rng.lognormal(1, 0.45),
    errorRate: bad ? rng.uniform(0.06, 0.14) : rng.uniform(0.01, 0.04),
    latencyMedianMs: rng.lognormal(78, 0.15),
    idleDrain: rng.uniform(2.0, 3.4),
    actionDrain: rng.uniform(25, 40) / eventsPerDay,
    errorCodes: codes,
  };
}

type Row = Record<string, Cell>;

const TABLES: readonly (readonly [string, readonly ColumnSpec[]])[] = [
  ['customers', [
    ['id', 'int8'], ['username', 'text'], ['full_name', 'text'], ['email', 'text'], ['phone', 'text'],
    ['region', 'text'], ['created_at', 'timestamptz'], ['updated_at', 'timestamptz'],
  ]],
  ['customer_accounts', [['customer_id', 'int8'], ['balance', 'numeric'], ['reserved', 'numeric'], ['version', 'int4'], ['updated_at', 'timestamptz']]],
  ['prostheses', [
    ['id', 'int8'], ['chip_id', 'text'], ['model_id', 'int4'], ['customer_id', 'int8'], ['serial', 'text'],
    ['installed_at', 'timestamptz'], ['status', 'text'], ['created_at', 'timestamptz'], ['updated_at', 'timestamptz'],
  ]],
  ['orders', [
    ['id', 'int8'], ['customer_id', 'int8'], ['model_id', 'int4'], ['status', 'text'], ['price', 'numeric'],
    ['idempotency_key', 'text'], ['version', 'int4'], ['created_at', 'timestamptz'], ['updated_at', 'timestamptz'],
  ]],
];

/** Builds the CRM data set in memory (deterministic for a seed) and a loader for it. */
export function planCrm(opts: {
  seed: number; customers: number; regions: readonly string[]; start: Date; end: Date; eventsPerDay: number;
  modelIds: ReadonlyMap<string, number>;
  /** Overrides the drawn region per username. */
  regionOf?: (username: string) => string;
  /** Keep only this region's customers (and what belongs to them). */
  onlyRegion?: string;
}): CrmPlan {
  const { seed, start, end } = opts;
  const customers: Customer[] = [];
  const devices: Device[] = [];
  const rows: Record<string, Row[]> = { customers: [], customer_accounts: [], prostheses: [], orders: [] };
  const iso = (d: Date) => d.toISOString();
  let orderId = 0;
  const modelWeights = MODELS.map((m) => [m, m.weight] as const);
  for (let id = 1; id <= opts.customers; id++) {
    const rng = new Rng(seed, id);
    const first = rng.pick(FIRST_NAMES);
    const last = rng.pick(LAST_NAMES);
    const username = `user${id}`;
    // Always draw, so a customer's other attributes do not depend on how regions are assigned.
    const drawn = rng.pick(opts.regions);
    const region = opts.regionOf?.(username) ?? drawn;
    const createdAt = new Date(start.getTime() - rng.int(60, 900) * DAY - rng.int(0, DAY - 1));
    customers.push({ id, username, region, createdAt });
    const email = `${first}.${last}.${id}@example.com`.toLowerCase();
    rows.customers!.push({
      id: String(id), username, full_name: `${first} ${last}`, email, phone: phone(rng, region), region,
      created_at: iso(createdAt), updated_at: iso(createdAt),
    });
    const balance = Math.min(rng.lognormal(9000, 0.9), 9_999_999).toFixed(2);
    rows.customer_accounts!.push({ customer_id: String(id), balance, reserved: '0.00', version: '1', updated_at: iso(createdAt) });
    const order = (modelId: number, status: string, price: string, version: number, created: Date, updated: Date) => {
      orderId++;
      rows.orders!.push({
        id: String(orderId), customer_id: String(id), model_id: String(modelId), status, price,
        idempotency_key: `seed-${seed}-${orderId}`, version: String(version), created_at: iso(created), updated_at: iso(updated),
      });
    };
    const owned = rng.chance(0.25) ? 2 : 1;
    for (let k = 0; k < owned; k++) {
      const devId = devices.length + 1;
      const drng = new Rng(seed, 0x10000000 + devId);
      const model = drng.weighted(modelWeights);
      const modelId = opts.modelIds.get(model.name)!;
      // One device in ten was fitted during the generated period, so its telemetry starts late.
      const installedAt = drng.chance(0.1)
        ? new Date(drng.uniform(start.getTime(), end.getTime()))
        : new Date(Math.min(createdAt.getTime() + drng.int(7, 120) * DAY, start.getTime() - drng.int(1, 30) * DAY));
      const dev: Device = { id: devId, chipId: chipId(devId, seed), customerId: id, region, model, modelId, installedAt, profile: profile(drng, opts.eventsPerDay) };
      devices.push(dev);
      const status = drng.chance(0.03) ? 'maintenance' : 'active';
      const serial = `SN${installedAt.getUTCFullYear()}-${String(devId).padStart(7, '0')}`;
      rows.prostheses!.push({
        id: String(devId), chip_id: dev.chipId, model_id: String(modelId), customer_id: String(id), serial,
        installed_at: iso(installedAt), status, created_at: iso(installedAt), updated_at: iso(installedAt),
      });
      // The order that bought it went DRAFT → APPROVED → NOTIFICATION → FINISHED: version 4.
      const ordered = new Date(installedAt.getTime() - drng.int(10, 40) * DAY);
      order(modelId, 'FINISHED', model.price, 4, ordered, installedAt);
    }
    if (rng.chance(0.08)) {
      const model = rng.weighted(modelWeights);
      const at = new Date(createdAt.getTime() + rng.int(1, 20) * DAY);
      order(opts.modelIds.get(model.name)!, 'REJECTED', model.price, 2, at, at);
    }
  }
  if (opts.onlyRegion !== undefined) {
    const keep = new Set(customers.filter((c) => c.region === opts.onlyRegion).map((c) => String(c.id)));
    const mine = (r: Row) => keep.has(String(r.id));
    rows.customers = rows.customers!.filter(mine);
    for (const t of ['customer_accounts', 'prostheses', 'orders']) rows[t] = rows[t]!.filter((r) => keep.has(String(r.customer_id)));
  }
  const inRegion = <T extends { region: string }>(xs: T[]) => (opts.onlyRegion === undefined ? xs : xs.filter((x) => x.region === opts.onlyRegion));
  return {
    customers: inRegion(customers),
    devices: inRegion(devices),
    async load(tx) {
      // One connection runs the statements in order, so parents land before their children.
      const w = new BulkWriter(tx);
      for (const [table, columns] of TABLES) {
        const buf = new ColumnBuffer(table, columns);
        for (const row of rows[table]!) {
          buf.push(row);
          if (buf.length >= 10_000) await w.flush(buf);
        }
        await w.flush(buf);
      }
      await w.drain();
      // Ids were chosen here: move the identity sequences past them.
      for (const t of ['customers', 'prostheses', 'orders']) {
        await tx.unsafe(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), (SELECT max(id) FROM ${t}))`);
      }
    },
  };
}
