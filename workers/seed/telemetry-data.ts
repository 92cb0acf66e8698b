/**
 * Synthetic telemetry for one device, day by day, appended to column buffers.
 *
 * A user wakes around 7:00 local time with a charged battery (now and then they forgot to charge),
 * is busiest in the morning and the evening, and goes to bed around 23:00. Each action drains the
 * battery a little on top of a steady drain; at 0 % the device is off until the next morning. Errors
 * follow the chip's own rate and mix of codes and triple when the battery is low; latency is
 * log-normal (median ~80 ms) with a heavy tail; the device reports its battery hourly (`status`).
 * Events are uploaded in batches (≤ 200 events or ≤ 1 h), each recorded in `telemetry_batches`.
 */
import { ColumnBuffer } from './bulk.ts';
import { ACTIONS, REGION_UTC_OFFSET } from './catalogue.ts';
import type { Device } from './crm-data.ts';
import { Rng } from './random.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

// Every value generated here is an identifier, number, timestamp or UUID: all columns are plain.
export const eventBuffer = () =>
  new ColumnBuffer('telemetry_events', [
    ['chip_id', 'text', true], ['ts', 'timestamptz', true], ['kind', 'text', true], ['action', 'text', true],
    ['response_ms', 'int4', true], ['error_code', 'text', true], ['battery_pct', 'int2', true],
    ['grip_force_n', 'real', true], ['batch_id', 'uuid', true], ['seq', 'int4', true],
  ] as const);

export const batchBuffer = () =>
  new ColumnBuffer('telemetry_batches', [
    ['batch_id', 'uuid', true], ['chip_id', 'text', true], ['received_at', 'timestamptz', true], ['events', 'int4', true],
  ] as const);

export type EventBuffer = ReturnType<typeof eventBuffer>;
export type BatchBuffer = ReturnType<typeof batchBuffer>;

/**
 * Generates `days` days starting at UTC midnight `startMs` (nothing after `endMs`, nothing before the
 * device was installed), yielding after each day so the caller can flush the buffers.
 * @returns the number of events generated
 */
export function* deviceTelemetry(
  dev: Device,
  o: { seed: number; startMs: number; endMs: number; days: number; eventsPerDay: number },
  ev: EventBuffer,
  bt: BatchBuffer,
): Generator<void, number> {
  const rng = new Rng(o.seed, 0x20000000 + dev.id);
  const p = dev.profile;
  const actions = ACTIONS[dev.model.kind].map(([name, w, full]) => [[name, full] as const, w] as const);
  const grip = dev.model.grip;
  const offsetH = REGION_UTC_OFFSET[dev.region] ?? 0;
  const installedMs = dev.installedAt.getTime();
  const chip = dev.chipId;
  const c = ev.cols;
  let events = 0;

  for (let d = 0; d < o.days; d++) {
    const dayMs = o.startMs + d * DAY;
    const weekend = [0, 6].includes(new Date(dayMs).getUTCDay());
    const n = Math.round(o.eventsPerDay * p.usage * rng.lognormal(1, 0.3) * (weekend ? 0.8 : 1));
    const wake = Math.min(10, Math.max(5, rng.normal(7, 0.7)));
    const sleep = Math.min(24.5, Math.max(20.5, rng.normal(22.8, 0.7)));
    const times = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = rng.next();
      const t = r < 0.4 ? rng.normal(wake + 1.8, 1.1) : r < 0.85 ? rng.normal(18.8, 1.7) : rng.uniform(wake, sleep);
      times[i] = Math.min(sleep, Math.max(wake, t));
    }
    times.sort();
    const charged = rng.chance(0.06) ? rng.uniform(55, 80) : rng.uniform(96, 100);
    let done = 0;
    let nextStatus = wake + 0.5;
    let batchId = '';
    let batchStart = 0;
    let seq = 0;
    let lastMs = 0;
    const closeBatch = () => {
      if (seq > 0) bt.push({ batch_id: batchId, chip_id: chip, received_at: new Date(lastMs + rng.int(2_000, 120_000)).toISOString(), events: String(seq) });
      seq = 0;
    };
    for (let i = 0; i < n || nextStatus < sleep; ) {
      const isStatus = nextStatus < sleep && (i >= n || nextStatus <= times[i]!);
      const t = isStatus ? nextStatus : times[i]!;
      if (isStatus) nextStatus += 1;
      else i++;
      const ms = Math.floor(dayMs + (t - offsetH) * HOUR);
      if (ms > o.endMs) break;
      const battery = charged - p.idleDrain * (t - wake) - p.actionDrain * done;
      if (battery <= 0) break;
      if (ms < installedMs) continue;
      if (seq === 0 || seq >= 200 || ms - batchStart > HOUR) {
        closeBatch();
        batchId = rng.uuid();
        batchStart = ms;
      }
      const pct = Math.round(battery);
      let kind = 'status';
      let action: string | null = null;
      let latencyMs: string | null = null;
      let code: string | null = null;
      let force: string | null = null;
      if (!isStatus) {
        done++;
        const [name, full] = rng.weighted(actions);
        action = name;
        const low = pct < 15;
        let latency = rng.lognormal(p.latencyMedianMs, 0.42);
        if (rng.chance(0.02)) latency *= rng.uniform(3, 12);
        if (rng.chance(low ? p.errorRate * 3 : p.errorRate)) {
          kind = 'error';
          code = low && rng.chance(0.5) ? 'E_LOW_BATTERY' : rng.weighted(p.errorCodes);
          if (code === 'E_SENSOR_TIMEOUT') latency = 1500 + rng.lognormal(150, 0.5);
        } else {
          kind = 'action';
          if (grip) force = (full ? Math.max(1, rng.normal(grip.mean, grip.sd) * (low ? 0.8 : 1)) : rng.uniform(0.5, 6)).toFixed(1);
        }
        latencyMs = String(Math.min(30_000, Math.round(latency)));
      }
      c.chip_id.push(chip);
      c.ts.push(new Date(ms).toISOString());
      c.kind.push(kind);
      c.action.push(action);
      c.response_ms.push(latencyMs);
      c.error_code.push(code);
      c.battery_pct.push(String(pct));
      c.grip_force_n.push(force);
      c.batch_id.push(batchId);
      c.seq.push(String(seq));
      seq++;
      lastMs = ms;
      events++;
    }
    closeBatch();
    yield;
  }
  return events;
}
