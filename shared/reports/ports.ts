/**
 * The reports feature's two services, as the router sees them (implementations: the builder in
 * workers/reports, delivery in edge/reports). Failures are {@link ReportsError}s with a code the
 * router maps to tRPC's and the edge's HTTP routes map to statuses.
 */
import type { ReportPeriod } from './period.ts';
import type { Report } from './schema.ts';

export type ReportsErrorCode = 'BAD_REQUEST' | 'UNAUTHORIZED' | 'FORBIDDEN' | 'NOT_FOUND' | 'UNAVAILABLE' | 'TIMEOUT';

/** A failure with a message that is safe to show to the caller. */
export class ReportsError extends Error {
  override readonly name = 'ReportsError';
  constructor(readonly code: ReportsErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A report as the builder stored it. */
export interface BuiltReport {
  key: string;
  version: number;
  /** The object store's ETag of the stored object. */
  etag: string;
  /** The JSON text exactly as stored. */
  body: string;
}

/** Worker side: builds one report from ClickHouse (and the CRM) and stores it under the current version. */
export interface ReportBuilder {
  /**
   * Builds from and stores into `region` (the owner's: data residency); without one, the builder
   * finds the owner's region itself ({@link ReportBuilder.locate}).
   */
  build(userId: string, period: ReportPeriod, region?: string): Promise<BuiltReport>;
  /** The region whose CRM holds this subject, `null` when none does (the implicit region holds everyone). */
  locate?(userId: string): Promise<string | null>;
}

/** A report as the edge serves it. */
export interface ServedReport {
  key: string;
  version: number;
  etag: string;
  /** The stored JSON bytes (what `GET /reports/<period>.json` sends). */
  body: Uint8Array;
  /** The parsed report (parsed on first use and kept with the cached bytes). */
  report(): Report;
}

export interface ReportSummary {
  period: ReportPeriod;
  label: string;
  /** Already built under the current version (reading it costs no build). */
  built: boolean;
}

/** Who reads whose reports: the edge's delivery checks nothing itself; the router and routes decide. */
export interface ReportDelivery {
  /** The standard periods plus every report already built under the owner's current version. */
  list(owner: string): Promise<ReportSummary[]>;
  /** The current report, built on a miss (once, however many ask at the same time). */
  get(owner: string, period: ReportPeriod): Promise<ServedReport>;
  /** A short-lived URL to download the report's JSON without a session. */
  link(owner: string, period: ReportPeriod): Promise<{ url: string; expiresAt: string }>;
  /** Records that the caller read another user's reports (explicit, role-gated procedures only). */
  audit(entry: { action: string; owner: string; period?: string; reason: string }): void;
}
