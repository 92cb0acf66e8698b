/**
 * Report periods. Callers may name a period relatively (`day`, `week`, `month` — the one containing
 * today, UTC) or exactly; either way it resolves to a canonical id that names the stored object,
 * so `month.json` read in January and in February are two different reports:
 *
 * | kind  | canonical id             | example                  |
 * |-------|--------------------------|--------------------------|
 * | day   | `YYYY-MM-DD`             | `2025-01-15`             |
 * | week  | `YYYY-Www` (ISO 8601)    | `2025-W03`               |
 * | month | `YYYY-MM`                | `2025-01`                |
 * | range | `YYYY-MM-DD_YYYY-MM-DD`  | `2025-01-01_2025-01-20`  |
 */
import { z } from 'zod';

export type PeriodKind = 'day' | 'week' | 'month' | 'range';

/** A resolved period: `from` and `to` are inclusive UTC dates. */
export interface ReportPeriod {
  id: string;
  kind: PeriodKind;
  from: string;
  to: string;
}

/** Longest custom range, in days: a year of daily points is the most a chart can still show. */
export const MAX_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;
const MIN_YEAR = 2000;
const MAX_YEAR = 2100;

export const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD');
export const periodSchema = z.object({
  id: z.string(), kind: z.enum(['day', 'week', 'month', 'range']), from: isoDate, to: isoDate,
});
/** What a caller may send: a relative name or a canonical id (checked by {@link parsePeriod}). */
export const periodInput = z.string().min(3).max(32).regex(/^[A-Za-z0-9_-]+$/, 'must be a period name or id');

/** Today's date in UTC as `YYYY-MM-DD`. */
export const utcToday = (nowMs: number = Date.now()): string => new Date(nowMs).toISOString().slice(0, 10);

/** Parses `YYYY-MM-DD` strictly (no rollover: `2025-02-30` is refused); epoch ms or null. */
function dateMs(s: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (y < MIN_YEAR || y > MAX_YEAR) return null;
  const ms = Date.UTC(y, mo - 1, d);
  return new Date(ms).toISOString().slice(0, 10) === s ? ms : null;
}

const fmt = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** ISO 8601 week of a date: the week belongs to the year of its Thursday. */
function isoWeekOf(ms: number): { year: number; week: number; monday: number } {
  const dow = (new Date(ms).getUTCDay() + 6) % 7; // Monday = 0
  const monday = ms - dow * DAY_MS;
  const thursday = new Date(monday + 3 * DAY_MS);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * DAY_MS)) + 1;
  return { year, week, monday };
}

function weekPeriod(year: number, week: number): ReportPeriod | null {
  if (year < MIN_YEAR || year > MAX_YEAR || week < 1 || week > 53) return null;
  // Week 1 is the week with the year's first Thursday, i.e. the one containing 4 January.
  const monday = isoWeekOf(Date.UTC(year, 0, 4)).monday + (week - 1) * 7 * DAY_MS;
  const check = isoWeekOf(monday);
  if (check.year !== year || check.week !== week) return null; // week 53 in a 52-week year
  return { id: `${year}-W${pad(week)}`, kind: 'week', from: fmt(monday), to: fmt(monday + 6 * DAY_MS) };
}

function monthPeriod(year: number, month: number): ReportPeriod | null {
  if (year < MIN_YEAR || year > MAX_YEAR || month < 1 || month > 12) return null;
  return { id: `${year}-${pad(month)}`, kind: 'month', from: fmt(Date.UTC(year, month - 1, 1)), to: fmt(Date.UTC(year, month, 0)) };
}

/**
 * Resolves a period name or id to a {@link ReportPeriod}; `null` when it is not one.
 * @param today the caller's "today" (UTC, `YYYY-MM-DD`) for `day`, `week` and `month`.
 */
export function parsePeriod(input: string, today: string = utcToday()): ReportPeriod | null {
  const todayMs = dateMs(today);
  if (todayMs === null) throw new Error(`parsePeriod: today must be YYYY-MM-DD, got ${today}`);
  switch (input) {
    case 'day': case 'today': return { id: today, kind: 'day', from: today, to: today };
    case 'week': { const w = isoWeekOf(todayMs); return weekPeriod(w.year, w.week); }
    case 'month': return monthPeriod(Number(today.slice(0, 4)), Number(today.slice(5, 7)));
  }
  let m: RegExpExecArray | null;
  if (dateMs(input) !== null) return { id: input, kind: 'day', from: input, to: input };
  if ((m = /^(\d{4})-W(\d{2})$/.exec(input))) return weekPeriod(Number(m[1]), Number(m[2]));
  if ((m = /^(\d{4})-(\d{2})$/.exec(input))) return monthPeriod(Number(m[1]), Number(m[2]));
  if ((m = /^(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})$/.exec(input))) return rangePeriod(m[1]!, m[2]!);
  return null;
}

/** A custom range; `null` when a date is invalid, `from` is after `to`, or it spans more than {@link MAX_RANGE_DAYS}. */
export function rangePeriod(from: string, to: string): ReportPeriod | null {
  const a = dateMs(from);
  const b = dateMs(to);
  if (a === null || b === null || a > b || (b - a) / DAY_MS + 1 > MAX_RANGE_DAYS) return null;
  return { id: `${from}_${to}`, kind: 'range', from, to };
}

/** Every date of a period, in order. */
export function daysOf(p: Pick<ReportPeriod, 'from' | 'to'>): string[] {
  const out: string[] = [];
  for (let ms = dateMs(p.from)!, end = dateMs(p.to)!; ms <= end; ms += DAY_MS) out.push(fmt(ms));
  return out;
}

/** The periods a user is offered by default: today, this and last week, this and last month. */
export function standardPeriods(today: string = utcToday()): ReportPeriod[] {
  const t = dateMs(today)!;
  const w = isoWeekOf(t);
  const lastWeek = isoWeekOf(w.monday - 7 * DAY_MS);
  const y = Number(today.slice(0, 4));
  const mo = Number(today.slice(5, 7));
  return [
    parsePeriod('day', today)!, weekPeriod(w.year, w.week)!, weekPeriod(lastWeek.year, lastWeek.week)!,
    monthPeriod(y, mo)!, mo === 1 ? monthPeriod(y - 1, 12)! : monthPeriod(y, mo - 1)!,
  ];
}

/** A human label: "15 Jan 2025", "Week 3, 2025 (13–19 Jan)", "January 2025", "1 Jan – 20 Jan 2025". */
export function periodLabel(p: ReportPeriod): string {
  const d = (s: string, year = true) => new Date(`${s}T00:00:00Z`).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', ...(year ? { year: 'numeric' } : {}), timeZone: 'UTC' });
  switch (p.kind) {
    case 'day': return d(p.from);
    case 'week': return `Week ${Number(p.id.slice(6))}, ${p.id.slice(0, 4)} (${d(p.from, false)} – ${d(p.to, false)})`;
    case 'month': return new Date(`${p.from}T00:00:00Z`).toLocaleDateString('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });
    case 'range': return `${d(p.from)} – ${d(p.to)}`;
  }
}
