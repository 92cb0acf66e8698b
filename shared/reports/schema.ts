/**
 * The usage report: what the workers build from `user_prosthesis_stats` and the CRM, what the
 * object store keeps as JSON and what the edge serves, renders as charts and exports as CSV.
 * The builder validates against this schema before writing, so a stored report always parses.
 */
import { z } from 'zod';
import { isoDate, periodSchema } from './period.ts';

const count = z.number().int().nonnegative();
/** `null` where the period has no data to average (no actions, no readings). */
const measure = z.number().nonnegative().nullable();

/** The day's metrics over every device of the user. */
export const dailyRowSchema = z.object({
  day: isoDate,
  activeMinutes: count,
  actions: count,
  errors: count,
  /** errors / actions. */
  errorRate: z.number().min(0).max(1).nullable(),
  /** Action-weighted mean of the devices' daily medians / 95th percentiles. */
  latencyP50Ms: measure,
  latencyP95Ms: measure,
  batteryMin: z.number().min(0).max(100).nullable(),
  batteryAvg: z.number().min(0).max(100).nullable(),
  gripForceAvg: measure,
});

export const totalsSchema = dailyRowSchema.omit({ day: true }).extend({ daysWithData: count });

export const deviceSchema = z.object({
  chipId: z.string(),
  /** From the CRM; `null` when the chip is not (or no longer) in the catalogue. */
  model: z.object({ name: z.string(), kind: z.string(), manufacturer: z.string() }).nullable(),
  activeMinutes: count,
  actions: count,
  errors: count,
  errorRate: z.number().min(0).max(1).nullable(),
  firstDay: isoDate,
  lastDay: isoDate,
});

export const REPORT_SCHEMA_VERSION = 1;

export const reportSchema = z.object({
  schemaVersion: z.literal(REPORT_SCHEMA_VERSION),
  userId: z.string().min(1),
  period: periodSchema,
  /** The per-user version the report was built under (see keys.ts). */
  version: z.number().int().nonnegative(),
  generatedAt: z.string().datetime(),
  totals: totalsSchema,
  /** One row per date of the period, in order; days without data have zero counts and null measures. */
  daily: z.array(dailyRowSchema),
  devices: z.array(deviceSchema),
  /** Error codes by the number of days they were among a device's most frequent. */
  topErrorCodes: z.array(z.object({ code: z.string(), days: count })),
});

export type Report = z.infer<typeof reportSchema>;
export type DailyRow = z.infer<typeof dailyRowSchema>;
export type ReportTotals = z.infer<typeof totalsSchema>;
export type ReportDevice = z.infer<typeof deviceSchema>;
