/** Window arithmetic for ETL runs: which readings a run reads and which hours and days it rewrites. */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const floorTo = (t: number, unit: number) => Math.floor(t / unit) * unit;
const ceilTo = (t: number, unit: number) => Math.ceil(t / unit) * unit;

export interface RunWindow {
  /** Readings considered, [from, to): `to` becomes the watermark of an incremental run. */
  from: Date;
  to: Date;
  /** Whole hours recomputed from readings. */
  hourFrom: Date;
  hourTo: Date;
  /** Whole days re-merged from their hours. */
  dayFrom: Date;
  dayTo: Date;
}

export function windowOf(from: Date, to: Date): RunWindow {
  const hourFrom = floorTo(from.getTime(), HOUR);
  const hourTo = Math.max(hourFrom + HOUR, ceilTo(to.getTime(), HOUR));
  return {
    from, to,
    hourFrom: new Date(hourFrom), hourTo: new Date(hourTo),
    dayFrom: new Date(floorTo(hourFrom, DAY)), dayTo: new Date(ceilTo(hourTo, DAY)),
  };
}

/**
 * The next incremental window: from the watermark minus the late-data allowance (readings that
 * arrive up to that late are still counted) to now; the first run starts at the earliest reading's
 * day. `null` when there is nothing to read yet.
 */
export function incrementalWindow(o: { now: Date; watermark: Date | null; earliest: Date | null; lateAllowanceMs: number }): RunWindow | null {
  if (o.watermark) return windowOf(new Date(Math.min(o.watermark.getTime() - o.lateAllowanceMs, o.now.getTime())), o.now);
  if (!o.earliest) return null;
  return windowOf(new Date(floorTo(o.earliest.getTime(), DAY)), new Date(Math.max(o.now.getTime(), o.earliest.getTime() + 1)));
}

/** Backfill windows of whole UTC days covering `[firstDay, lastDay]`, `chunkDays` at a time. */
export function backfillWindows(firstDay: Date, lastDay: Date, chunkDays: number): RunWindow[] {
  const out: RunWindow[] = [];
  const end = floorTo(lastDay.getTime(), DAY) + DAY;
  for (let t = floorTo(firstDay.getTime(), DAY); t < end; t += chunkDays * DAY) {
    out.push(windowOf(new Date(t), new Date(Math.min(end, t + chunkDays * DAY))));
  }
  return out;
}
