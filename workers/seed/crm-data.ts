/**
 * Synthetic CRM rows: customers (`user1`, `user2`, … — the demo logins), their accounts, devices
 * (a quarter own two) with a per-chip behaviour profile the telemetry generator follows, and the
 * orders that bought those devices.
 */
import type postgres from 'postgres';
import { ERROR_CODES, FIRST_NAMES, LAST_NAMES, MODELS, type ModelSpec } from './catalogue.ts';
import { copyInto, copyLine } from './copy.ts';
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

/** Builds the CRM data set in memory (deterministic for a seed) and a loader for it. */
export function planCrm(opts: {
  seed: number; customers: number; regions: readonly string[]; start: Date; end: Date; eventsPerDay: number;
  modelIds: ReadonlyMap<string, number>;
}): CrmPlan {
  const { seed, start, end } = opts;
  const customers: Customer[] = [];
  const devices: Device[] = [];
  const lines = { customers: [] as string[], accounts: [] as string[], prostheses: [] as string[], orders: [] as string[] };
  let orderId = 0;
  const modelWeights = MODELS.map((m) => [m, m.weight] as const);
  for (let id = 1; id <= opts.customers; id++) {
    const rng = new Rng(seed, id);
    const first = rng.pick(FIRST_NAMES);
    const last = rng.pick(LAST_NAMES);
    const region = rng.pick(opts.regions);
    const createdAt = new Date(start.getTime() - rng.int(60, 900) * DAY - rng.int(0, DAY - 1));
    const username = `user${id}`;
    customers.push({ id, username, region, createdAt });
    const email = `${first}.${last}.${id}@example.com`.toLowerCase();
    lines.customers.push(copyLine([id, username, `${first} ${last}`, email, phone(rng, region), region, createdAt, createdAt]));
    const balance = Math.min(rng.lognormal(9000, 0.9), 9_999_999).toFixed(2);
    lines.accounts.push(copyLine([id, balance, '0.00', 1, createdAt]));
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
      lines.prostheses.push(copyLine([devId, dev.chipId, modelId, id, serial, installedAt, status, installedAt, installedAt]));
      // The order that bought it went DRAFT → APPROVED → NOTIFICATION → FINISHED: version 4.
      const ordered = new Date(installedAt.getTime() - drng.int(10, 40) * DAY);
      lines.orders.push(copyLine([++orderId, id, modelId, 'FINISHED', model.price, `seed-${seed}-${orderId}`, 4, ordered, installedAt]));
    }
    if (rng.chance(0.08)) {
      const model = rng.weighted(modelWeights);
      const at = new Date(createdAt.getTime() + rng.int(1, 20) * DAY);
      lines.orders.push(copyLine([++orderId, id, opts.modelIds.get(model.name)!, 'REJECTED', model.price, `seed-${seed}-${orderId}`, 2, at, at]));
    }
  }
  return {
    customers,
    devices,
    async load(tx) {
      await copyInto(tx, 'customers', ['id', 'username', 'full_name', 'email', 'phone', 'region', 'created_at', 'updated_at'], lines.customers);
      await copyInto(tx, 'customer_accounts', ['customer_id', 'balance', 'reserved', 'version', 'updated_at'], lines.accounts);
      await copyInto(tx, 'prostheses', ['id', 'chip_id', 'model_id', 'customer_id', 'serial', 'installed_at', 'status', 'created_at', 'updated_at'], lines.prostheses);
      await copyInto(tx, 'orders', ['id', 'customer_id', 'model_id', 'status', 'price', 'idempotency_key', 'version', 'created_at', 'updated_at'], lines.orders);
      // Ids were chosen here: move the identity sequences past them.
      for (const t of ['customers', 'prostheses', 'orders']) {
        await tx.unsafe(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), (SELECT max(id) FROM ${t}))`);
      }
    },
  };
}
