/**
 * The reports feature on the workers: the builder behind `reportsBuilder.build` (and the ETL's
 * pre-building), and the cleanup job for old versions. See README "Reports".
 */
export { createReportBuilder, type ReportBuilderDeps, type WorkerReportBuilder } from './builder.ts';
export { cleanupOldReports, scheduleReportCleanup, type CleanupDeps, type CleanupResult } from './cleanup.ts';
export { bumpReportVersion, readReportVersion, reportVersionKey } from '../../shared/reports/keys.ts';
