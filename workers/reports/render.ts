/**
 * Shapes what ClickHouse returned into a {@link Report}: a row for every date of the period (zero
 * counts and null measures where there was no data, so charts show gaps honestly), totals, devices
 * with their CRM model, and the schema check that guarantees every stored report parses.
 */
import { daysOf, type ReportPeriod } from '../../shared/reports/period.ts';
import { REPORT_SCHEMA_VERSION, reportSchema, type DailyRow, type Report } from '../../shared/reports/schema.ts';
import type { ProsthesisModel } from './models.ts';
import type { DayAggregate, DeviceAggregate, ErrorCodeCount } from './query.ts';

export interface RenderInput {
  userId: string;
  period: ReportPeriod;
  version: number;
  generatedAt: Date;
  days: DayAggregate[];
  devices: DeviceAggregate[];
  errorCodes: ErrorCodeCount[];
  models: Map<string, ProsthesisModel>;
}

const int = (v: string | number) => Number(v);
const round = (v: number | null, digits = 2) => (v === null || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits);
const rate = (errors: number, actions: number) => (actions > 0 ? Math.min(1, round(errors / actions, 6)!) : null);

/** Builds and validates the report; throws if the data cannot make a valid one. */
export function renderReport(input: RenderInput): Report {
  const byDay = new Map(input.days.map((d) => [d.day, d]));
  const daily: DailyRow[] = daysOf(input.period).map((day) => {
    const d = byDay.get(day);
    if (!d) {
      return { day, activeMinutes: 0, actions: 0, errors: 0, errorRate: null, latencyP50Ms: null, latencyP95Ms: null, batteryMin: null, batteryAvg: null, gripForceAvg: null };
    }
    const actions = int(d.actions);
    const errors = int(d.errors);
    return {
      day, activeMinutes: int(d.active_minutes), actions, errors, errorRate: rate(errors, actions),
      latencyP50Ms: round(d.latency_p50_ms), latencyP95Ms: round(d.latency_p95_ms),
      batteryMin: round(d.battery_min), batteryAvg: round(d.battery_avg), gripForceAvg: round(d.grip_force_avg),
    };
  });

  const withData = daily.filter((d) => byDay.has(d.day));
  const sum = (f: (d: DailyRow) => number) => withData.reduce((n, d) => n + f(d), 0);
  const actions = sum((d) => d.actions);
  const errors = sum((d) => d.errors);
  // Period means weight each day by its actions, exactly as each day weighs its devices.
  const weighted = (f: (d: DailyRow) => number | null) => {
    const xs = withData.filter((d) => f(d) !== null);
    if (xs.length === 0) return null;
    const w = xs.reduce((n, d) => n + d.actions, 0);
    return round(w > 0 ? xs.reduce((n, d) => n + f(d)! * d.actions, 0) / w : xs.reduce((n, d) => n + f(d)!, 0) / xs.length);
  };
  const batteries = withData.map((d) => d.batteryAvg).filter((v): v is number => v !== null);
  const minima = withData.map((d) => d.batteryMin).filter((v): v is number => v !== null);

  return reportSchema.parse({
    schemaVersion: REPORT_SCHEMA_VERSION,
    userId: input.userId,
    period: input.period,
    version: input.version,
    generatedAt: input.generatedAt.toISOString(),
    totals: {
      activeMinutes: sum((d) => d.activeMinutes), actions, errors, errorRate: rate(errors, actions),
      latencyP50Ms: weighted((d) => d.latencyP50Ms), latencyP95Ms: weighted((d) => d.latencyP95Ms),
      batteryMin: minima.length ? Math.min(...minima) : null,
      batteryAvg: batteries.length ? round(batteries.reduce((a, b) => a + b, 0) / batteries.length) : null,
      gripForceAvg: weighted((d) => d.gripForceAvg),
      daysWithData: withData.length,
    },
    daily,
    devices: input.devices.map((d) => ({
      chipId: d.chip_id, model: input.models.get(d.chip_id) ?? null,
      activeMinutes: int(d.active_minutes), actions: int(d.actions), errors: int(d.errors),
      errorRate: rate(int(d.errors), int(d.actions)), firstDay: d.first_day, lastDay: d.last_day,
    })),
    topErrorCodes: input.errorCodes.map((e) => ({ code: e.code, days: int(e.days) })),
  } satisfies Report);
}
