/**
 * What the router sees of cross-region analytics (workers/analytics implements it): the central,
 * pseudonymised daily statistics, for ML engineers and admins. Rows name a person only by a
 * pseudonym (HMAC of region and subject under a key the workers keep); never a subject, username,
 * chip id or name.
 */

/** A query over whole UTC days `[from, to]` (YYYY-MM-DD), optionally one region and one model kind. */
export interface AnalyticsQuery {
  from: string;
  to: string;
  region?: string;
  modelKind?: string;
}

/** A region's day's figures, for one pseudonym or summed over all (counts summed, measures weighted by actions). */
export interface DayFigures {
  region: string;
  day: string;
  devices: number;
  activeMinutes: number;
  actions: number;
  errors: number;
  errorRate: number;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  batteryAvg: number | null;
  gripForceAvg: number | null;
}

/** One person's (pseudonym's) day with their devices of one model kind, in one region. */
export interface PseudoDailyRow extends DayFigures {
  pseudoId: string;
  modelKind: string;
  batteryMin: number | null;
}

/** A region's day over every pseudonym. */
export interface RegionDayAggregate extends DayFigures {
  users: number;
}

export interface AnalyticsService {
  /** The regions whose statistics the table holds (what `region` may name). */
  readonly regions: readonly string[];
  /** Pseudonymised day rows, ordered by day, region, pseudonym and model kind; at most `limit` (`truncated` when more matched). */
  daily(q: AnalyticsQuery & { limit: number }): Promise<{ rows: PseudoDailyRow[]; truncated: boolean }>;
  /** Per region and day: distinct pseudonyms and their totals. */
  summary(q: AnalyticsQuery): Promise<{ rows: RegionDayAggregate[] }>;
}
